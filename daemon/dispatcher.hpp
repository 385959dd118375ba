#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "config/config.hpp"
#include "core/event.hpp"
#include "core/metrics.hpp"
#include "daemon/condition.hpp"
#include "daemon/dedup_window.hpp"
#include "daemon/recovery/checkpoint.hpp"
#include "daemon/router.hpp"
#include "sinks/worker.hpp"

namespace sluice {

// One applied configuration: the routing table, the workers of the sinks it routes to and its
// per-route counters. A reload builds the next one and the Dispatcher swaps it in whole; the
// Dispatcher holds the current one, and the App's reload the one it replaces until its workers
// are retired. Used on the daemon's event loop only.
struct Generation {
  // Compiles the router and resolves the routed counters; the workers are added by whoever
  // creates them (the App, at start-up and on reload).
  Generation(config::Config config, Metrics& metrics);

  config::Config config;
  RouterPtr router;
  std::vector<std::shared_ptr<sinks::SinkWorker>> workers;  // by index in config.sinks
  // By index in config.routes: events, bytes and the time of the last event.
  std::vector<prometheus::Counter*> routed;
  std::vector<prometheus::Counter*> routed_bytes;
  std::vector<prometheus::Gauge*> last_event;
};

// What recovery did about one gap, for one route's marker: the events recovered that the route
// matched, the seconds of the gap older than backfill.max_window (not fetched) and the route's
// channels no listing covers. Without recovery the whole gap is not fetched and every channel
// is not covered.
struct GapRecovery {
  std::uint64_t recovered = 0;
  double not_fetched_seconds = 0;
  std::vector<std::string> not_covered;
};

// The marker record written into a sink after the upstream was down from `from` to `to`,
// for `route`: an Event in the shape of a realtime `data` object (README "Gaps"), so every
// sink and template handles it; `events` is ["sluice.gap"]. Deletes inside a gap can never be
// listed, so its payload says `"deletes": "unknown"`.
EventPtr make_gap_marker(const config::RouteConfig& route, std::string_view project,
                         std::chrono::system_clock::time_point from,
                         std::chrono::system_clock::time_point to, const GapRecovery& recovery);

// Takes every event from the realtime client to the sink workers of the current Generation:
// routes it, counts it (unmatched, routed per route) and offers one record to each sink it
// reaches. It is also the back-pressure gate: dispatch() does not return while a `block` sink
// is full or a reload is swapping workers, and the client reads no frame until it returns.
//
// Owned by the App and used only on the daemon's event loop (`loop`), like the workers it
// offers to.
class Dispatcher {
 public:
  Dispatcher(boost::asio::any_io_executor loop, Metrics& metrics);

  // Makes `next` current, and returns the generation it replaces (null the first time).
  // Events waiting in dispatch() route again under `next`. The dedup window takes its size.
  std::shared_ptr<Generation> install(std::shared_ptr<Generation> next);
  Generation& current() { return *current_; }
  const Generation& current() const { return *current_; }

  // Delivers `event` to the queues of the sinks it reaches. Completes once every one of them
  // took it (true), or when the dispatcher stops (false). An event the dedup window takes for
  // a repeat of a recent one is dropped and counted instead (false).
  boost::asio::awaitable<bool> dispatch(EventPtr event);

  // Every event routed to at least one sink is tracked by `tracker` from then on (gap
  // recovery's checkpoints); null (the default): recovery is off.
  void set_tracker(recovery::CheckpointTracker* tracker) { tracker_ = tracker; }

  // While held, dispatch() waits, so the socket is not read while a reload changes workers.
  void hold();
  void release();
  // Whether an event waits in dispatch() (held, or a `block` sink full): it has been read from
  // the socket but is not in any queue yet, so live delivery is not complete up to now.
  bool blocked() const { return held_ || waiting_ > 0; }
  // Shutdown: dispatch() returns at once from now on, including the calls waiting now.
  void stop();

  // Offers a gap marker (make_gap_marker) for each route of each sink with `gap_marker: true`.
  // Appwrite has no replay, so consumers must learn that events of that window may be missing.
  // `recovery` gives each route's part (the backfill's counts, or "nothing recovered").
  void write_gap_markers(std::chrono::system_clock::time_point from,
                         std::chrono::system_clock::time_point to,
                         const std::function<GapRecovery(const config::RouteConfig&)>& recovery);

 private:
  Metrics& metrics_;
  recovery::CheckpointTracker* tracker_ = nullptr;
  std::shared_ptr<Generation> current_;
  RouteResult route_result_;  // reused for every event; never held across a suspension
  Condition gate_;            // wakes dispatch() on release(), install() and stop()
  DedupWindow dedup_;
  bool held_ = false;
  int waiting_ = 0;  // dispatch() calls waiting for space or for the hold to end
  bool stopped_ = false;
};

}  // namespace sluice
