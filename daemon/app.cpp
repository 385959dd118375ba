#include "daemon/app.hpp"

#include <malloc.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "config/loader.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "daemon/admin/server.hpp"
#include "daemon/admin/status.hpp"
#include "daemon/condition.hpp"
#include "daemon/config_watcher.hpp"
#include "daemon/dispatcher.hpp"
#include "daemon/recovery/recovery.hpp"
#include "daemon/reload_plan.hpp"
#include "daemon/systemd_notify.hpp"
#include "daemon/upstream/client.hpp"
#include "sinks/blocking_pool.hpp"
#include "sinks/factory.hpp"
#include "sinks/worker.hpp"

namespace sluice {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

// How long SIGTERM waits for queued events to be delivered before exiting anyway. Below
// systemd's default TimeoutStopSec (90 s) so a drain never ends in SIGKILL.
constexpr std::chrono::seconds kDrainGrace{20};
// How long after the drain's deadline a sink may still be inside a deliver() (a receiver that
// never answers, a 60 s timeout) before the process exits without it. The disk buffer keeps
// such records; with a memory buffer they are counted as lost.
constexpr std::chrono::seconds kCancelGrace{1};
// How long the old connection of a URL-mode switch-over may take to answer its last ping.
constexpr std::chrono::seconds kSwitchGrace{5};

upstream::Subscription make_subscription(const Generation& gen) {
  upstream::Subscription subscription;
  subscription.channels = gen.router->subscription_channels();
  for (const auto& route : gen.config.routes) {
    auto queries = upstream::server_queries(route.where);
    subscription.entries.push_back({upstream::subscription_id(route.name), route.channels,
                                    queries ? std::move(*queries) : std::vector<std::string>{}});
  }
  return subscription;
}

// Parsing the configuration (yaml-cpp builds a node tree many times the file's size) leaves
// freed heap that glibc keeps mapped; give it back so that a large routing table does not
// inflate the footprint for the whole run (1,000 routes: 15.8 MB idle before, 11.9 MB after).
void release_free_heap() {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

// A sink that a reload removed (or replaced without handing its disk buffer over), delivering
// what it holds within the drain grace period. Its disk buffer path tells a later reload that
// a new sink must stop it before opening the same buffer.
struct DrainingSink {
  std::shared_ptr<sinks::SinkWorker> worker;
  std::string spool;  // spool_path() of its settings, "" for a memory buffer
};

// The daemon: start-up, signals, reloads and shutdown around one event loop (this thread), a
// small pool for blocking work, the realtime client, the Dispatcher (which owns the current
// Generation of router and sink workers) and the admin server. Lives for the whole run;
// everything it owns runs on `io_` except what the sinks hand to `pool_`.
class App {
 public:
  App(const Options& options, config::Config config)
      : options_(options), first_config_(std::move(config)) {}

  int run() {
    if (!build())
      return kExitRuntime;
    asio::co_spawn(io_, handle_signals(), asio::detached);
    asio::co_spawn(io_, reloader(), asio::detached);
    if (recovery_) {
      in_background(recovery_->checkpointer());
      recovery_->start();
    }
    const auto& gen = dispatcher_.current();
    for (auto& w : gen.workers)
      w->start();
    admin_->start();
    client_->start();
    if (watcher_) {
      if (auto ec = watcher_->start()) {
        log::error("config", "cannot watch the configuration file; reload with SIGHUP instead",
                   {{"path", gen.config.path}, {"error", ec.message()}});
      }
    }
    notify_.start_watchdog(io_.get_executor());
    notify_.ready();
    log::info("app", "started",
              {{"version", SLUICE_VERSION},
               {"sinks", std::to_string(gen.workers.size())},
               {"routes", std::to_string(gen.config.routes.size())}});
    release_free_heap();
    io_.run();
    pool_.join();
    log::info("app", "stopped");
    return exit_code_;
  }

 private:
  bool build() {
    if (options_.watch_config) {  // first: it reads the file's content as its baseline
      watcher_ = std::make_unique<ConfigWatcher>(io_.get_executor(), first_config_.path,
                                                 [this] { request_reload(); });
    }
    auto gen = std::make_shared<Generation>(std::move(first_config_), metrics_);
    for (const auto& sink : gen->config.sinks) {
      std::string error;
      auto worker = make_worker(sink, gen->config.appwrite.project, error);
      if (!worker) {
        log::error("app", "cannot create sink", {{"sink", sink.name}, {"error", error}});
        return false;
      }
      gen->workers.push_back(std::move(worker));
    }
    dispatcher_.install(gen);
    if (gen->config.backfill.enabled) {
      recovery_ = std::make_unique<recovery::Recovery>(
          io_.get_executor(), gen->config.state_dir, dispatcher_, metrics_, pool_, [this] {
            return recovery::BackfillRunner::Upstream{
                .subscribed = client_ && client_->subscribed(),
                .server_version = client_ ? client_->status().server_version : std::string()};
          });
    }

    std::string error;
    client_ = make_client(gen->config.appwrite, make_subscription(*gen), error);
    if (!client_) {
      log::error("app", "cannot set up the upstream client", {{"error", error}});
      return false;
    }

    const auto& admin = gen->config.admin;
    admin::Handlers handlers;
    handlers.ready = [this] { return ready(); };
    handlers.not_ready_reason = [this] { return not_ready_reason(); };
    handlers.status_json = [this] { return admin::to_json(status_report()); };
    admin_ =
        std::make_unique<admin::AdminServer>(io_.get_executor(), metrics_, handlers, admin.token);
    if (auto ec = admin_->listen(admin.host, admin.port)) {
      log::error(
          "admin", "cannot listen",
          {{"address", fmt::format("{}:{}", admin.host, admin.port)}, {"error", ec.message()}});
      return false;
    }
    if (admin.tls) {
      if (auto tls_error = admin_->enable_tls(*admin.tls); !tls_error.empty()) {
        log::error("admin", "cannot serve TLS", {{"error", tls_error}});
        return false;
      }
    }
    return true;
  }

  // A worker for `sink`, or nullptr with `error` set. Opening a disk buffer blocks while it
  // recovers: acceptable at start-up and reload.
  std::shared_ptr<sinks::SinkWorker> make_worker(const config::SinkConfig& sink,
                                                 const std::string& project, std::string& error) {
    auto metrics = metrics_.sink(sink.name);
    auto s = sinks::make_sink(sink, project, pool_, io_.get_executor(), error, &metrics);
    if (!s)
      return nullptr;
    try {
      return std::make_shared<sinks::SinkWorker>(io_.get_executor(), std::move(s), sink,
                                                 std::move(metrics), pool_);
    } catch (const std::exception& e) {  // e.g. a disk buffer directory that cannot be used
      error = e.what();
      return nullptr;
    }
  }

  std::unique_ptr<upstream::RealtimeClient> make_client(const config::AppwriteConfig& appwrite,
                                                        upstream::Subscription subscription,
                                                        std::string& error) {
    auto client = std::make_unique<upstream::RealtimeClient>(
        io_.get_executor(), appwrite, std::move(subscription), metrics_,
        [this](EventPtr e) -> asio::awaitable<void> {
          co_await dispatcher_.dispatch(std::move(e));
        });
    if (!client->init(error))
      return nullptr;
    client->on_gap([this](auto from, auto to) {
      if (recovery_) {
        recovery_->on_gap(from, to);
        return;
      }
      dispatcher_.write_gap_markers(from, to, [&](const config::RouteConfig& route) {
        return GapRecovery{.recovered = 0,
                           .not_fetched_seconds = std::chrono::duration<double>(to - from).count(),
                           .not_covered = route.channels};
      });
    });
    return client;
  }

  bool ready() const {
    if (!client_->subscribed())
      return false;
    for (const auto& w : dispatcher_.current().workers) {
      const auto st = w->stats();
      if (st.stuck || !st.buffer_persisting)
        return false;
    }
    return true;
  }

  // Why ready() is false, in words (the upstream's last error, or the sink that holds it up).
  std::string not_ready_reason() const {
    const auto& s = client_->status();
    if (!client_->subscribed()) {
      return fmt::format("upstream {}{}{}", upstream::state_name(s.state),
                         s.last_error.empty() ? "" : ": ", s.last_error);
    }
    for (const auto& w : dispatcher_.current().workers) {
      const auto st = w->stats();
      if (st.stuck || !st.buffer_persisting) {
        return fmt::format("sink {} {}", w->name(),
                           st.stuck ? "is stuck" : "cannot write its disk buffer");
      }
    }
    return {};
  }

  admin::StatusReport status_report() const {
    const auto& gen = dispatcher_.current();
    const auto& s = client_->status();
    admin::StatusReport report;
    report.version = SLUICE_VERSION;
    report.ready = ready();
    report.upstream = {.state = std::string(upstream::state_name(s.state)),
                       .since = s.since,
                       .endpoint = gen.config.appwrite.realtime_endpoint_shown,
                       .project = gen.config.appwrite.project,
                       .mode = s.mode,
                       .server_version = s.server_version,
                       .tls_verify = gen.config.appwrite.tls.verify,
                       .connects = s.connects,
                       .last_error = s.last_error,
                       .channels = s.channels,
                       .frames = s.frames,
                       .largest_frame_bytes = s.largest_frame_bytes,
                       .url_bytes = s.url_bytes,
                       .widened = s.widened};
    if (recovery_)
      report.recovery = recovery_->status();
    report.config = {
        .path = gen.config.path, .reloads = reloads_, .last_reload_error = last_reload_error_};
    for (std::size_t i = 0; i < gen.workers.size(); ++i) {
      const auto st = gen.workers[i]->stats();
      report.sinks.push_back({.name = gen.config.sinks[i].name,
                              .type = std::string(gen.config.sinks[i].type_name()),
                              .queued_events = st.queued_events,
                              .queued_bytes = st.queued_bytes,
                              .capacity_events = st.capacity_events,
                              .capacity_bytes = st.capacity_bytes,
                              .sent = st.sent,
                              .sent_bytes = st.sent_bytes,
                              .failed = st.failed,
                              .retries = st.retries,
                              .dead_lettered = st.dead_lettered,
                              .dropped = st.dropped,
                              .stuck = st.stuck,
                              .last_error = st.last_error,
                              .paused_until = st.paused_until,
                              .buffer_persisting = st.buffer_persisting,
                              .unpersisted = st.unpersisted});
    }
    return report;
  }

  asio::awaitable<void> handle_signals() {
    for (;;) {
      auto [ec, sig] = co_await signals_.async_wait(use_tuple);
      if (ec)
        co_return;
      if (sig == SIGHUP) {
        request_reload();
        continue;
      }
      log::info("app", "stopping", {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
      co_await shutdown();
      co_return;
    }
  }

  // A fatal error outside the signal handler: drain and stop as SIGTERM would.
  void request_stop() { asio::co_spawn(io_, shutdown(), asio::detached); }

  // SIGHUP and the file watcher only ask; one coroutine applies reloads one at a time, and
  // requests that arrive during a reload collapse into one more.
  void request_reload() {
    reload_requested_ = true;
    reload_wake_.notify_all();
  }

  asio::awaitable<void> reloader() {
    while (!stopping_) {
      if (!reload_requested_) {
        co_await reload_wake_.wait();
        continue;
      }
      reload_requested_ = false;
      reload_running_ = true;
      notify_.reloading();
      co_await reload();
      reload_running_ = false;
      reload_wake_.notify_all();  // shutdown() may be waiting for the reload to end
      if (!stopping_)
        notify_.ready();  // also after a rejected reload: the old configuration keeps running
    }
  }

  void reject_reload(std::string reason) {
    metrics_.config_reloads(false).Increment();
    metrics_.config_last_reload_successful().Set(0);
    last_reload_error_ = std::move(reason);
  }

  // Loads and validates the file, then carries out plan_reload(): routes swap atomically,
  // kept sinks keep their workers, removed ones drain, disk buffers change hands, and the
  // subscription follows without a window in which events are lost. An invalid file, or a
  // sink that cannot be created, leaves everything as it was.
  asio::awaitable<void> reload() {
    Generation& old = dispatcher_.current();
    const std::string path = old.config.path;
    // Parsing a large file takes a while: on the pool, so /healthz and the sockets keep being
    // served meanwhile.
    auto load = [path] { return config::load_file(path, sinks::sink_types()); };
    auto result = co_await pool_.run(std::move(load));
    if (!result.ok()) {
      for (const auto& e : result.errors)
        log::error("config", "reload rejected", {{"error", e.format()}});
      reject_reload(result.errors.front().format());
      co_return;
    }
    apply_overrides(options_, *result.config);
    const auto draining = draining_;  // copied: the list changes as they finish
    std::vector<DrainingSinkInfo> draining_info;
    for (const auto& d : draining)
      draining_info.push_back({d.worker->name(), d.spool});
    const auto plan = plan_reload(old.config, draining_info, *result.config);
    if (plan.admin_changed) {
      log::warn("config", "admin settings take effect at the next restart");
      result.config->admin = old.config.admin;
    }
    if (result.config->state_dir != old.config.state_dir ||
        result.config->backfill.enabled != old.config.backfill.enabled) {
      log::warn("config",
                "the checkpoints' state_dir and backfill.enabled take effect at the next restart");
      result.config->state_dir = old.config.state_dir;
      result.config->backfill.enabled = old.config.backfill.enabled;
    }
    auto next = std::make_shared<Generation>(std::move(*result.config), metrics_);

    // Events wait (TCP back-pressure) while workers are swapped.
    dispatcher_.hold();
    std::vector<std::size_t> stopped_old;  // old sinks stopped to free their disk buffer
    if (auto error = co_await make_workers(plan, draining, old, *next, stopped_old);
        !error.empty()) {
      co_await undo_workers(plan, old, *next, stopped_old);
      dispatcher_.release();
      log::error("config", "reload rejected", {{"error", error}});
      reject_reload(std::move(error));
      co_return;
    }

    // The swap. Old workers not carried over drain in the background.
    const auto previous = dispatcher_.install(next);
    for (const auto i : plan.drain)
      retire({previous->workers[i], sinks::spool_path(previous->config.sinks[i])});
    for (std::size_t i = 0; i < plan.sinks.size(); ++i) {
      if (!plan.sinks[i].keep)
        next->workers[i]->start();
    }
    log::configure(next->config.log.level, next->config.log.format);
    dispatcher_.release();

    change_subscription(previous->config.appwrite);
    if (recovery_)
      recovery_->restart();  // a backfill in progress lists again under the new routes
    ++reloads_;
    last_reload_error_.clear();
    metrics_.config_reloads(true).Increment();
    metrics_.config_last_reload_successful().Set(1);
    log::info("config", "reloaded",
              {{"path", path},
               {"routes", std::to_string(next->config.routes.size())},
               {"sinks", std::to_string(next->config.sinks.size())}});
    release_free_heap();
  }

  // The sink steps of a reload plan: `next` shares the kept workers and gets new ones, each
  // created once the workers writing its disk buffer have stopped (their indices in `old` go
  // to `stopped_old`). Returns why a sink could not be created, or "".
  asio::awaitable<std::string> make_workers(const ReloadPlan& plan,
                                            const std::vector<DrainingSink>& draining,
                                            const Generation& old, Generation& next,
                                            std::vector<std::size_t>& stopped_old) {
    next.workers.resize(plan.sinks.size());
    for (std::size_t i = 0; i < plan.sinks.size(); ++i) {
      const auto& step = plan.sinks[i];
      if (step.keep) {
        next.workers[i] = old.workers[*step.keep];
        continue;
      }
      if (step.stop_old) {
        stopped_old.push_back(*step.stop_old);
        co_await old.workers[*step.stop_old]->stop(Clock::now());
      }
      for (const auto d : step.stop_draining)
        co_await draining[d].worker->stop(Clock::now());
      const auto& sink = next.config.sinks[i];
      std::string error;
      next.workers[i] = make_worker(sink, next.config.appwrite.project, error);
      if (!next.workers[i])
        co_return fmt::format("sink \"{}\": {}", sink.name, error);
    }
    co_return std::string{};
  }

  // Undoes make_workers(): the new workers never started; the old ones stopped for their disk
  // buffer come back from their old settings, so nothing they buffered is stranded.
  asio::awaitable<void> undo_workers(const ReloadPlan& plan, Generation& old, Generation& next,
                                     const std::vector<std::size_t>& stopped_old) {
    for (std::size_t i = 0; i < next.workers.size(); ++i) {
      if (next.workers[i] && !plan.sinks[i].keep) {
        co_await next.workers[i]->stop(Clock::now());
        next.workers[i].reset();  // closes its disk buffer before an old worker reopens it
      }
    }
    for (const auto i : stopped_old) {
      std::string error;
      auto restored = make_worker(old.config.sinks[i], old.config.appwrite.project, error);
      if (!restored) {
        log::error("app", "cannot restore a sink after a failed reload; exiting",
                   {{"sink", old.config.sinks[i].name}, {"error", error}});
        exit_code_ = kExitRuntime;
        request_stop();
        co_return;
      }
      restored->start();
      old.workers[i] = std::move(restored);
    }
  }

  // Drains a sink the new configuration no longer uses, within the drain grace period; what
  // its disk buffer still holds stays there for a sink of the same name.
  void retire(DrainingSink sink) {
    log::info("app", "draining a removed sink", {{"sink", sink.worker->name()}});
    draining_.push_back(sink);
    in_background(drain(std::move(sink.worker)));
  }

  asio::awaitable<void> drain(std::shared_ptr<sinks::SinkWorker> worker) {
    co_await stop_worker(worker, Clock::now() + kDrainGrace);
    std::erase_if(draining_, [&](const DrainingSink& d) { return d.worker == worker; });
  }

  // Stops `worker`; during shutdown, what it could not keep counts toward the exit status.
  asio::awaitable<void> stop_worker(std::shared_ptr<sinks::SinkWorker> worker,
                                    Clock::time_point deadline) {
    co_await worker->stop(deadline);
    if (stopping_)
      lost_at_stop_ += worker->stats().unpersisted;
  }

  // Runs `task` on the loop; shutdown() waits for every such task (draining sinks, closing
  // connections) before the admin server stops.
  void in_background(asio::awaitable<void> task) {
    ++background_;
    asio::co_spawn(io_, std::move(task), [this](std::exception_ptr) {
      if (--background_ == 0)
        background_done_.notify_all();
    });
  }

  void change_subscription(const config::AppwriteConfig& before) {
    // A switch still coming up from an earlier reload is abandoned: what it subscribes to
    // was fixed when it connected. The decision below is made afresh against client_.
    if (next_client_)
      retire_client(std::move(next_client_), false);
    const auto& gen = dispatcher_.current();
    auto subscription = make_subscription(gen);
    const auto& status = client_->status();
    const UpstreamNow now{
        .mode = status.mode,
        .backing_off = status.state == upstream::RealtimeClient::State::backing_off,
        .channels = status.channels};
    if (plan_subscription(before, gen.config.appwrite, now, subscription.channels) ==
        SubscriptionChange::in_place) {
      client_->update_subscription(std::move(subscription));
      return;
    }
    std::string error;
    auto next = make_client(gen.config.appwrite, std::move(subscription), error);
    if (!next) {
      log::error("upstream", "cannot set up the new upstream client; keeping the old one",
                 {{"error", error}});
      return;
    }
    next_client_ = std::move(next);
    next_client_->report_connected(false);
    auto* candidate = next_client_.get();
    next_client_->on_subscribed([this, candidate] {
      if (next_client_.get() != candidate)
        return;  // already switched: a later reconnect of the current client
      log::info("upstream", "the new subscription is up; closing the old connection");
      client_->report_connected(false);
      next_client_->report_connected(true);
      retire_client(std::exchange(client_, std::move(next_client_)), true);
    });
    log::info("upstream", "opening a second connection for the new subscription");
    next_client_->start();
  }

  void retire_client(std::unique_ptr<upstream::RealtimeClient> client, bool graceful) {
    in_background(close_client(std::move(client), graceful));
  }

  // Stops a client that is no longer the primary one. `graceful`: it first reads what the
  // server queued before a ping it sends now (bounded by kSwitchGrace), so no event published
  // before the new subscription existed is left unread on the old socket.
  asio::awaitable<void> close_client(std::shared_ptr<upstream::RealtimeClient> client,
                                     bool graceful) {
    asio::steady_timer fallback(io_);
    if (graceful) {
      client->stop_after_pong();
      fallback.expires_after(kSwitchGrace);
      fallback.async_wait([client](boost::system::error_code ec) {
        if (!ec)
          client->stop();  // no pong in time: stop anyway
      });
    } else {
      client->stop();
    }
    co_await client->stopped();
  }

  asio::awaitable<void> shutdown() {
    if (stopping_)
      co_return;
    stopping_ = true;
    notify_.stopping();
    // The bound starts now, not after the reload in progress or the upstream have let go: a
    // reload can be waiting for a replaced sink's delivery to finish (up to its `timeout`).
    const auto deadline = Clock::now() + kDrainGrace;
    hard_stop_.expires_at(deadline + kCancelGrace);
    hard_stop_.async_wait([this](boost::system::error_code ec) {
      if (!ec)
        exit_now();
    });
    boost::system::error_code ignored;
    signals_.cancel(ignored);
    dispatcher_.stop();
    if (recovery_)
      recovery_->stop();
    reload_wake_.notify_all();
    if (watcher_)
      watcher_->stop();
    while (reload_running_)
      co_await reload_wake_.wait();
    if (next_client_)
      retire_client(std::move(next_client_), false);
    client_->stop();
    co_await client_->stopped();
    if (recovery_)
      co_await recovery_->stopped();
    // What the checkpoints may claim before the drain: a record a memory buffer loses at the
    // deadline is released like a delivered one, so after such a loss the drain's progress
    // is not saved and the next start recovers from here.
    const auto before_drain =
        recovery_ ? std::optional(recovery_->snapshot()) : std::optional<recovery::State>();
    // Drain every sink concurrently against one deadline, with any still draining. A sink
    // can be inside a deliver() that outlasts it (a request with a long timeout to a receiver
    // that never answers): the drain is bounded by exiting without it (exit_now()).
    for (auto& w : dispatcher_.current().workers)
      in_background(stop_worker(w, deadline));
    while (background_ > 0)
      co_await background_done_.wait();
    if (recovery_) {
      auto state = lost_at_stop_ == 0 ? recovery_->snapshot() : *before_drain;
      co_await recovery_->save(std::move(state));
    }
    hard_stop_.cancel();
    if (lost_at_stop_ > 0 && exit_code_ == kExitOk)
      exit_code_ = kExitUndelivered;
    admin_->stop();
  }

  // The drain's deadline has passed with deliveries still in flight. They cannot be taken back
  // from the sinks safely, so the process ends here; the kernel closes their connections.
  // What each sink still holds is logged: kept when its disk buffer has it, lost otherwise.
  [[noreturn]] void exit_now() {
    std::uint64_t lost = lost_at_stop_;
    auto report = [&](const sinks::SinkWorker& w) {
      if (w.stopped())
        return;  // already reported by its own stop
      const auto st = w.stats();
      lost += st.unpersisted;
      log::error("sink", "drain deadline passed with a delivery in flight; exiting without it",
                 {{"sink", w.name()},
                  {"records", std::to_string(st.queued_events)},
                  {"lost", std::to_string(st.unpersisted)}});
    };
    for (const auto& w : dispatcher_.current().workers)
      report(*w);
    for (const auto& d : draining_)
      report(*d.worker);
    const int code = exit_code_ != kExitOk ? exit_code_ : lost > 0 ? kExitUndelivered : kExitOk;
    log::info("app", "stopped", {{"exit_code", std::to_string(code)}});
    std::fflush(stderr);
    // Not exit(): destructors would tear down sinks whose deliver() is still suspended.
    std::_Exit(code);
  }

  Options options_;
  config::Config first_config_;  // moved into the first Generation by build()
  asio::io_context io_{1};
  SystemdNotifier notify_;  // after io_: its watchdog timer must go before the io_context
  sinks::BlockingPool pool_;
  Metrics metrics_;
  Dispatcher dispatcher_{io_.get_executor(), metrics_};
  std::unique_ptr<upstream::RealtimeClient> client_;
  std::unique_ptr<upstream::RealtimeClient> next_client_;  // a reload's, until it subscribes
  std::unique_ptr<admin::AdminServer> admin_;
  std::unique_ptr<ConfigWatcher> watcher_;
  std::unique_ptr<recovery::Recovery> recovery_;  // null with backfill.enabled false
  asio::signal_set signals_{io_, SIGINT, SIGTERM, SIGHUP};
  Condition reload_wake_{io_.get_executor()};  // the reloader and shutdown() wait on it
  bool reload_requested_ = false;
  bool reload_running_ = false;
  std::vector<DrainingSink> draining_;
  std::size_t background_ = 0;                     // in_background() tasks still running
  Condition background_done_{io_.get_executor()};  // background_ dropped to zero
  std::uint64_t reloads_ = 0;
  std::string last_reload_error_;
  bool stopping_ = false;
  int exit_code_ = kExitOk;
  asio::steady_timer hard_stop_{io_};  // ends a drain that outlives its deadline
  std::uint64_t lost_at_stop_ = 0;     // records the stopped sinks could not keep
};

}  // namespace

int run_daemon(const Options& options, config::Config config) {
  App app(options, std::move(config));
  return app.run();
}

}  // namespace sluice
