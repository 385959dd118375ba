#include "daemon/dispatcher.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include "core/metrics.hpp"
#include "daemon/upstream/decoder.hpp"
#include "sinks/blocking_pool.hpp"
#include "tests/unit/sinks/test_support.hpp"

namespace sluice {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;
using sinks::test::make_event;
using sinks::test::run_co;
using sinks::test::run_until;

constexpr std::string_view kCreate = "databases.db.tables.t.rows.r.create";
constexpr std::string_view kTimestamp = "2024-05-01T12:34:56.789+00:00";

// Records every delivered record as "<payload>@<route>/<channel>", per sink.
class FakeSink final : public sinks::Sink {
 public:
  explicit FakeSink(std::vector<std::string>& got) : got_(got) {}

  asio::awaitable<void> deliver(std::span<const sinks::Record> batch,
                                std::span<sinks::Result>) override {
    for (const auto& r : batch)
      got_.push_back(std::string(r.event->payload) + "@" + std::string(r.route.view()) + "/" +
                     std::string(r.channel_name()));
    co_return;
  }

 private:
  std::vector<std::string>& got_;
};

config::SinkConfig sink_config(std::string name, std::uint64_t max_events = 1000) {
  config::SinkConfig s;
  s.name = std::move(name);
  s.buffer.max_events = max_events;
  s.buffer.when_full = config::BufferConfig::WhenFull::block;
  return s;
}

config::RouteConfig route(std::string name, std::vector<std::string> sinks) {
  config::RouteConfig r;
  r.name = std::move(name);
  r.channels = {"c1"};
  r.events = {std::string(kCreate)};
  r.sinks = std::move(sinks);
  return r;
}

// Two sinks: `a` with room to spare, `b` holding one event (a `block` buffer), routed to by
// route r1; route r2 also goes to `a`. Workers start only when a test says so, so a worker's
// queue is full until then.
class DispatcherTest : public ::testing::Test {
 protected:
  DispatcherTest() {
    config::Config c;
    c.appwrite.project = "shop";
    c.sinks = {sink_config("a"), sink_config("b", 1)};
    c.routes = {route("r1", {"a", "b"}), route("r2", {"a"})};
    config = c;
    auto gen = std::make_shared<Generation>(std::move(c), metrics);
    for (const auto& s : gen->config.sinks)
      gen->workers.push_back(make_worker(s));
    dispatcher.install(std::move(gen));
  }

  ~DispatcherTest() override {
    for (const auto& w : workers)
      EXPECT_TRUE(run_co(ctx, w->stop(std::chrono::steady_clock::now())));
  }

  std::shared_ptr<sinks::SinkWorker> make_worker(const config::SinkConfig& s) {
    auto worker = std::make_shared<sinks::SinkWorker>(
        ctx.get_executor(), std::make_unique<FakeSink>(got[s.name]), s, metrics.sink(s.name), pool);
    workers.push_back(worker);
    return worker;
  }

  // Starts dispatch(event) on the loop; `done` turns true when it returns.
  void dispatch(EventPtr event, bool& done) {
    asio::co_spawn(ctx, dispatcher.dispatch(std::move(event)), [&done](std::exception_ptr e, bool) {
      EXPECT_FALSE(e);
      done = true;
    });
  }

  void dispatch_now(std::string_view payload, std::string_view event_name = kCreate) {
    ASSERT_TRUE(run_co(ctx, dispatcher.dispatch(make_event(payload, kTimestamp, event_name))));
  }

  void start(const std::string& sink) {
    auto& gen = dispatcher.current();
    gen.workers[static_cast<std::size_t>(gen.config.find_sink(sink) - gen.config.sinks.data())]
        ->start();
  }

  asio::io_context ctx;
  // Keeps ctx.poll() working when nothing is queued (an io_context out of work stops).
  asio::executor_work_guard<asio::io_context::executor_type> work{ctx.get_executor()};
  sinks::BlockingPool pool{1};
  Metrics metrics;
  Dispatcher dispatcher{ctx.get_executor(), metrics};
  config::Config config;
  std::map<std::string, std::vector<std::string>> got;
  std::vector<std::shared_ptr<sinks::SinkWorker>> workers;  // every one made: stopped at the end
};

TEST_F(DispatcherTest, RoutesToTheWorkersOfTheMatchedSinksAndCounts) {
  start("a");
  start("b");
  dispatch_now("1");
  ASSERT_TRUE(run_until(ctx, [&] { return got["a"].size() == 1 && got["b"].size() == 1; }));
  // Labels of the first route (in file order) that sent the event to the sink.
  EXPECT_EQ(got["a"], std::vector<std::string>{"1@r1/c1"});
  EXPECT_EQ(got["b"], std::vector<std::string>{"1@r1/c1"});
  EXPECT_EQ(metrics.routed("r1").Value(), 1);
  EXPECT_EQ(metrics.routed("r2").Value(), 1);
  EXPECT_EQ(metrics.events_unmatched().Value(), 0);

  dispatch_now("2", "databases.db.tables.t.rows.r.delete");
  EXPECT_EQ(metrics.events_unmatched().Value(), 1);
  EXPECT_EQ(metrics.routed("r1").Value(), 1);
  ctx.poll();
  EXPECT_EQ(got["a"].size(), 1u);
}

TEST_F(DispatcherTest, AFullBlockSinkHoldsDispatchUntilItHasSpace) {
  start("a");
  dispatch_now("1");  // b's queue takes one
  bool done = false;
  dispatch(make_event("2"), done);
  ctx.poll();
  EXPECT_FALSE(done);
  EXPECT_EQ(dispatcher.current().workers[1]->stats().queued_events, 1u);
  start("b");  // delivers "1": room for "2"
  ASSERT_TRUE(run_until(ctx, [&] { return done && got["b"].size() == 2; }));
  EXPECT_EQ(got["b"], (std::vector<std::string>{"1@r1/c1", "2@r1/c1"}));
  ASSERT_TRUE(run_until(ctx, [&] { return got["a"].size() == 2; }));
  EXPECT_EQ(got["a"], (std::vector<std::string>{"1@r1/c1", "2@r1/c1"}));
  EXPECT_EQ(metrics.routed("r1").Value(), 2);  // counted once, not once per attempt
}

TEST_F(DispatcherTest, AReloadSwapRoutesAWaitingEventAgainWithoutDuplicates) {
  start("a");
  dispatch_now("1");
  bool done = false;
  dispatch(make_event("2"), done);
  ctx.poll();
  ASSERT_FALSE(done);  // `a` took "2", `b` is full

  // The next generation keeps `a`'s worker and replaces `b` with a sink `c` on the same route.
  config::Config next_config = config;
  next_config.sinks = {sink_config("a"), sink_config("c")};
  next_config.routes = {route("r1", {"a", "c"})};
  auto next = std::make_shared<Generation>(next_config, metrics);
  next->workers = {dispatcher.current().workers[0], make_worker(next->config.sinks[1])};
  next->workers[1]->start();
  dispatcher.hold();
  const auto previous = dispatcher.install(next);
  EXPECT_EQ(previous->config.sinks[1].name, "b");
  ctx.poll();
  EXPECT_FALSE(done);  // held: the swap is not finished
  dispatcher.release();
  ASSERT_TRUE(run_until(ctx, [&] { return done && got["c"].size() == 1; }));
  EXPECT_EQ(got["c"], std::vector<std::string>{"2@r1/c1"});
  ctx.poll();
  EXPECT_EQ(got["a"], (std::vector<std::string>{"1@r1/c1", "2@r1/c1"}));
  EXPECT_EQ(metrics.routed("r1").Value(), 2);
}

TEST_F(DispatcherTest, StopReleasesAWaitingDispatchAndRefusesNewEvents) {
  dispatch_now("1");
  bool done = false;
  dispatch(make_event("2"), done);
  ctx.poll();
  ASSERT_FALSE(done);
  dispatcher.stop();
  ASSERT_TRUE(run_until(ctx, [&] { return done; }));
  dispatch_now("3");
  EXPECT_EQ(dispatcher.current().workers[0]->stats().queued_events, 2u);  // "1", "2"
  EXPECT_EQ(metrics.routed("r1").Value(), 2);
}

// The same change seen twice (two connections, or live and recovered) reaches no sink twice.
TEST_F(DispatcherTest, DropsARepeatedEventIdBeforeRoutingAndCountsIt) {
  start("a");
  start("b");
  bool taken = false;
  ASSERT_TRUE(run_co(ctx, dispatcher.dispatch(make_event("1", kTimestamp, kCreate)), &taken));
  EXPECT_TRUE(taken);
  // The same data: the same id; dispatch() says it was dropped.
  ASSERT_TRUE(run_co(ctx, dispatcher.dispatch(make_event("1", kTimestamp, kCreate)), &taken));
  EXPECT_FALSE(taken);
  ASSERT_TRUE(run_until(ctx, [&] { return got["a"].size() == 1 && got["b"].size() == 1; }));
  ctx.poll();
  EXPECT_EQ(got["a"].size(), 1u);
  EXPECT_EQ(metrics.events_deduplicated().Value(), 1);
  EXPECT_EQ(metrics.routed("r1").Value(), 1);
  EXPECT_EQ(metrics.events_unmatched().Value(), 0);

  // A reload to `dedup_window: 0` turns it off.
  config::Config off = config;
  off.dedup_window = 0;
  auto gen = std::make_shared<Generation>(off, metrics);
  gen->workers = dispatcher.current().workers;
  dispatcher.install(gen);
  dispatch_now("1");
  ASSERT_TRUE(run_until(ctx, [&] { return got["a"].size() == 2 && got["b"].size() == 2; }));
  EXPECT_EQ(metrics.events_deduplicated().Value(), 1);
  EXPECT_EQ(metrics.routed("r1").Value(), 2);
}

// A row event on route channel "c1" and on its table's channel, as the decoder builds it.
EventPtr row_event(std::string_view id, std::string_view updated_at) {
  upstream::FrameDecoder decoder{"p"};
  auto decoded =
      decoder.decode(R"({"type":"event","data":{"events":[")" + std::string(kCreate) +
                         R"("],"channels":["c1","databases.db.tables.t.rows"],"timestamp":")" +
                         std::string(kTimestamp) + R"(","payload":{"$id":")" + std::string(id) +
                         R"(","$updatedAt":")" + std::string(updated_at) + R"("}}})",
                     false, {}, {});
  EXPECT_EQ(decoded.kind, upstream::FrameKind::event);
  return decoded.event;
}

TEST_F(DispatcherTest, TheTrackerLearnsWhenEverySinkHasDeliveredARoutedEvent) {
  recovery::CheckpointTracker tracker;
  dispatcher.set_tracker(&tracker);
  start("a");
  ASSERT_TRUE(run_co(ctx, dispatcher.dispatch(row_event("r1", "2026-12-06T10:00:00.500+00:00"))));
  ASSERT_TRUE(run_until(ctx, [&] { return got["a"].size() == 1; }));
  // `a` delivered it, `b` (not started) still holds it: not a checkpoint yet.
  EXPECT_EQ(tracker.in_flight(), 1u);
  EXPECT_TRUE(tracker.snapshot().resources.empty());
  start("b");
  ASSERT_TRUE(run_until(ctx, [&] { return tracker.in_flight() == 0; }));
  const auto state = tracker.snapshot();
  ASSERT_EQ(state.resources.count("databases/db/tables/t"), 1u);
  EXPECT_EQ(state.resources.at("databases/db/tables/t").ids, std::vector<std::string>{"r1"});
  // An event no route takes is not tracked.
  dispatch_now(R"({"$id":"x","$updatedAt":"2026-12-06T11:00:00.000+00:00"})",
               "databases.db.tables.t.rows.r.delete");
  EXPECT_EQ(tracker.in_flight(), 0u);
  dispatcher.set_tracker(nullptr);
}

TEST_F(DispatcherTest, GapMarkersGoToEachRouteOfTheSinksThatAskForThem) {
  config::Config c = config;
  c.sinks[0].gap_marker = true;
  auto gen = std::make_shared<Generation>(c, metrics);
  gen->workers = dispatcher.current().workers;
  dispatcher.install(gen);
  start("a");
  start("b");
  const auto from = std::chrono::sys_days{std::chrono::year{2026} / 11 / 22} + 10h + 1s + 100ms;
  dispatcher.write_gap_markers(from, from + 2150ms,
                               [](const config::RouteConfig&) { return GapRecovery{}; });
  ASSERT_TRUE(run_until(ctx, [&] { return got["a"].size() == 2; }));
  EXPECT_EQ(got["a"][0].substr(got["a"][0].find('@')), "@r1/c1");
  EXPECT_EQ(got["a"][1].substr(got["a"][1].find('@')), "@r2/c1");
  ctx.poll();
  EXPECT_TRUE(got["b"].empty());
}

TEST(GapMarkerTest, IsAnEventInTheShapeOfARealtimeDataObject) {
  config::RouteConfig r = route("orders", {"a"});
  r.channels = {"tablesdb.shop.tables.orders.rows", "other"};
  const auto from = std::chrono::sys_days{std::chrono::year{2026} / 11 / 22} + 10h + 1s + 100ms;
  const auto to = from + 2150ms;
  const GapRecovery recovery{.recovered = 42, .not_fetched_seconds = 1.5, .not_covered = {"other"}};
  const auto marker = make_gap_marker(r, "shop", from, to, recovery);

  const auto data = json::parse(marker->data).as_object();
  std::vector<std::string> keys;
  for (const auto& kv : data)
    keys.emplace_back(kv.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"events", "channels", "timestamp", "payload"}));
  EXPECT_EQ(data.at("events").as_array(), json::array{"sluice.gap"});
  EXPECT_EQ(data.at("channels").as_array(), json::array{"tablesdb.shop.tables.orders.rows"});
  EXPECT_EQ(data.at("timestamp").as_string(), "2026-11-22T10:00:03.250+00:00");
  const auto& payload = data.at("payload").as_object();
  keys.clear();
  for (const auto& kv : payload)
    keys.emplace_back(kv.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"$id", "from", "to", "seconds", "project", "route",
                                            "recovered", "deletes", "not_fetched_seconds",
                                            "not_covered"}));
  EXPECT_TRUE(std::string(payload.at("$id").as_string()).starts_with("gap-"));
  EXPECT_EQ(payload.at("$id").as_string().size(), 20u);
  EXPECT_EQ(payload.at("from").as_string(), "2026-11-22T10:00:01.100+00:00");
  EXPECT_EQ(payload.at("to").as_string(), "2026-11-22T10:00:03.250+00:00");
  EXPECT_DOUBLE_EQ(payload.at("seconds").to_number<double>(), 2.15);
  // As a person reads it, with milliseconds, not in Boost.JSON's exponent form.
  EXPECT_NE(std::string_view(marker->data).find(R"("seconds":2.150,)"), std::string_view::npos);
  EXPECT_EQ(payload.at("project").as_string(), "shop");
  EXPECT_EQ(payload.at("route").as_string(), "orders");
  EXPECT_EQ(payload.at("recovered").to_number<std::uint64_t>(), 42u);
  EXPECT_EQ(payload.at("deletes").as_string(), "unknown");
  EXPECT_NE(std::string_view(marker->data).find(R"("not_fetched_seconds":1.500,)"),
            std::string_view::npos);
  EXPECT_EQ(payload.at("not_covered").as_array(), json::array{"other"});

  // The views sinks and templates read, as the decoder fills them for a received event.
  EXPECT_EQ(json::parse(marker->payload), data.at("payload"));
  EXPECT_EQ(marker->events, std::vector<std::string_view>{"sluice.gap"});
  EXPECT_EQ(marker->channels, std::vector<std::string_view>{"tablesdb.shop.tables.orders.rows"});
  EXPECT_EQ(marker->timestamp_text, "2026-11-22T10:00:03.250+00:00");
  EXPECT_EQ(marker->timestamp, std::chrono::floor<std::chrono::milliseconds>(to));
  EXPECT_EQ(marker->id, make_event_id(marker->data));
  EXPECT_GE(marker->frame.capacity(), marker->frame.size() + kJsonPadding);

  // The same window and route give the same marker id; another route another one.
  EXPECT_EQ(make_gap_marker(r, "shop", from, to, recovery)->data, marker->data);
  r.name = "refunds";
  EXPECT_NE(make_gap_marker(r, "shop", from, to, recovery)->id, marker->id);
}

TEST(GapMarkerTest, DecodesLikeAReceivedEvent) {
  const auto marker =
      make_gap_marker(route("orders", {"a"}), "shop", std::chrono::system_clock::now() - 3s,
                      std::chrono::system_clock::now(), GapRecovery{});
  upstream::FrameDecoder decoder{"p"};
  auto decoded =
      decoder.decode(R"({"type":"event","data":)" + std::string(marker->data) + "}", false,
                     std::chrono::steady_clock::now(), std::chrono::system_clock::now());
  ASSERT_EQ(decoded.kind, upstream::FrameKind::event);
  EXPECT_FALSE(decoded.timestamp_fallback);
  EXPECT_EQ(decoded.event->data, marker->data);
  EXPECT_EQ(decoded.event->payload, marker->payload);
  EXPECT_EQ(decoded.event->events, marker->events);
  EXPECT_EQ(decoded.event->channels, marker->channels);
  EXPECT_EQ(decoded.event->timestamp, marker->timestamp);
  EXPECT_EQ(decoded.event->id, marker->id);
}

}  // namespace
}  // namespace sluice
