#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/event.hpp"
#include "core/utc.hpp"

namespace sluice::upstream {

enum class FrameKind { event, connected, response, pong, error, invalid };

// `connected`: the first frame of a connection (Appwrite's app/realtime.php onOpen).
struct ConnectedFrame {
  struct Subscription {
    std::string slot;  // URL slot ("0", "1", …): the array index or the object key
    std::string id;    // server-generated subscription id
  };
  std::vector<std::string> channels;        // as converted by the server
  std::vector<Subscription> subscriptions;  // empty before Appwrite 1.9 and in message mode
  bool authenticated = false;               // `user` present and not null
};

// `response` to subscribe / unsubscribe / authentication / presence.
struct ResponseFrame {
  std::string to;
  bool success = false;                       // absent (presence) → false
  std::vector<std::string> subscription_ids;  // each `subscriptions[i].subscriptionId`, in order
};

// `error`: match on `code`, the message is masked in production.
struct ErrorFrame {
  std::int64_t code = 0;
  std::string message;
};

struct DecodedFrame {
  FrameKind kind = FrameKind::invalid;
  EventPtr event;  // kind == event: every field of Event filled
  ConnectedFrame connected;
  ResponseFrame response;
  ErrorFrame error;
  // kind == invalid: a short, stable metric label: "json" (malformed JSON, or not an object),
  // "binary" (binary frame), "type" (type missing, not a string or unknown), "fields" (a known
  // type whose fields are missing or of the wrong JSON type).
  std::string_view invalid_reason;
  // kind == event: `timestamp` was missing or unparseable, and Event::timestamp is the receive
  // wall-clock time instead. The event is still forwarded: its record bytes are intact and a
  // consumer can read the original field; dropping it would lose data for a cosmetic field.
  bool timestamp_fallback = false;
};

// The memory kept for frames between two reads: after a larger frame, the read buffer and the
// decoder give back what they grew to for it (the parser's index alone takes 4 bytes per byte
// of the largest document it has seen).
inline constexpr std::size_t kFrameRetainBytes = 1u << 20;

// Decodes realtime frames, each parsed once with simdjson On-Demand; an `event` frame becomes an
// Event whose views point into the moved-in frame, without copying the record. The Event's id
// is make_change_id for `project` when the payload identifies a resource change, otherwise the
// hash of `data`. Every byte of
// the frame is validated (UTF-8, syntax, nesting ≤ 1024), so sinks only ever forward valid JSON.
// Never throws. Owned by the upstream client and used on its executor only (the parser's
// buffers are reused from frame to frame, up to kFrameRetainBytes, so an instance is not
// thread-safe).
class FrameDecoder {
 public:
  explicit FrameDecoder(std::string project);
  ~FrameDecoder();
  FrameDecoder(const FrameDecoder&) = delete;
  FrameDecoder& operator=(const FrameDecoder&) = delete;

  // `frame` is the text as received; its capacity is raised to size + kJsonPadding if needed.
  // `received` becomes Event::received; `received_wall` is the fallback timestamp.
  DecodedFrame decode(std::string frame, bool binary,
                      std::chrono::steady_clock::time_point received,
                      std::chrono::system_clock::time_point received_wall);

 private:
  struct Impl;
  DecodedFrame decode_frame(std::string frame, bool binary,
                            std::chrono::steady_clock::time_point received,
                            std::chrono::system_clock::time_point received_wall);

  std::string project_;
  std::unique_ptr<Impl> impl_;
};

// Timestamps are parsed by core/utc.hpp, shared with recovery's `$updatedAt`.
using sluice::parse_timestamp;

}  // namespace sluice::upstream
