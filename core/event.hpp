#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
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

  // What identifies the change (make_change_id), or for events that are not resource changes
  // the hash of `data` (make_event_id): a redelivered or recovered copy carries the same id.
  std::string id;
  // The payload's top-level `$id` and `$updatedAt` as sent, when they are strings (empty
  // otherwise). The decoder captures them in its validating pass, so what needs them (the id
  // above, the checkpoint tracker) does not parse the payload again.
  std::string_view resource_id;
  std::string_view updated_at;
  std::chrono::steady_clock::time_point received{};
  // `data.recovered` is true: sluice listed this resource from the REST API after a gap
  // (Appwrite never sends the member). The dedup window treats such a copy as the change itself.
  bool recovered = false;

  std::string_view first_event() const { return events.empty() ? std::string_view{} : events[0]; }

  // Bytes of `frame` readable after `view` (which must point into `frame`), padding included.
  std::size_t readable_after(std::string_view view) const {
    return static_cast<std::size_t>(frame.data() + frame.capacity() - view.data());
  }
};

using EventPtr = std::shared_ptr<const Event>;

// simdjson reads up to this many bytes past the end of a document.
inline constexpr std::size_t kJsonPadding = 64;

// A 64-bit hash of `bytes` (XXH3): what the dedup window compares when two events share an id.
std::uint64_t content_hash(std::string_view bytes);

// The event id for a `data` object: 32 lowercase hex digits of its XXH3-128 hash.
std::string make_event_id(std::string_view data);

// The canonical path of the resource a realtime event string names, without its action and
// attribute, and whether the action is a delete: `tablesdb.D.tables.T.rows.R.update`,
// `databases.D.tables.T.rows.R.create` and `databases.D.collections.T.documents.R.upsert` all
// give `databases/D/tables/T/rows/R`; `buckets.B.files.F.delete` gives `buckets/B/files/F`
// (deleted); `teams.T.memberships.M.update.status` gives `teams/T/memberships/M`;
// `users.U.update.name` gives `users/U`. nullopt when the string names no resource followed by
// create, update, upsert or delete.
struct ResourceChange {
  std::string path;
  bool deleted = false;
};
std::optional<ResourceChange> resource_change_of(std::string_view event);

// The id of one change of one resource: 32 lowercase hex digits of the XXH3-128 hash of the
// project, the canonical path of `first_event` (resource_change_of), "change" or "delete", and
// the payload's `$updatedAt` text. Create, update and upsert give the same id on purpose: a copy
// recovered from the REST API cannot know which one the live event was. Empty when
// `first_event` names no resource or `resource_id` (the payload's `$id`) or `updated_at` is empty.
std::string make_change_id(std::string_view project, std::string_view first_event,
                           std::string_view resource_id, std::string_view updated_at);

}  // namespace sluice
