#include "daemon/app.hpp"

#include <malloc.h>

#include <algorithm>
#include <csignal>
#include <memory>
#include <vector>

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/container/small_vector.hpp>

#include "config/loader.hpp"
#include "core/json.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/utc.hpp"
#include "daemon/admin/server.hpp"
#include "daemon/config_watcher.hpp"
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
// How long the old connection of a URL-mode switch-over may take to answer its last ping.
constexpr std::chrono::seconds kSwitchGrace{5};

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

// One applied configuration: the routing table and the workers of the sinks it routes to. A
// reload builds the next one and swaps it in whole; an event that is being routed keeps the
// generation it started with until it has to wait, then routes again under the current one.
struct Generation {
  config::Config config;
  std::shared_ptr<const Router> router;
  std::vector<std::shared_ptr<sinks::SinkWorker>> workers;  // by index in config.sinks
  std::vector<prometheus::Counter*> routed;                 // by index in config.routes
};

upstream::Subscription make_subscription(const Generation& gen) {
  upstream::Subscription subscription;
  subscription.channels = gen.router->subscription_channels();
  for (const auto& route : gen.config.routes)
    subscription.entries.push_back({upstream::subscription_id(route.name), route.channels});
  return subscription;
}

std::string spool_path(const config::SinkConfig& sink) {
  if (sink.buffer.type != config::BufferConfig::Type::disk)
    return {};
  return sink.buffer.dir + "/" + sink.name;
}

// Parsing the configuration (yaml-cpp builds a node tree many times the file's size) leaves
// freed heap that glibc keeps mapped; give it back so that a large routing table does not
// inflate the footprint for the whole run (1,000 routes: 15.8 MB idle before, 11.9 MB after).
void release_free_heap() {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

// The daemon: one event loop (this thread), a small pool for blocking work, the realtime
// client, the current Generation (router and sink workers) and the admin server. Lives for the
// whole run; everything it owns runs on `io_` except what the sinks hand to `pool_`.
class App {
 public:
  App(const Options& options, config::Config config)
      : options_(options), first_config_(std::move(config)) {}

  int run() {
    if (!build())
      return kExitRuntime;
    asio::co_spawn(io_, handle_signals(), asio::detached);
    asio::co_spawn(io_, reloader(), asio::detached);
    for (auto& w : current_->workers)
      w->start();
    admin_->start();
    client_->start();
    if (watcher_) {
      if (auto ec = watcher_->start()) {
        log::error("config", "cannot watch the configuration file; reload with SIGHUP instead",
                   {{"path", current_->config.path}, {"error", ec.message()}});
      }
    }
    notify_.start_watchdog(io_.get_executor());
    notify_.ready();
    log::info("app", "started",
              {{"version", SLUICE_VERSION},
               {"sinks", std::to_string(current_->workers.size())},
               {"routes", std::to_string(current_->config.routes.size())}});
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
    auto gen = std::make_shared<Generation>();
    gen->config = std::move(first_config_);
    gen->router = std::make_shared<const Router>(gen->config);
    for (const auto& route : gen->config.routes)
      gen->routed.push_back(&metrics_.routed(route.name));
    for (const auto& sink : gen->config.sinks) {
      std::string error;
      auto worker = make_worker(sink, gen->config.appwrite.project, error);
      if (!worker) {
        log::error("app", "cannot create sink", {{"sink", sink.name}, {"error", error}});
        return false;
      }
      gen->workers.push_back(std::move(worker));
    }
    current_ = std::move(gen);

    std::string error;
    client_ = make_client(current_->config.appwrite, make_subscription(*current_), error);
    if (!client_) {
      log::error("app", "cannot set up the upstream client", {{"error", error}});
      return false;
    }

    const auto& admin = current_->config.admin;
    admin::Handlers handlers;
    handlers.ready = [this] { return ready(); };
    handlers.status_json = [this] { return status_json(); };
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
        [this](EventPtr e) { return on_event(std::move(e)); });
    if (!client->init(error))
      return nullptr;
    client->on_gap([this](auto from, auto to) { write_gap_markers(from, to); });
    return client;
  }

  // Called by a realtime client for every event, before it reads the next frame: awaiting
  // here (a full sink in `block` mode, a reload in progress) is what pushes back on the socket.
  asio::awaitable<void> on_event(EventPtr event) {
    // The workers that already took this event: after a wait it is routed again under the
    // current generation, and a worker that survived a reload must not get it twice. Shared
    // pointers, so a retired worker's address cannot be mistaken for a new one.
    boost::container::small_vector<std::shared_ptr<sinks::SinkWorker>, 4> accepted;
    for (bool first = true;; first = false) {
      while (reloading_ && !stopping_)
        co_await gate_.async_wait(use_tuple);
      if (stopping_)
        co_return;
      const Generation& gen = *current_;
      route_result_.clear();
      gen.router->route(*event, route_result_);
      if (first) {
        if (route_result_.unmatched())
          metrics_.events_unmatched().Increment();
        for (const auto r : route_result_.matched)
          gen.routed[r]->Increment();
      }
      std::shared_ptr<sinks::SinkWorker> full;
      for (const auto& t : route_result_.targets) {
        const auto& worker = gen.workers[t.sink];
        if (std::find(accepted.begin(), accepted.end(), worker) != accepted.end())
          continue;
        if (worker->offer(sinks::Record{event, t.route_name, t.channel}) ==
            sinks::SinkWorker::Accept::full) {
          full = worker;
          break;
        }
        accepted.push_back(worker);
      }
      if (!full)
        co_return;
      // Also woken by shutdown (and reloads) through the gate, so a sink that never frees
      // space cannot keep the client, and with it the drain, from stopping.
      using namespace asio::experimental::awaitable_operators;
      co_await (full->wait_for_space() || gate_.async_wait(use_tuple));
    }
  }

  // A marker record for each route of each sink with `gap_marker: true`, after the upstream
  // was down from `from` to `to`: Appwrite has no replay, so consumers must learn that events
  // of that window may be missing. It has the shape of a realtime `data` object, so every sink
  // and template handles it; `events` is ["sluice.gap"].
  void write_gap_markers(std::chrono::system_clock::time_point from,
                         std::chrono::system_clock::time_point to) {
    const Generation& gen = *current_;
    const auto seconds = std::chrono::duration<double>(to - from).count();
    const std::string from_text = format_utc_millis(from, "+00:00");  // as Appwrite writes them
    const std::string to_text = format_utc_millis(to, "+00:00");
    for (std::size_t s = 0; s < gen.config.sinks.size(); ++s) {
      if (!gen.config.sinks[s].gap_marker)
        continue;
      for (const auto& route : gen.config.routes) {
        if (std::find(route.sinks.begin(), route.sinks.end(), gen.config.sinks[s].name) ==
            route.sinks.end()) {
          continue;
        }
        std::string frame = R"({"type":"event","data":{"events":["sluice.gap"],"channels":[)";
        append_json_string(frame, route.channels.front());
        frame += R"(],"timestamp":)";
        append_json_string(frame, to_text);
        frame += R"(,"payload":{"$id":)";
        append_json_string(
            frame, fmt::format("gap-{}", make_event_id(from_text + route.name).substr(0, 16)));
        frame += R"(,"from":)";
        append_json_string(frame, from_text);
        frame += R"(,"to":)";
        append_json_string(frame, to_text);
        frame += fmt::format(R"(,"seconds":{:.3f},"project":)", seconds);
        append_json_string(frame, gen.config.appwrite.project);
        frame += R"(,"route":)";
        append_json_string(frame, route.name);
        frame += "}}}";
        frame.reserve(frame.size() + kJsonPadding);
        auto decoded =
            marker_decoder_.decode(std::move(frame), false, std::chrono::steady_clock::now(), to);
        if (decoded.kind != upstream::FrameKind::event)
          continue;  // cannot happen: the frame is ours
        // A marker is never worth blocking the upstream for: when the sink is full it is
        // dropped (and counted by the worker like any dropped record).
        if (gen.workers[s]->offer(
                sinks::Record{std::move(decoded.event), RouteName::intern(route.name), 0}) ==
            sinks::SinkWorker::Accept::full) {
          log::warn("app", "no room for a gap marker", {{"sink", gen.config.sinks[s].name}});
        }
      }
    }
    log::warn("upstream", "events may be missing: the subscription was down",
              {{"from", from_text}, {"to", to_text}, {"seconds", fmt::format("{:.3f}", seconds)}});
  }

  bool ready() const {
    if (!client_->subscribed())
      return false;
    for (const auto& w : current_->workers) {
      if (w->stats().stuck)
        return false;
    }
    return true;
  }

  std::string status_json() const {
    const auto& cfg = current_->config;
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
    append_json_string(out, cfg.appwrite.realtime_endpoint);
    out += ",\"project\":";
    append_json_string(out, cfg.appwrite.project);
    out += ",\"mode\":";
    append_json_string(out, s.mode);
    out += ",\"server_version\":";
    append_json_string(out, s.server_version);
    out += ",\"tls_verify\":";
    out += cfg.appwrite.tls.verify ? "true" : "false";
    out += ",\"connects\":" + std::to_string(s.connects);
    out += ",\"last_error\":";
    append_json_string(out, s.last_error);
    out += ",\"channels\":[";
    for (std::size_t i = 0; i < s.channels.size(); ++i) {
      if (i > 0)
        out += ',';
      append_json_string(out, s.channels[i]);
    }
    out += "]},\"config\":{\"path\":";
    append_json_string(out, cfg.path);
    out += fmt::format(",\"reloads\":{},\"last_reload_error\":", reloads_);
    append_json_string(out, last_reload_error_);
    out += "},\"sinks\":[";
    for (std::size_t i = 0; i < current_->workers.size(); ++i) {
      const auto st = current_->workers[i]->stats();
      if (i > 0)
        out += ',';
      out += "{\"name\":";
      append_json_string(out, cfg.sinks[i].name);
      out += ",\"type\":";
      append_json_string(out, cfg.sinks[i].type_name());
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
    reload_wake_.cancel();
  }

  asio::awaitable<void> reloader() {
    while (!stopping_) {
      if (!reload_requested_) {
        co_await reload_wake_.async_wait(use_tuple);
        continue;
      }
      reload_requested_ = false;
      reload_running_ = true;
      notify_.reloading();
      co_await reload();
      reload_running_ = false;
      reload_wake_.cancel();  // shutdown() may be waiting for the reload to end
      if (!stopping_)
        notify_.ready();  // also after a rejected reload: the old configuration keeps running
    }
  }

  void reject_reload(std::string reason) {
    metrics_.config_reloads(false).Increment();
    last_reload_error_ = std::move(reason);
  }

  // Loads and validates the file, then applies it: routes swap atomically, sinks whose
  // settings did not change keep their workers (queues and connections), removed sinks drain,
  // and the subscription changes without a window in which events are lost. An invalid file
  // leaves everything as it was.
  asio::awaitable<void> reload() {
    const std::string path = current_->config.path;
    auto result = config::load_file(path);
    if (!result.ok()) {
      for (const auto& e : result.errors)
        log::error("config", "reload rejected", {{"error", e.format()}});
      reject_reload(result.errors.front().format());
      co_return;
    }
    auto next = std::make_shared<Generation>();
    next->config = std::move(*result.config);
    apply_overrides(options_, next->config);
    const Generation& old = *current_;
    if (!(next->config.admin == old.config.admin)) {
      log::warn("config", "admin settings take effect at the next restart");
      next->config.admin = old.config.admin;
    }

    // Events wait at the gate (TCP backpressure) while workers are swapped.
    reloading_ = true;
    std::vector<std::size_t> stopped_before;  // old sinks stopped to free their disk buffer
    std::string error;
    next->workers.resize(next->config.sinks.size());
    for (std::size_t i = 0; i < next->config.sinks.size(); ++i) {
      const auto& sink = next->config.sinks[i];
      const auto* before = old.config.find_sink(sink.name);
      if (before && before->same_settings(sink)) {
        next->workers[i] = old.workers[index_of(old.config, *before)];
        continue;
      }
      // One disk buffer, one writer: a changed sink's old worker stops now (what it holds
      // stays on disk and the new worker delivers it first), and so does a removed sink of
      // the same name that is still draining.
      if (const auto spool = spool_path(sink); !spool.empty()) {
        std::vector<std::shared_ptr<sinks::SinkWorker>> holders;
        if (before && spool_path(*before) == spool) {
          stopped_before.push_back(index_of(old.config, *before));
          holders.push_back(old.workers[stopped_before.back()]);
        }
        for (std::size_t r = 0; r < retiring_workers_.size(); ++r) {
          if (retiring_paths_[r] == spool)
            holders.push_back(retiring_workers_[r]);  // copied: the list changes as they finish
        }
        for (const auto& w : holders)
          co_await w->stop(Clock::now());
      }
      next->workers[i] = make_worker(sink, next->config.appwrite.project, error);
      if (!next->workers[i]) {
        error = fmt::format("sink \"{}\": {}", sink.name, error);
        break;
      }
    }
    if (!error.empty()) {
      // Undo: the new workers never started; the old ones stopped for their disk buffer come
      // back from their old settings, so nothing they buffered is stranded.
      for (auto& w : next->workers) {
        if (w && std::find(old.workers.begin(), old.workers.end(), w) == old.workers.end())
          co_await w->stop(Clock::now());
      }
      next.reset();
      for (const auto i : stopped_before) {
        std::string again;
        auto restored =
            make_worker(current_->config.sinks[i], current_->config.appwrite.project, again);
        if (!restored) {
          log::error("app", "cannot restore a sink after a failed reload; exiting",
                     {{"sink", current_->config.sinks[i].name}, {"error", again}});
          exit_code_ = kExitRuntime;
          request_stop();
          break;
        }
        restored->start();
        current_->workers[i] = std::move(restored);
      }
      reloading_ = false;
      gate_.cancel();
      log::error("config", "reload rejected", {{"error", error}});
      reject_reload(std::move(error));
      co_return;
    }
    next->router = std::make_shared<const Router>(next->config);
    for (const auto& route : next->config.routes)
      next->routed.push_back(&metrics_.routed(route.name));

    // The swap. Old workers not carried over drain in the background.
    auto previous = std::exchange(current_, next);
    for (std::size_t i = 0; i < previous->workers.size(); ++i) {
      const auto& w = previous->workers[i];
      const bool kept =
          std::find(next->workers.begin(), next->workers.end(), w) != next->workers.end();
      const bool stopped =
          std::find(stopped_before.begin(), stopped_before.end(), i) != stopped_before.end();
      if (!kept && !stopped)
        retire(w, spool_path(previous->config.sinks[i]));
    }
    for (const auto& w : next->workers) {
      if (std::find(previous->workers.begin(), previous->workers.end(), w) ==
          previous->workers.end()) {
        w->start();
      }
    }
    log::configure(next->config.log.level, next->config.log.format);
    reloading_ = false;
    gate_.cancel();

    change_subscription(previous->config.appwrite);
    ++reloads_;
    last_reload_error_.clear();
    metrics_.config_reloads(true).Increment();
    log::info("config", "reloaded",
              {{"path", path},
               {"routes", std::to_string(next->config.routes.size())},
               {"sinks", std::to_string(next->config.sinks.size())}});
    release_free_heap();
  }

  // Drains a worker the new configuration no longer uses, within the drain grace period;
  // what its disk buffer still holds stays there for a sink of the same name.
  void retire(std::shared_ptr<sinks::SinkWorker> worker, std::string spool) {
    ++retiring_;
    retiring_workers_.push_back(worker);
    retiring_paths_.push_back(std::move(spool));
    log::info("app", "draining a removed sink", {{"sink", worker->name()}});
    asio::co_spawn(
        io_, worker->stop(Clock::now() + kDrainGrace), [this, worker](std::exception_ptr) {
          const auto it = std::find(retiring_workers_.begin(), retiring_workers_.end(), worker);
          if (it != retiring_workers_.end()) {
            retiring_paths_.erase(retiring_paths_.begin() + (it - retiring_workers_.begin()));
            retiring_workers_.erase(it);
          }
          if (--retiring_ == 0)
            retired_.cancel();
        });
  }

  static std::size_t index_of(const config::Config& cfg, const config::SinkConfig& sink) {
    return static_cast<std::size_t>(&sink - cfg.sinks.data());
  }

  // In message mode the open connection changes its subscriptions (subscribe, then
  // unsubscribe). A URL-mode connection cannot: a second client connects with the new
  // channels and the first one closes only once the second is subscribed. New Appwrite
  // settings (endpoint, project, credentials) take the second path too.
  void change_subscription(const config::AppwriteConfig& before) {
    // A switch still coming up from an earlier reload is abandoned: what it subscribes to
    // was fixed when it connected. The decision below is made afresh against client_.
    if (next_client_)
      retire_client(std::move(next_client_), false);
    auto subscription = make_subscription(*current_);
    const auto& appwrite = current_->config.appwrite;
    const bool channels_changed = subscription.channels != client_->status().channels;
    const bool open_url_connection =
        client_->status().mode == "url" &&
        client_->status().state != upstream::RealtimeClient::State::backing_off;
    if (appwrite == before && !(channels_changed && open_url_connection)) {
      client_->update_subscription(std::move(subscription));
      return;
    }
    std::string error;
    auto next = make_client(appwrite, std::move(subscription), error);
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

  // Stops a client that is no longer the primary one. `graceful`: it first reads what the
  // server queued before a ping it sends now (bounded by kSwitchGrace), so no event published
  // before the new subscription existed is left unread on the old socket.
  void retire_client(std::unique_ptr<upstream::RealtimeClient> client, bool graceful) {
    ++retiring_;
    std::shared_ptr<upstream::RealtimeClient> held(std::move(client));
    auto fallback = std::make_shared<asio::steady_timer>(io_);
    if (graceful) {
      held->stop_after_pong();
      fallback->expires_after(kSwitchGrace);
      fallback->async_wait([held](boost::system::error_code ec) {
        if (!ec)
          held->stop();  // no pong in time: stop anyway
      });
    } else {
      held->stop();
    }
    asio::co_spawn(io_, held->stopped(), [this, held, fallback](std::exception_ptr) {
      fallback->cancel();
      if (--retiring_ == 0)
        retired_.cancel();
    });
  }

  asio::awaitable<void> shutdown() {
    if (stopping_)
      co_return;
    stopping_ = true;
    notify_.stopping();
    boost::system::error_code ignored;
    signals_.cancel(ignored);
    gate_.cancel();
    reload_wake_.cancel();
    if (watcher_)
      watcher_->stop();
    while (reload_running_)
      co_await reload_wake_.async_wait(use_tuple);
    if (next_client_)
      retire_client(std::move(next_client_), false);
    client_->stop();
    co_await client_->stopped();
    const auto deadline = Clock::now() + kDrainGrace;
    // Drain every sink concurrently against one deadline, with any still retiring.
    for (auto& w : current_->workers) {
      ++retiring_;
      asio::co_spawn(io_, w->stop(deadline), [this](std::exception_ptr) {
        if (--retiring_ == 0)
          retired_.cancel();
      });
    }
    while (retiring_ > 0)
      co_await retired_.async_wait(use_tuple);
    admin_->stop();
  }

  Options options_;
  config::Config first_config_;  // moved into the first Generation by build()
  asio::io_context io_{1};
  SystemdNotifier notify_;  // after io_: its watchdog timer must go before the io_context
  sinks::BlockingPool pool_;
  Metrics metrics_;
  std::shared_ptr<Generation> current_;
  std::unique_ptr<upstream::RealtimeClient> client_;
  std::unique_ptr<upstream::RealtimeClient> next_client_;  // a reload's, until it subscribes
  std::unique_ptr<admin::AdminServer> admin_;
  std::unique_ptr<ConfigWatcher> watcher_;
  upstream::FrameDecoder marker_decoder_;
  RouteResult route_result_;  // reused for every event; never held across a suspension
  // Steady timers used as condition variables (expiry "never", cancel() wakes the waiters).
  asio::signal_set signals_{io_, SIGINT, SIGTERM, SIGHUP};
  asio::steady_timer gate_{io_, Clock::time_point::max()};         // on_event during a reload
  asio::steady_timer reload_wake_{io_, Clock::time_point::max()};  // reloader and shutdown
  asio::steady_timer retired_{io_, Clock::time_point::max()};      // retiring workers/clients
  bool reloading_ = false;
  bool reload_requested_ = false;
  bool reload_running_ = false;
  std::size_t retiring_ = 0;  // workers and clients still stopping
  std::vector<std::shared_ptr<sinks::SinkWorker>> retiring_workers_;
  std::vector<std::string> retiring_paths_;  // their disk buffers, "" for memory
  std::uint64_t reloads_ = 0;
  std::string last_reload_error_;
  bool stopping_ = false;
  int exit_code_ = kExitOk;
};

}  // namespace

int run_daemon(const Options& options, config::Config config) {
  App app(options, std::move(config));
  return app.run();
}

}  // namespace sluice
