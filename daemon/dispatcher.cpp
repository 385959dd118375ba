#include "daemon/dispatcher.hpp"

#include <algorithm>
#include <utility>

#include <fmt/format.h>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/container/small_vector.hpp>
#include <boost/json.hpp>

#include "core/log.hpp"
#include "core/utc.hpp"

namespace sluice {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

// Every record the dispatcher hands to a worker is built here: the route and channel are the
// labels of the first route that sent the event to that sink (`channel` indexes the event's
// own channel list).
sinks::Record make_record(EventPtr event, RouteName route, std::uint32_t channel) {
  return sinks::Record{std::move(event), route, channel};
}

}  // namespace

Generation::Generation(config::Config config_in, Metrics& metrics)
    : config(std::move(config_in)), router(std::make_shared<const Router>(config)) {
  routed.reserve(config.routes.size());
  routed_bytes.reserve(config.routes.size());
  last_event.reserve(config.routes.size());
  for (const auto& route : config.routes) {
    routed.push_back(&metrics.routed(route.name));
    routed_bytes.push_back(&metrics.routed_bytes(route.name));
    last_event.push_back(&metrics.route_last_event(route.name));
  }
}

EventPtr make_gap_marker(const config::RouteConfig& route, std::string_view project,
                         std::chrono::system_clock::time_point from,
                         std::chrono::system_clock::time_point to, const GapRecovery& recovery) {
  const std::string from_text = format_utc_millis(from, "+00:00");  // as Appwrite writes them
  const std::string to_text = format_utc_millis(to, "+00:00");
  // Written as 2.150, not Boost.JSON's 2.15E0: the numbers go in as text after serialising.
  const std::string seconds =
      fmt::format(R"("seconds":{:.3f},)", std::chrono::duration<double>(to - from).count());
  const std::string not_fetched =
      fmt::format(R"("not_fetched_seconds":{:.3f},)", recovery.not_fetched_seconds);
  constexpr std::string_view kSecondsSlot = R"("seconds":0,)";
  constexpr std::string_view kNotFetchedSlot = R"("not_fetched_seconds":0,)";
  const auto fill_seconds = [&](std::string text) {
    // Only a key can appear unescaped: every string value has its quotes escaped.
    text.replace(text.find(kSecondsSlot), kSecondsSlot.size(), seconds);
    text.replace(text.find(kNotFetchedSlot), kNotFetchedSlot.size(), not_fetched);
    return text;
  };
  const std::string_view channel = route.channels.front();
  constexpr std::string_view kEvent = "sluice.gap";

  json::object payload;
  payload["$id"] = fmt::format("gap-{}", make_event_id(from_text + route.name).substr(0, 16));
  payload["from"] = from_text;
  payload["to"] = to_text;
  payload["seconds"] = 0;  // the slot fill_seconds() writes into
  payload["project"] = project;
  payload["route"] = route.name;
  payload["recovered"] = recovery.recovered;
  payload["deletes"] = "unknown";
  payload["not_fetched_seconds"] = 0;  // the slot fill_seconds() writes into
  json::array not_covered;
  for (const auto& uncovered : recovery.not_covered)
    not_covered.emplace_back(uncovered);
  payload["not_covered"] = std::move(not_covered);
  const std::string payload_text = fill_seconds(json::serialize(payload));

  json::object data;
  data["events"] = json::array{json::string_view(kEvent)};
  data["channels"] = json::array{json::string_view(channel)};
  data["timestamp"] = to_text;
  data["payload"] = std::move(payload);

  // Views into `frame` (the `data` object, and its payload: the last member) and into
  // `strings` (the unescaped texts), as the decoder fills them for a received event.
  auto event = std::make_shared<Event>();
  const std::string text = fill_seconds(json::serialize(data));
  event->frame.reserve(text.size() + kJsonPadding);
  event->frame.assign(text);
  const std::string_view frame = event->frame;
  event->data = frame;
  event->payload = frame.substr(frame.size() - 1 - payload_text.size(), payload_text.size());
  event->strings.reserve(kEvent.size() + channel.size() + to_text.size());
  const auto keep = [&](std::string_view s) {
    const std::size_t at = event->strings.size();
    event->strings.append(s);
    return std::string_view(event->strings).substr(at, s.size());
  };
  event->events.push_back(keep(kEvent));
  event->channels.push_back(keep(channel));
  event->timestamp_text = keep(to_text);
  event->timestamp = std::chrono::floor<std::chrono::milliseconds>(to);
  event->id = make_event_id(event->data);
  event->received = std::chrono::steady_clock::now();
  return event;
}

Dispatcher::Dispatcher(asio::any_io_executor loop, Metrics& metrics)
    : metrics_(metrics), gate_(std::move(loop)) {}

std::shared_ptr<Generation> Dispatcher::install(std::shared_ptr<Generation> next) {
  auto previous = std::exchange(current_, std::move(next));
  dedup_.set_capacity(current_->config.dedup_window);
  gate_.notify_all();
  return previous;
}

void Dispatcher::hold() {
  held_ = true;
}

void Dispatcher::release() {
  held_ = false;
  gate_.notify_all();
}

void Dispatcher::stop() {
  stopped_ = true;
  gate_.notify_all();
}

asio::awaitable<bool> Dispatcher::dispatch(EventPtr event) {
  if (dedup_.seen(event->id, content_hash(event->payload), event->recovered)) {
    metrics_.events_deduplicated().Increment();
    co_return false;
  }
  // The sinks that already took this event, by name: after a wait it is routed again under the
  // current generation, and a sink must not get it twice, whether its worker survived a
  // reload or was replaced (a changed sink's old worker still delivers what it took, and a
  // disk buffer hands it to the new one).
  // Copies, not views: a retired worker may be gone by the time the event routes again.
  boost::container::small_vector<std::string, 4> accepted;
  bool tracked = false;
  for (bool first = true;; first = false) {
    while (held_ && !stopped_) {
      ++waiting_;
      co_await gate_.wait();
      --waiting_;
    }
    if (stopped_)
      co_return false;
    const Generation& gen = *current_;
    route_result_.clear();
    gen.router->route(*event, route_result_);
    if (first) {
      if (route_result_.unmatched())
        metrics_.events_unmatched().Increment();
      if (!route_result_.matched.empty()) {
        const double now =
            std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
                .count();
        const auto bytes = static_cast<double>(event->data.size());
        for (const auto r : route_result_.matched) {
          gen.routed[r]->Increment();
          gen.routed_bytes[r]->Increment(bytes);
          gen.last_event[r]->Set(now);
        }
      }
    }
    // Wrapped once, before any sink holds a copy: the tracker learns when the last one goes.
    if (tracker_ && !tracked && !route_result_.targets.empty()) {
      event = tracker_->track(std::move(event));
      tracked = true;
    }
    std::shared_ptr<sinks::SinkWorker> full;
    for (const auto& t : route_result_.targets) {
      const auto& worker = gen.workers[t.sink];
      if (std::find(accepted.begin(), accepted.end(), worker->name()) != accepted.end())
        continue;
      if (worker->offer(make_record(event, t.route_name, t.channel)) ==
          sinks::SinkWorker::Accept::full) {
        full = worker;
        break;
      }
      accepted.push_back(worker->name());
    }
    if (!full)
      co_return true;
    // Also woken by the gate (a reload's swap, shutdown), so a sink that never frees space
    // cannot keep the client, and with it the drain, from stopping.
    using namespace asio::experimental::awaitable_operators;
    ++waiting_;
    co_await (full->wait_for_space() || gate_.wait());
    --waiting_;
  }
}

void Dispatcher::write_gap_markers(
    std::chrono::system_clock::time_point from, std::chrono::system_clock::time_point to,
    const std::function<GapRecovery(const config::RouteConfig&)>& recovery) {
  const Generation& gen = *current_;
  for (std::size_t s = 0; s < gen.config.sinks.size(); ++s) {
    const auto& sink = gen.config.sinks[s];
    if (!sink.gap_marker)
      continue;
    for (const auto& route : gen.config.routes) {
      if (std::find(route.sinks.begin(), route.sinks.end(), sink.name) == route.sinks.end())
        continue;
      // A marker is never worth blocking the upstream for: when the sink is full it is
      // dropped (and counted by the worker like any dropped record).
      auto marker = make_gap_marker(route, gen.config.appwrite.project, from, to, recovery(route));
      if (gen.workers[s]->offer(make_record(std::move(marker), RouteName::intern(route.name), 0)) ==
          sinks::SinkWorker::Accept::full) {
        log::warn("app", "no room for a gap marker", {{"sink", sink.name}});
      }
    }
  }
  log::warn("upstream", "events may be missing: the subscription was down",
            {{"from", format_utc_millis(from, "+00:00")},
             {"to", format_utc_millis(to, "+00:00")},
             {"seconds", fmt::format("{:.3f}", std::chrono::duration<double>(to - from).count())}});
}

}  // namespace sluice
