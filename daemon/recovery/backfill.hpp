#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/metrics.hpp"
#include "daemon/admin/status.hpp"
#include "daemon/condition.hpp"
#include "daemon/dispatcher.hpp"
#include "daemon/recovery/backfill_plan.hpp"
#include "daemon/recovery/checkpoint.hpp"
#include "daemon/upstream/credentials.hpp"
#include "daemon/upstream/rest.hpp"
#include "net/endpoint.hpp"

// The backfill runner: after each gap (and at start when checkpoints were restored) it lists
// what changed from Appwrite's REST API and dispatches it like live events. The decisions are
// the plain planner, pager and synthesis (backfill_*.hpp); this is their thin coroutine shell.
//
// While a backfill is pending or running, the tracker's floor keeps the persisted checkpoints
// at the gap's start, so a crash meanwhile lists the gap again. Each event goes through
// dispatch() and waits there like a live one, so block-mode back-pressure bounds memory. A
// failed run keeps the floor and is retried with backoff; a reload restarts the run under the
// new routes; shutdown stops it between two requests or events. When a run completes, the gap
// marker carries its counts and the floor is lifted.
//
// Owned by the App; runs on the daemon's event loop only.
namespace sluice::recovery {

class BackfillRunner {
 public:
  struct Upstream {
    bool subscribed = false;
    std::string server_version;  // "" when unknown
  };

  BackfillRunner(boost::asio::any_io_executor loop, Dispatcher& dispatcher,
                 CheckpointTracker& tracker, Metrics& metrics, std::function<Upstream()> upstream);

  // Starts the loop; it waits for requests.
  void start();
  // A gap from `from` to `to` (the client's on_gap), or, with neither, the downtime before this
  // start (the restored checkpoints tell where it began).
  void request(std::optional<std::chrono::system_clock::time_point> from,
               std::optional<std::chrono::system_clock::time_point> to);
  // The configuration changed: a run in progress starts again under the new routes.
  void restart();
  void stop();
  boost::asio::awaitable<void> stopped();

  // A backfill is pending or running: live_until must not advance (CheckpointTracker).
  bool busy() const { return pending_.has_value() || running_; }
  admin::StatusReport::Recovery status() const;

 private:
  struct Gap {
    std::optional<std::chrono::system_clock::time_point> from, to;
  };
  enum class Outcome { done, failed, interrupted };
  // Adds `gap` to `into` (a pending request): the earlier start, the later end.
  static void merge(Gap& into, const Gap& gap);
  // The REST calls of one run: paced at backfill.rate, cut off by stop() and restart().
  struct Calls {
    net::Endpoint endpoint;
    const config::AppwriteConfig* appwrite;
    std::uint64_t epoch;
    std::chrono::steady_clock::time_point next;
    std::chrono::steady_clock::duration interval;
  };

  boost::asio::awaitable<void> loop();
  boost::asio::awaitable<Outcome> run(const Gap& gap, std::uint64_t epoch);
  // Waits `delay`, or less when stopped or restarted; false when the run must end.
  // One GET; nullopt when the run was interrupted. A transport or credentials failure is in
  // the response's `error`.
  boost::asio::awaitable<std::optional<upstream::RestResponse>> call(Calls& calls,
                                                                     std::string path);
  // Adds the tables, collections and buckets of the broad channels (an api_key lists them).
  boost::asio::awaitable<Outcome> discover(Calls& calls, const Plan& plan,
                                           const config::Config& config, const State& state,
                                           const PlanContext& context, std::vector<Target>& targets,
                                           std::string& error);
  boost::asio::awaitable<bool> pause(std::chrono::steady_clock::duration delay,
                                     std::uint64_t epoch);
  boost::asio::awaitable<std::optional<upstream::Headers>> headers(const config::AppwriteConfig& a,
                                                                   std::string& error);
  void finish_run(const Gap& gap, const Plan& plan, admin::StatusReport::Recovery::Run report,
                  const std::map<std::string, std::uint64_t, std::less<>>& per_route);

  boost::asio::any_io_executor loop_;
  Dispatcher& dispatcher_;
  CheckpointTracker& tracker_;
  Metrics& metrics_;
  std::function<Upstream()> upstream_;
  Condition wake_;
  boost::asio::steady_timer timer_;
  Condition cancel_;  // cuts a REST request off on stop() and restart()
  Condition done_;

  std::optional<Gap> pending_;
  bool running_ = false;
  bool stopping_ = false;
  bool finished_ = false;
  std::uint64_t epoch_ = 0;  // raised by restart() and stop()
  std::optional<Millis> floor_;
  // The credentials of the non-api_key forms, kept while the Appwrite settings stay the same
  // (the email form creates a session each time it is made).
  std::optional<config::AppwriteConfig> credentials_for_;
  std::unique_ptr<upstream::Credentials> credentials_;
  std::shared_ptr<boost::asio::ssl::context> tls_;
  std::string last_error_;
  std::optional<admin::StatusReport::Recovery::Run> last_run_;
};

}  // namespace sluice::recovery
