#include "daemon/recovery/backfill.hpp"

#include <algorithm>
#include <variant>

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json/parse.hpp>

#include "core/log.hpp"
#include "core/utc.hpp"
#include "daemon/recovery/backfill_pager.hpp"
#include "daemon/recovery/backfill_synth.hpp"
#include "net/endpoint.hpp"
#include "net/transport.hpp"

namespace sluice::recovery {

namespace asio = boost::asio;
namespace json = boost::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using SysTime = std::chrono::system_clock::time_point;

namespace {

// One page may take a while to build and send on a large table.
constexpr milliseconds kRequestTimeout{30000};
constexpr seconds kFirstRetry{1};
constexpr seconds kMaxRetry{60};
// How long a 429/503 without Retry-After is waited out, and the most a Retry-After is obeyed.
constexpr seconds kDefaultRetryAfter{5};
constexpr seconds kMaxRetryAfter{300};
// How often the run checks whether the subscription is up before it fixes its end.
constexpr milliseconds kSubscribedPoll{200};
// Databases, tables or buckets one discovery listing may name: far above any real project, and
// a bound on what a server that never stops paging can make sluice hold.
constexpr std::size_t kMaxDiscovered = 100000;

// The `version` of a /health/version answer; empty when the answer is anything else.
std::string parse_server_version(unsigned status, std::string_view body) {
  if (status != 200)
    return {};
  boost::system::error_code ec;
  const auto v = json::parse(body, ec);
  const auto* field = !ec && v.is_object() ? v.as_object().if_contains("version") : nullptr;
  return field != nullptr && field->is_string() ? std::string(field->as_string()) : std::string();
}

Millis to_millis(SysTime t) {
  return std::chrono::floor<milliseconds>(t);
}

double seconds_of(std::chrono::milliseconds d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

BackfillRunner::BackfillRunner(asio::any_io_executor loop, Dispatcher& dispatcher,
                               CheckpointTracker& tracker, Metrics& metrics,
                               std::function<Upstream()> upstream)
    : loop_(loop),
      dispatcher_(dispatcher),
      tracker_(tracker),
      metrics_(metrics),
      upstream_(std::move(upstream)),
      wake_(loop),
      timer_(loop),
      cancel_(loop),
      done_(loop) {}

void BackfillRunner::start() {
  asio::co_spawn(loop_, loop(), [this](std::exception_ptr) {
    finished_ = true;
    done_.notify_all();
  });
}

void BackfillRunner::request(std::optional<SysTime> from, std::optional<SysTime> to) {
  if (stopping_)
    return;
  const auto& config = dispatcher_.current().config;
  if (!config.backfill.enabled) {
    // Nothing is listed: the marker says the whole gap is unknown, as before recovery existed.
    if (from && to) {
      dispatcher_.write_gap_markers(*from, *to, [&](const config::RouteConfig& route) {
        return GapRecovery{
            .recovered = 0,
            .not_fetched_seconds = std::chrono::duration<double>(*to - *from).count(),
            .not_covered = route.channels};
      });
    }
    return;
  }
  if (!floor_) {
    // Nothing persisted may claim more than where this gap starts until it is recovered.
    // live_until stops advancing while a backfill is pending, so it stays where live delivery
    // ended; without it (a state saved before the first second of live events), the oldest
    // checkpoint, or the gap's start.
    const auto state = tracker_.snapshot();
    std::optional<Millis> floor = state.live_until;
    if (!floor) {
      for (const auto& [key, checkpoint] : state.resources)
        floor = floor ? std::min(*floor, checkpoint.updated_at) : checkpoint.updated_at;
    }
    if (!floor && from)
      floor = to_millis(*from);
    if (floor) {
      floor_ = floor;
      tracker_.set_floor(floor_);
    }
  }
  if (pending_)
    merge(*pending_, Gap{from, to});
  else
    pending_ = Gap{from, to};
  metrics_.backfill_running().Set(1);
  wake_.notify_all();
}

void BackfillRunner::merge(Gap& into, const Gap& gap) {
  // No start means "from the restored checkpoints" (the downtime before a start): the earliest
  // of all, so a reconnect merged into it must not replace it with its own, later start.
  into.from = into.from && gap.from ? std::optional(std::min(*into.from, *gap.from)) : std::nullopt;
  if (gap.to)
    into.to = into.to ? std::max(*into.to, *gap.to) : *gap.to;
}

void BackfillRunner::restart() {
  ++epoch_;
  timer_.cancel();
  cancel_.notify_all();
  wake_.notify_all();
}

void BackfillRunner::stop() {
  stopping_ = true;
  ++epoch_;
  timer_.cancel();
  cancel_.notify_all();
  wake_.notify_all();
}

asio::awaitable<void> BackfillRunner::stopped() {
  while (!finished_)
    co_await done_.wait();
}

admin::StatusReport::Recovery BackfillRunner::status() const {
  admin::StatusReport::Recovery out;
  out.enabled = dispatcher_.current().config.backfill.enabled;
  out.running = busy();
  out.checkpoints = tracker_.snapshot().resources.size();
  out.last_error = last_error_;
  out.last_run = last_run_;
  return out;
}

asio::awaitable<bool> BackfillRunner::pause(std::chrono::steady_clock::duration delay,
                                            std::uint64_t epoch) {
  if (epoch != epoch_)
    co_return false;
  timer_.expires_after(delay);
  co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
  co_return epoch == epoch_;
}

asio::awaitable<void> BackfillRunner::loop() {
  seconds retry = kFirstRetry;
  while (!stopping_) {
    if (!pending_) {
      co_await wake_.wait();
      continue;
    }
    const std::uint64_t epoch = epoch_;
    // The listing ends where live events begin: wait until the subscription is up.
    if (!upstream_().subscribed) {
      co_await pause(kSubscribedPoll, epoch);
      continue;
    }
    const Gap gap = *std::exchange(pending_, std::nullopt);
    running_ = true;
    const auto outcome = co_await run(gap, epoch);
    running_ = false;
    if (stopping_)
      break;
    if (outcome != Outcome::done) {
      // Listed again from the same floor: what was dispatched already is dropped as a repeat.
      if (pending_)
        merge(*pending_, gap);
      else
        pending_ = gap;
      if (outcome == Outcome::failed) {
        co_await pause(retry, epoch_);
        retry = std::min(retry * 2, kMaxRetry);
      }
      continue;
    }
    retry = kFirstRetry;
    if (!pending_) {
      floor_.reset();
      tracker_.set_floor(std::nullopt);
      metrics_.backfill_running().Set(0);
    }
  }
  metrics_.backfill_running().Set(0);
}

asio::awaitable<std::optional<upstream::Headers>> BackfillRunner::headers(
    const config::AppwriteConfig& a, std::string& error) {
  upstream::Headers out;
  out.emplace_back("X-Appwrite-Project", a.project);
  if (a.auth.kind == config::AuthConfig::Kind::api_key) {
    // The key itself: it may list what the service user's session could not.
    out.emplace_back("X-Appwrite-Key", a.auth.api_key.reveal());
    co_return out;
  }
  if (!credentials_ || credentials_for_ != a) {
    const auto endpoint = net::parse_endpoint(a.endpoint);
    if (!endpoint) {
      error = "appwrite endpoint is not an http(s) URL";
      co_return std::nullopt;
    }
    credentials_ =
        upstream::make_credentials(a, upstream::RestTarget{*endpoint, tls_, a.tls.verify});
    credentials_for_ = a;
  }
  // The session or JWT the realtime handshake presents works on REST too.
  auto more = co_await credentials_->headers(error);
  if (!more)
    co_return std::nullopt;
  for (auto& h : *more)
    out.push_back(std::move(h));
  co_return out;
}

asio::awaitable<std::optional<upstream::RestResponse>> BackfillRunner::call(Calls& calls,
                                                                            std::string path) {
  if (calls.epoch != epoch_)
    co_return std::nullopt;
  if (const auto now = std::chrono::steady_clock::now(); calls.next > now) {
    if (!co_await pause(calls.next - now, calls.epoch))
      co_return std::nullopt;
  }
  calls.next = std::chrono::steady_clock::now() + calls.interval;
  upstream::RestResponse out;
  const auto hs = co_await headers(*calls.appwrite, out.error);
  // stop() or restart() while the credentials were fetched: their wake-up is gone.
  if (calls.epoch != epoch_)
    co_return std::nullopt;
  if (!hs) {
    out.error = "credentials: " + out.error;
    co_return out;
  }
  const std::string no_body;
  // Shutdown and reload do not wait for a slow answer: they cut the request off.
  using namespace asio::experimental::awaitable_operators;
  auto answered =
      co_await (upstream::rest_call(calls.endpoint, tls_.get(), calls.appwrite->tls.verify,
                                    boost::beast::http::verb::get, path, *hs, no_body,
                                    kRequestTimeout, kMaxPageBytes) ||
                cancel_.wait());
  if (calls.epoch != epoch_ || answered.index() != 0)
    co_return std::nullopt;
  out = std::get<0>(std::move(answered));
  if ((out.status == 401 || out.status == 403) && credentials_)
    credentials_->rejected();
  co_return out;
}

asio::awaitable<BackfillRunner::Outcome> BackfillRunner::discover(
    Calls& calls, const Plan& plan, const config::Config& config, const State& state,
    const PlanContext& context, std::vector<Target>& targets, std::string& error) {
  // Every id of one listing, page by page.
  std::vector<Listed> found;
  // Views and named strings only: GCC 12 double-destroys class temporaries in co_await.
  const auto list = [&](std::string_view base, std::string_view key) -> asio::awaitable<bool> {
    found.clear();
    std::optional<std::string> cursor;
    for (;;) {
      std::string path = discovery_path(base, cursor);
      const auto answer = co_await call(calls, std::move(path));
      if (!answer)
        co_return false;
      auto page = answer->error.empty() ? parse_discovery(answer->status, answer->body, key)
                                        : DiscoveryPage{{}, answer->error};
      if (!page.error.empty()) {
        metrics_.backfill_requests(answer->status == 429 ? "rate_limited" : "failed").Increment();
        error = fmt::format("listing {}: {}", base, page.error);
        co_return false;
      }
      metrics_.backfill_requests("ok").Increment();
      const bool last = page.items.size() < kDiscoveryPage;
      // A server that ignores the cursor would page forever: a page must move it.
      if (!page.items.empty() && cursor == page.items.back().id) {
        error = fmt::format("listing {}: the server answered the same page again", base);
        co_return false;
      }
      if (found.size() + page.items.size() > kMaxDiscovered) {
        error = fmt::format("listing {}: more than {} items", base, kMaxDiscovered);
        co_return false;
      }
      if (!page.items.empty())
        cursor = page.items.back().id;
      for (auto& item : page.items)
        found.push_back(std::move(item));
      if (last)
        co_return true;
    }
  };
  const auto add = [&](const std::string& key, std::string_view type) {
    if (std::any_of(targets.begin(), targets.end(), [&](const Target& t) { return t.key == key; }))
      return;
    if (auto target = plan_target(key, type, type == "tablesdb", config.backfill, state, context))
      targets.push_back(std::move(*target));
  };
  if (plan.discover_databases) {
    if (!co_await list("/databases", "databases"))
      co_return error.empty() ? Outcome::interrupted : Outcome::failed;
    const auto databases = found;
    for (const auto& db : databases) {
      const bool tables = db.type == "tablesdb" && has_tablesdb_api(context.server_version);
      const std::string base =
          tables ? "/tablesdb/" + db.id + "/tables" : "/databases/" + db.id + "/collections";
      if (!co_await list(base, tables ? "tables" : "collections"))
        co_return error.empty() ? Outcome::interrupted : Outcome::failed;
      for (const auto& table : found)
        add("databases/" + db.id + "/tables/" + table.id, db.type);
    }
  }
  if (plan.discover_buckets) {
    if (!co_await list("/storage/buckets", "buckets"))
      co_return error.empty() ? Outcome::interrupted : Outcome::failed;
    for (const auto& bucket : found)
      add("buckets/" + bucket.id, "");
  }
  co_return Outcome::done;
}

asio::awaitable<BackfillRunner::Outcome> BackfillRunner::run(const Gap& gap, std::uint64_t epoch) {
  const auto started_wall = std::chrono::system_clock::now();
  const auto started = std::chrono::steady_clock::now();
  const config::Config config = dispatcher_.current().config;  // fixed for this run
  const auto& appwrite = config.appwrite;
  const auto fail = [&](std::string error) {
    log::warn("backfill", "backfill failed; retrying", {{"error", error}});
    last_error_ = std::move(error);
    metrics_.backfill_runs(false).Increment();
    return Outcome::failed;
  };

  const auto endpoint = net::parse_endpoint(appwrite.endpoint);
  if (!endpoint)
    co_return fail("appwrite endpoint is not an http(s) URL");
  if (endpoint->secure && !tls_) {
    std::string error;
    tls_ = net::make_client_tls_context(appwrite.tls, error);
    if (!tls_)
      co_return fail(error);
  }

  State state = tracker_.snapshot();
  if (gap.from) {
    // The gap the client measured; live_until, frozen since the floor was set, is normally
    // before it. The earlier of the two: nothing between them was seen for sure.
    const auto from = to_millis(*gap.from);
    state.live_until = state.live_until ? std::min(*state.live_until, from) : from;
  }
  Calls calls{*endpoint, &appwrite, epoch, std::chrono::steady_clock::now(),
              std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                  std::chrono::duration<double>(1.0 / config.backfill.rate))};
  std::string server_version = upstream_().server_version;
  if (server_version.empty()) {
    // A fixed `subscribe:` mode skips the client's version probe, but the API generation and
    // the event shapes to rebuild depend on it.
    std::string path = "/health/version";
    const auto answer = co_await call(calls, std::move(path));
    if (!answer)
      co_return Outcome::interrupted;
    server_version = parse_server_version(answer->status, answer->body);
    if (server_version.empty())
      co_return fail(fmt::format("could not read the server version (HTTP {}{}{})", answer->status,
                                 answer->error.empty() ? "" : ": ", answer->error));
  }
  PlanContext context{server_version, to_millis(started_wall),
                      gap.from ? std::optional(to_millis(*gap.from)) : std::nullopt};
  const Plan plan = plan_backfill(config, state, context);
  for (const auto& u : plan.not_covered) {
    log::warn("backfill", "a channel cannot be backfilled",
              {{"route", u.route}, {"channel", u.channel}, {"reason", u.reason}});
  }
  std::vector<Target> targets = plan.targets;
  if (plan.discover_databases || plan.discover_buckets) {
    std::string error;
    const auto found = co_await discover(calls, plan, config, state, context, targets, error);
    if (found == Outcome::interrupted)
      co_return found;
    if (found == Outcome::failed)
      co_return fail(std::move(error));
  }
  // Anything Appwrite changes after this instant (plus the clock-skew margin) arrives live.
  const Millis until =
      to_millis(started_wall) + std::chrono::duration_cast<milliseconds>(config.backfill.margin);

  admin::StatusReport::Recovery::Run report;
  report.to = started_wall;
  report.from = started_wall;
  std::map<std::string, std::uint64_t, std::less<>> per_route;
  Synthesizer synth(plan.profile, appwrite.project);
  RouteResult routed;

  for (const auto& target : targets) {
    report.from = std::min(report.from, SysTime(target.from));
    Pager pager(target, until, config.backfill.page_size);
    while (!pager.done()) {
      if (epoch != epoch_)
        co_return Outcome::interrupted;
      std::string path = pager.next_path();
      const auto answer = co_await call(calls, std::move(path));
      if (!answer)
        co_return Outcome::interrupted;
      const auto& response = *answer;
      if (!response.error.empty()) {
        metrics_.backfill_requests("failed").Increment();
        co_return fail(fmt::format("listing {}: {}", target.key, response.error));
      }
      auto page = pager.on_response(response.status, response.body, response.retry_after);
      if (!page.error.empty()) {
        if (response.status == 429 || response.status == 503) {
          // Appwrite's rate limit: wait as asked and ask again, within the same run.
          metrics_.backfill_requests("rate_limited").Increment();
          const auto wait = std::min(page.retry_after.value_or(kDefaultRetryAfter), kMaxRetryAfter);
          log::info("backfill", "rate limited; waiting",
                    {{"resource", target.key}, {"seconds", std::to_string(wait.count())}});
          if (!co_await pause(wait, epoch))
            co_return Outcome::interrupted;
          continue;
        }
        metrics_.backfill_requests("failed").Increment();
        if (response.status == 400 || response.status == 403 || response.status == 404) {
          // This table or bucket cannot be listed (gone, not readable, a query it refuses):
          // retrying would not change that, and would hold every checkpoint back. It is
          // reported as not covered and the run goes on with the others.
          log::warn("backfill",
                    "a table or bucket cannot be listed; its changes in the gap are unknown",
                    {{"resource", target.key}, {"error", page.error}});
          report.not_covered.push_back(target.key + ": " + page.error);
          metrics_.backfill_unknown("not_covered").Increment();
          break;
        }
        co_return fail(fmt::format("listing {}: {}", target.key, page.error));
      }
      metrics_.backfill_requests("ok").Increment();
      for (const auto& row : page.rows) {
        auto made = synth.make(target, row);
        if (made.duplicate) {
          ++report.duplicates;
          continue;
        }
        if (!made.event) {
          log::warn("backfill", "a listed resource could not be made an event; skipped",
                    {{"resource", target.key}, {"error", made.error}});
          metrics_.backfill_unknown("rejected").Increment();
          continue;
        }
        // Routed here too, for the per-route counts of the gap markers; counted only when the
        // dispatcher took the event (not a repeat of one delivered live or listed before).
        routed.clear();
        const auto router = dispatcher_.current().router;
        router->route(*made.event, routed);
        if (!co_await dispatcher_.dispatch(std::move(made.event))) {
          ++report.duplicates;
        } else {
          for (const auto r : routed.matched)
            ++per_route[std::string(router->route_name(r))];
          ++report.recovered;
          metrics_.backfill_events().Increment();
        }
        if (epoch != epoch_)
          co_return Outcome::interrupted;
      }
    }
    report.pages += pager.pages();
    report.not_fetched_seconds =
        std::max(report.not_fetched_seconds, seconds_of(target.not_fetched));
  }
  report.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  report.unknown_deletes = targets.size();
  for (const auto& u : plan.not_covered)
    report.not_covered.push_back(u.channel);
  finish_run(gap, plan, std::move(report), per_route);
  co_return Outcome::done;
}

void BackfillRunner::finish_run(
    const Gap& gap, const Plan& plan, admin::StatusReport::Recovery::Run report,
    const std::map<std::string, std::uint64_t, std::less<>>& per_route) {
  metrics_.backfill_runs(true).Increment();
  metrics_.backfill_last_duration().Set(report.seconds);
  metrics_.backfill_unknown("deletes").Increment(static_cast<double>(report.unknown_deletes));
  if (report.not_fetched_seconds > 0)
    metrics_.backfill_unknown("window").Increment();
  if (!plan.not_covered.empty())
    metrics_.backfill_unknown("not_covered").Increment();
  last_error_.clear();
  log::info("backfill", "backfill done",
            {{"recovered", std::to_string(report.recovered)},
             {"duplicates", std::to_string(report.duplicates)},
             {"pages", std::to_string(report.pages)},
             {"resources", std::to_string(report.unknown_deletes)},
             {"seconds", fmt::format("{:.3f}", report.seconds)}});
  // A gap the client measured gets its marker now, with what was recovered; the downtime
  // before a start gets one from the restored checkpoints to this run's start.
  const SysTime to = gap.to.value_or(report.to);
  const SysTime from = gap.from.value_or(report.from);
  dispatcher_.write_gap_markers(from, to, [&](const config::RouteConfig& route) {
    GapRecovery recovery;
    if (const auto it = per_route.find(route.name); it != per_route.end())
      recovery.recovered = it->second;
    recovery.not_fetched_seconds = report.not_fetched_seconds;
    if (!route.backfill) {
      recovery.not_covered = route.channels;
    } else {
      for (const auto& u : plan.not_covered)
        if (u.route == route.name)
          recovery.not_covered.push_back(u.channel);
    }
    return recovery;
  });
  last_run_ = std::move(report);
}

}  // namespace sluice::recovery
