#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/config.hpp"
#include "core/event.hpp"
#include "core/route_name.hpp"

namespace sluice {

// One sink an event goes to, with the labels of the first route (in file order) that sent it.
struct RouteTarget {
  std::size_t sink = 0;       // index into Config::sinks
  std::size_t route = 0;      // index into Config::routes
  RouteName route_name;       // interned: valid after the Router is gone
  std::uint32_t channel = 0;  // index into Event::channels: the event's first in that route
};

// The outcome of Router::route(). Reuse one instance across events: clear() keeps the
// capacity, so routing allocates nothing once the vectors have grown.
struct RouteResult {
  std::vector<RouteTarget> targets;  // one per sink, deduplicated across routes
  std::vector<std::size_t> matched;  // indices of every matching route, in file order
  bool unmatched() const { return matched.empty(); }
  void clear() {
    targets.clear();
    matched.clear();
    candidates_.clear();
    lookups_.clear();
  }

 private:
  friend class Router;
  struct Candidate {
    std::uint32_t route;
    std::uint32_t channel;  // index into Event::channels
  };
  std::vector<Candidate> candidates_;  // scratch
  PayloadLookups lookups_;             // `where` attributes of the current event
  std::string key_;                    // scratch: an identity key
};

// An `events` pattern: dot-separated segments where a segment that is exactly `*` matches any
// one segment. Anything else is literal, so `doc*` matches only the text `doc*`, and the
// segment counts must be equal.
class EventPattern {
 public:
  explicit EventPattern(std::string_view pattern);
  bool matches(std::string_view event) const;
  const std::string& text() const { return text_; }

 private:
  std::string text_;
  std::vector<std::string> segments_;  // "" stands for `*`
  std::vector<bool> wildcard_;
};

// The routing table compiled from one Config (the `routes:` of routes.yaml). Immutable once built:
// a reload builds a new Router and the daemon swaps the shared_ptr, so any thread may call route()
// concurrently. Per-event cost depends on the routes listening on the event's channels (and,
// for routes filed by an `equal` value, on those holding the event's value), not on the size
// of the table.
class Router {
 public:
  // Throws std::invalid_argument if a route names a sink the config does not declare (the
  // loader has already rejected that; this guards the indices).
  explicit Router(const config::Config& config);

  // Fills `out` (cleared first) with the sinks `event` reaches and the routes it matched.
  void route(const Event& event, RouteResult& out) const;

  // The sorted union of every route's channels: what to subscribe to.
  const std::vector<std::string>& subscription_channels() const { return channels_; }

  std::size_t route_count() const { return routes_.size(); }
  std::string_view route_name(std::size_t route) const { return routes_[route].name.view(); }
  // A route's channels, deduplicated, in file order (for per-route subscribe messages).
  const std::vector<std::string>& route_channels(std::size_t route) const {
    return routes_[route].channels;
  }
  // A route's sinks, as indices into Config::sinks, deduplicated, in file order.
  const std::vector<std::size_t>& route_sinks(std::size_t route) const {
    return routes_[route].sinks;
  }

 private:
  struct Route {
    RouteName name;
    std::vector<std::string> channels;
    std::vector<EventPattern> events;  // empty: every event
    std::vector<Query> where;
    std::vector<std::size_t> sinks;
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  template <typename T>
  using StringMap = std::unordered_map<std::string, T, Hash, std::equal_to<>>;

  // The routes listening on one channel. A route whose `where` has a top-level `equal` on an
  // attribute (the first such condition) is filed under that attribute and each of the
  // condition's values, by identity key: an event reaches it only when the payload holds one of
  // those values, so with a thousand routes told apart by `equal` conditions, an event reads
  // each attribute once and looks its value up instead of testing every route. The others are
  // listed in `routes`. Either way the route's whole `where` is still evaluated.
  struct ChannelRoutes {
    struct ByValue {
      std::string attribute;
      StringMap<std::vector<std::uint32_t>> routes;  // identity key → routes, in file order
    };
    std::vector<std::uint32_t> routes;
    std::vector<ByValue> by_value;
  };

  bool events_match(const Route& route, const Event& event) const;
  void add_to_channel(ChannelRoutes& channel, std::uint32_t route) const;

  std::vector<Route> routes_;
  StringMap<ChannelRoutes> by_channel_;
  // has_length_[n]: some route listens on a channel of n bytes. A TablesDB event lists 16
  // channels, most of which no route listens on; comparing lengths first skips hashing them.
  std::vector<bool> has_length_;
  std::vector<std::string> channels_;
};

using RouterPtr = std::shared_ptr<const Router>;

}  // namespace sluice
