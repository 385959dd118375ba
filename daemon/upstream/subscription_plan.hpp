#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/query.hpp"
#include "net/endpoint.hpp"

// What to send so that a subscription fits the limits Appwrite enforces: plain functions, no
// I/O. The realtime client plans before every connection and on every reload; the session sends
// the plan's frames within the message budget.
namespace sluice::upstream {

enum class SubscribeMode { url, message };

// Appwrite's limits (Swoole's settings and the realtime server's abuse limits).
inline constexpr std::size_t kMaxInboundFrame = 64000;  // a frame must stay below this
// The largest message text sluice sends: Swoole counts a frame's header (up to 14 bytes for a
// masked client frame) against kMaxInboundFrame too.
inline constexpr std::size_t kMaxMessageBytes = kMaxInboundFrame - 14;
inline constexpr std::size_t kMaxRequestHead = 65536;  // the upgrade request, all of it
inline constexpr std::size_t kMessagesPerWindow = 32;  // per connection, pings included
inline constexpr std::chrono::seconds kMessageWindow{60};
inline constexpr std::size_t kConnectsPerWindow = 128;  // per client address and path
// A full subscribe may take at most this many frames; beyond, channels are widened. Keeps the
// first subscribe well inside one message window, with room left for a reload's messages.
inline constexpr std::size_t kMaxSubscribeFrames = 8;

// What the routes want: the union of their channels (URL mode) and one subscription per route
// (message mode, Appwrite ≥ 1.9.5).
struct Subscription {
  struct Entry {
    std::string id;  // client-chosen subscription id
    std::vector<std::string> channels;
    // Appwrite ≥ 1.9.5 filters on the server: an event is sent only when every query holds
    // (empty: every event of the channels).
    std::vector<std::string> queries;
  };
  std::vector<std::string> channels;  // sorted, unique
  std::vector<Entry> entries;
};

// A subscription id for a route: 20 hex digits derived from its name, so a reconnect or a
// restart re-subscribes under the same id (Appwrite's Key rules allow at most 36 characters).
std::string subscription_id(std::string_view route_name);

// The channel Appwrite publishes every event of `channel` on as well, when there is a broader
// one a bridge may subscribe to (`tablesdb.D.tables.T.rows` → `rows`, `buckets.B.files` →
// `files`, `functions.F` → `executions`); nullopt for channels that are already broad or have
// none (`console`, `projects.*`, reports and console tails are never offered).
std::optional<std::string> broader_channel(std::string_view channel);

struct SubscriptionPlan {
  struct Widening {
    std::string to;                 // the broad channel subscribed to instead
    std::vector<std::string> from;  // the exact channels it covers
  };
  SubscribeMode mode = SubscribeMode::url;
  // What the server is asked for, after widening (URL mode: the URL's channels).
  std::vector<std::string> channels;
  // Message mode: the subscriptions and the subscribe frames that carry them (each at most
  // kMaxMessageBytes).
  std::vector<Subscription::Entry> entries;
  std::vector<std::string> frames;
  std::size_t url_bytes = 0;  // URL mode: the request head's size, estimated
  std::vector<Widening> widened;
  std::string why;    // why channels were widened ("" when none were)
  std::string error;  // set when nothing fits, widened or not: the cause in words
};

// The realtime request head around the URL: how many bytes the headers take (credentials,
// Host, the WebSocket headers), and where the URL starts.
struct RequestHead {
  const net::Endpoint* realtime = nullptr;
  std::string_view project;
  std::size_t header_bytes = 0;
};

// Plans `wanted` for `mode`. Exact when it fits; otherwise the channels with the most bytes
// are widened first, group by group, until it fits. The router still checks every event's own
// channels, so widening costs bandwidth, never correctness.
SubscriptionPlan plan_subscription(const Subscription& wanted, SubscribeMode mode,
                                   const RequestHead& head);

// A route's `where` as the query strings Appwrite's SDKs send
// (`{"method":"equal","attribute":"status","values":["paid"]}`), or nullopt when Appwrite would
// not evaluate it exactly as sluice does (a dotted attribute is a path for sluice, a literal key
// for Appwrite): such a route subscribes to every event of its channels. Appwrite ANDs the
// queries of one subscription and ORs subscriptions, so a route's own subscription with its
// queries never hides an event from another route; the router still decides.
std::optional<std::vector<std::string>> server_queries(const std::vector<Query>& where);

// The `unsubscribe` messages for `ids`, each at most kMaxMessageBytes.
std::vector<std::string> unsubscribe_frames(const std::vector<std::string>& ids);

// One line for the log and /status: "rows (1000 channels); files (3 channels)".
std::string describe_widening(const SubscriptionPlan& plan);

}  // namespace sluice::upstream
