#include "daemon/app.hpp"

#include <csignal>
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
#include "core/json.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/utc.hpp"
#include "daemon/admin/server.hpp"
#include "daemon/router.hpp"
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

std::string iso_time(std::chrono::system_clock::time_point t) {
  const auto u = to_utc(t);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", u.tm.tm_year + 1900, u.tm.tm_mon + 1,
                     u.tm.tm_mday, u.tm.tm_hour, u.tm.tm_min, u.tm.tm_sec);
}

std::string_view state_label(upstream::RealtimeClient::State s) {
  using S = upstream::RealtimeClient::State;
  switch (s) {
    case S::idle:
      return "idle";
    case S::connecting:
      return "connecting";
    case S::connected:
      return "connected";
    case S::subscribed:
      return "subscribed";
    case S::backing_off:
      return "backing_off";
    case S::stopped:
      return "stopped";
  }
  return "idle";
}

// The daemon: one event loop (this thread), a small pool for blocking work, the realtime
// client, the router, one SinkWorker per sink and the admin server. Lives for the whole run;
// everything it owns runs on `io_` except what the sinks hand to `pool_`.
class App {
 public:
  explicit App(config::Config config) : config_(std::move(config)) {}

  int run() {
    if (!build())
      return kExitRuntime;
    asio::co_spawn(io_, handle_signals(), asio::detached);
    for (auto& w : workers_)
      w->start();
    admin_->start();
    client_->start();
    notify_.start_watchdog(io_.get_executor());
    notify_.ready();
    log::info("app", "started",
              {{"version", SLUICE_VERSION},
               {"sinks", std::to_string(workers_.size())},
               {"routes", std::to_string(config_.routes.size())}});
    io_.run();
    pool_.join();
    log::info("app", "stopped");
    return exit_code_;
  }

 private:
  bool build() {
    if (config_.admin.tls) {
      log::error("admin",
                 "admin.tls is not supported yet; serve the admin port on loopback or "
                 "behind a TLS-terminating proxy");
      return false;
    }
    router_ = std::make_shared<const Router>(config_);
    for (const auto& route : config_.routes)
      routed_.push_back(&metrics_.routed(route.name));

    for (const auto& sink : config_.sinks) {
      std::string error;
      auto s = sinks::make_sink(sink, config_.appwrite.project, pool_, io_.get_executor(), error);
      if (!s) {
        log::error("app", "cannot create sink", {{"sink", sink.name}, {"error", error}});
        return false;
      }
      try {
        workers_.push_back(std::make_unique<sinks::SinkWorker>(
            io_.get_executor(), std::move(s), sink, metrics_.sink(sink.name), pool_));
      } catch (const std::exception& e) {  // e.g. a disk buffer directory that cannot be used
        log::error("app", "cannot create sink", {{"sink", sink.name}, {"error", e.what()}});
        return false;
      }
    }

    upstream::Subscription subscription;
    subscription.channels = router_->subscription_channels();
    for (const auto& route : config_.routes) {
      subscription.entries.push_back({upstream::subscription_id(route.name), route.channels});
    }
    client_ = std::make_unique<upstream::RealtimeClient>(
        io_.get_executor(), config_.appwrite, std::move(subscription), metrics_,
        [this](EventPtr e) { return on_event(std::move(e)); });
    std::string error;
    if (!client_->init(error)) {
      log::error("app", "cannot set up the upstream client", {{"error", error}});
      return false;
    }

    admin::Handlers handlers;
    handlers.ready = [this] { return ready(); };
    handlers.status_json = [this] { return status_json(); };
    admin_ = std::make_unique<admin::AdminServer>(io_.get_executor(), metrics_, handlers,
                                                  config_.admin.token);
    if (auto ec = admin_->listen(config_.admin.host, config_.admin.port)) {
      log::error("admin", "cannot listen",
                 {{"address", fmt::format("{}:{}", config_.admin.host, config_.admin.port)},
                  {"error", ec.message()}});
      return false;
    }
    return true;
  }

  // Called by the realtime client for every event, before it reads the next frame: awaiting
  // here (a full sink in `block` mode) is what pushes back on the socket.
  asio::awaitable<void> on_event(EventPtr event) {
    route_result_.clear();
    router_->route(*event, route_result_);
    if (route_result_.unmatched()) {
      metrics_.events_unmatched().Increment();
      co_return;
    }
    for (const auto r : route_result_.matched)
      routed_[r]->Increment();
    for (const auto& t : route_result_.targets) {
      auto& worker = *workers_[t.sink];
      while (
          worker.offer(sinks::Record{event, std::string(t.route_name), std::string(t.channel)}) ==
          sinks::SinkWorker::Accept::full) {
        co_await worker.wait_for_space();
        if (stopping_)
          co_return;
      }
    }
  }

  bool ready() const {
    if (!client_->subscribed())
      return false;
    for (const auto& w : workers_) {
      if (w->stats().stuck)
        return false;
    }
    return true;
  }

  std::string status_json() const {
    const auto& s = client_->status();
    std::string out = "{\"version\":";
    append_json_string(out, SLUICE_VERSION);
    out += ",\"ready\":";
    out += ready() ? "true" : "false";
    out += ",\"upstream\":{\"state\":";
    append_json_string(out, state_label(s.state));
    out += ",\"since\":";
    append_json_string(out, iso_time(s.since));
    out += ",\"endpoint\":";
    append_json_string(out, config_.appwrite.realtime_endpoint);
    out += ",\"project\":";
    append_json_string(out, config_.appwrite.project);
    out += ",\"mode\":";
    append_json_string(out, s.mode);
    out += ",\"server_version\":";
    append_json_string(out, s.server_version);
    out += ",\"tls_verify\":";
    out += config_.appwrite.tls.verify ? "true" : "false";
    out += ",\"connects\":" + std::to_string(s.connects);
    out += ",\"last_error\":";
    append_json_string(out, s.last_error);
    out += ",\"channels\":[";
    for (std::size_t i = 0; i < s.channels.size(); ++i) {
      if (i > 0)
        out += ',';
      append_json_string(out, s.channels[i]);
    }
    out += "]},\"sinks\":[";
    for (std::size_t i = 0; i < workers_.size(); ++i) {
      const auto st = workers_[i]->stats();
      if (i > 0)
        out += ',';
      out += "{\"name\":";
      append_json_string(out, config_.sinks[i].name);
      out += ",\"type\":";
      append_json_string(out, config_.sinks[i].type_name());
      out += fmt::format(
          ",\"queued_events\":{},\"queued_bytes\":{},\"sent\":{},\"failed\":{},\"retries\":{},"
          "\"dead_lettered\":{},\"dropped\":{},\"stuck\":{},\"last_error\":",
          st.queued_events, st.queued_bytes, st.sent, st.failed, st.retries, st.dead_lettered,
          st.dropped, st.stuck ? "true" : "false");
      append_json_string(out, st.last_error);
      out += '}';
    }
    out += "]}";
    return out;
  }

  asio::awaitable<void> handle_signals() {
    asio::signal_set signals(io_, SIGINT, SIGTERM, SIGHUP);
    for (;;) {
      auto [ec, sig] = co_await signals.async_wait(use_tuple);
      if (ec)
        co_return;
      if (sig == SIGHUP) {
        notify_.reloading();
        reload();
        notify_.ready();  // also after a rejected reload: the old configuration keeps running
        continue;
      }
      log::info("app", "stopping", {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
      notify_.stopping();
      co_await shutdown();
      co_return;
    }
  }

  // Validates the file again. Applying a new configuration in place (routes swapped, unchanged
  // sinks kept) is the hot-reload work; until then a valid file is reported as needing a
  // restart and the running configuration stays.
  void reload() {
    auto result = config::load_file(config_.path);
    if (!result.ok()) {
      metrics_.config_reloads(false).Increment();
      for (const auto& e : result.errors) {
        log::error("config", "reload rejected", {{"error", e.format()}});
      }
      return;
    }
    log::warn("config", "the configuration is valid; restart sluice to apply it",
              {{"path", config_.path}});
  }

  asio::awaitable<void> shutdown() {
    stopping_ = true;
    client_->stop();
    co_await client_->stopped();
    const auto deadline = Clock::now() + kDrainGrace;
    // Drain every sink concurrently against one deadline.
    std::size_t pending = workers_.size();
    asio::steady_timer all_done(io_, Clock::time_point::max());
    for (auto& w : workers_) {
      asio::co_spawn(io_, w->stop(deadline), [&pending, &all_done](std::exception_ptr) {
        if (--pending == 0)
          all_done.cancel();
      });
    }
    if (pending > 0)
      co_await all_done.async_wait(use_tuple);
    admin_->stop();
  }

  config::Config config_;
  asio::io_context io_{1};
  SystemdNotifier notify_;  // after io_: its watchdog timer must go before the io_context
  sinks::BlockingPool pool_;
  Metrics metrics_;
  std::shared_ptr<const Router> router_;
  std::vector<prometheus::Counter*> routed_;                 // by route index
  std::vector<std::unique_ptr<sinks::SinkWorker>> workers_;  // by sink index
  std::unique_ptr<upstream::RealtimeClient> client_;
  std::unique_ptr<admin::AdminServer> admin_;
  RouteResult route_result_;  // reused for every event
  bool stopping_ = false;
  int exit_code_ = kExitOk;
};

}  // namespace

int run_daemon(const Options& options, config::Config config) {
  if (options.watch_config) {
    log::warn("config", "--watch-config is not supported yet; send SIGHUP to re-validate");
  }
  App app(std::move(config));
  return app.run();
}

}  // namespace sluice
