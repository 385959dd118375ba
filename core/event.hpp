#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

// One realtime `event` message, decoded once by the upstream decoder and then shared read-only
// by the router and every sink it reaches (as EventPtr). Every view points into `frame` or
// `strings`, which the Event owns, so an Event is never copied: it is moved into a shared_ptr
// right after decoding and lives until the last sink has acknowledged it.
struct Event {
  // The whole text frame as received. Its capacity exceeds its size by at least
  // kJsonPadding bytes so that views into it can be re-read by simdjson without a copy.
  std::string frame;
  // Unescaped copies of the strings below that were written with escapes, reserved once so
  // the views stay valid; strings without escapes are views into `frame`.
  std::string strings;

  std::string_view data;     // the raw `data` object, byte for byte: what sinks forward
  std::string_view payload;  // the raw `data.payload` value (an object)
  std::vector<std::string_view> events;
  std::vector<std::string_view> channels;
  std::vector<std::string_view> subscriptions;  // absent before Appwrite 1.9: empty
  std::string_view timestamp_text;              // `data.timestamp` as sent
  std::chrono::sys_time<std::chrono::milliseconds> timestamp{};  // parsed, UTC

  // Deterministic id derived from `data`: a redelivered event carries the same id.
  std::string id;
  std::chrono::steady_clock::time_point received{};

  std::string_view first_event() const { return events.empty() ? std::string_view{} : events[0]; }

  // Bytes of `frame` readable after `view` (which must point into `frame`), padding included.
  std::size_t readable_after(std::string_view view) const {
    return static_cast<std::size_t>(frame.data() + frame.capacity() - view.data());
  }
};

using EventPtr = std::shared_ptr<const Event>;

// simdjson reads up to this many bytes past the end of a document.
inline constexpr std::size_t kJsonPadding = 64;

// The event id for a `data` object: 32 lowercase hex digits of its XXH3-128 hash.
std::string make_event_id(std::string_view data);

}  // namespace sluice
