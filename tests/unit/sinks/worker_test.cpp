#include "sinks/worker.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "core/metrics.hpp"
#include "sinks/file/file_config.hpp"
#include "tests/unit/sinks/test_support.hpp"

namespace sluice::sinks {
namespace {

using namespace std::chrono_literals;
using test::make_record;
using test::run_co;
using test::run_until;
namespace asio = boost::asio;

// A sink that answers from a script, one entry per deliver() call, and records what it got.
// A script entry shorter than the batch repeats its last result; no entry left means ok. With
// `hold` set, deliver() waits until release(), to observe the worker with a batch in flight.
class ScriptedSink final : public Sink {
 public:
  using Step = std::function<void(std::span<const Record>, std::span<Result>)>;

  explicit ScriptedSink(asio::any_io_executor ex, std::size_t batch)
      : batch_(batch), gate_(ex, std::chrono::steady_clock::time_point::max()) {}

  std::size_t max_batch() const override { return batch_; }
  std::size_t max_in_flight() const override { return lanes; }
  std::chrono::milliseconds max_wait() const override { return linger; }

  asio::awaitable<void> deliver(std::span<const Record> batch, std::span<Result> results) override {
    std::vector<std::string> call;
    for (const auto& r : batch)
      call.emplace_back(payload_of(r));
    calls.push_back(std::move(call));
    in_flight = true;
    most_outstanding = std::max(most_outstanding, ++outstanding);
    while (hold && passes == 0)
      co_await gate_.async_wait(asio::as_tuple(asio::use_awaitable));
    if (hold)
      --passes;
    --outstanding;
    in_flight = false;
    if (!script.empty()) {
      auto step = std::move(script.front());
      script.pop_front();
      step(batch, results);
    }
  }

  asio::awaitable<void> close() override {
    ++closed;
    co_return;
  }

  void release() {
    hold = false;
    gate_.cancel();
  }

  // Lets the longest-waiting held call go on (waiters resume in the order they started).
  void release_one() {
    ++passes;
    gate_.cancel();
  }

  // Scripts every record of the call with `results` (the last one repeated).
  void then(std::vector<Result> step) {
    script.push_back([step](std::span<const Record>, std::span<Result> out) {
      for (std::size_t i = 0; i < out.size(); ++i)
        out[i] = step[std::min(i, step.size() - 1)];
    });
  }

  static std::string payload_of(const Record& r) {
    return std::string(r.event ? r.event->payload : std::string_view{});
  }

  std::vector<std::vector<std::string>> calls;
  std::deque<Step> script;
  bool hold = false;
  bool in_flight = false;
  std::chrono::milliseconds linger{0};
  std::size_t lanes = 1;  // max_in_flight()
  std::size_t outstanding = 0;
  std::size_t most_outstanding = 0;
  std::size_t passes = 0;
  int closed = 0;

 private:
  std::size_t batch_;
  asio::steady_timer gate_;
};

Result retry(std::string reason, std::optional<std::chrono::milliseconds> after = {}) {
  return Result{Outcome::retry, std::move(reason), after};
}
Result failed(std::string reason) {
  return Result{Outcome::failed, std::move(reason), {}};
}
const Result ok{};

std::vector<std::string> seq(std::initializer_list<int> values) {
  std::vector<std::string> out;
  for (int v : values)
    out.push_back(std::to_string(v));
  return out;
}

class WorkerTest : public ::testing::Test {
 protected:
  WorkerTest() {
    config.name = "s";
    config.settings = config::make_settings(FileSinkConfig{});
    config.buffer.max_events = 1000;
    config.buffer.max_bytes = 1 << 20;
    config.retry.initial = 1ms;
    config.retry.max = 2ms;
    config.retry.max_elapsed = 1h;
    options.random = [this] { return random; };
    options.now = [this] { return now; };
    options.wall_now = [this] { return wall; };
  }

  ~WorkerTest() override {
    if (worker) {
      EXPECT_TRUE(run_co(ctx, worker->stop(std::chrono::steady_clock::now())));
    }
  }

  void make(std::size_t batch = 1) {
    auto s = std::make_unique<ScriptedSink>(ctx.get_executor(), batch);
    sink = s.get();
    worker =
        std::make_unique<SinkWorker>(ctx.get_executor(), std::move(s), config, sm, pool, options);
  }

  SinkWorker::Accept offer(int n) { return worker->offer(make_record(std::to_string(n))); }

  double events_failed(std::string_view reason) { return sm.events_failed(reason).Value(); }
  double attempts_failed(std::string_view reason) { return sm.attempts_failed(reason).Value(); }

  std::vector<std::string> delivered_in_order() {
    std::vector<std::string> out;
    for (const auto& c : sink->calls)
      out.insert(out.end(), c.begin(), c.end());
    return out;
  }

  asio::io_context ctx;
  BlockingPool pool{1};
  Metrics metrics;
  SinkMetrics sm = metrics.sink("s");
  test::TempDir dir;
  config::SinkConfig config;
  WorkerOptions options;
  double random = 0.0;  // zero jitter: retries follow at once unless a retry_after says otherwise
  std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now();
  std::chrono::system_clock::time_point wall =
      std::chrono::sys_days{std::chrono::year{2024} / 5 / 1} + 12h;
  ScriptedSink* sink = nullptr;
  std::unique_ptr<SinkWorker> worker;
};

TEST_F(WorkerTest, DeliversInQueueOrderInBatches) {
  make(3);
  for (int i = 0; i < 7; ++i)
    EXPECT_EQ(offer(i), SinkWorker::Accept::queued);
  EXPECT_EQ(worker->stats().queued_events, 7u);
  EXPECT_EQ(sm.queue_events->Value(), 7);
  worker->start();
  ASSERT_TRUE(run_until(ctx, [&] { return worker->stats().sent == 7; }));
  ASSERT_EQ(sink->calls.size(), 3u);
  EXPECT_EQ(sink->calls[0], seq({0, 1, 2}));
  EXPECT_EQ(sink->calls[1], seq({3, 4, 5}));
  EXPECT_EQ(sink->calls[2], seq({6}));
  EXPECT_EQ(sm.sent->Value(), 7);
  EXPECT_EQ(sm.queue_events->Value(), 0);
  EXPECT_EQ(sm.queue_bytes->Value(), 0);
  EXPECT_EQ(worker->stats().queued_bytes, 0u);
  EXPECT_EQ(sm.delivery_seconds->Collect().histogram.sample_count, 7u);
}

TEST_F(WorkerTest, OneBatchAtATimeByDefault) {
  make(2);
  sink->hold = true;
  for (int i = 0; i < 6; ++i)
    offer(i);
  worker->start();
  ASSERT_TRUE(run_until(ctx, [&] { return sink->in_flight; }));
  ctx.poll();
  EXPECT_EQ(sink->calls.size(), 1u);
  sink->release();
  ASSERT_TRUE(run_until(ctx, [&] { return worker->stats().sent == 6; }));
  EXPECT_EQ(sink->most_outstanding, 1u);
}

TEST_F(WorkerTest, SeveralBatchesInFlightAreAcknowledgedInOrder) {
  make(2);
  sink->lanes = 3;
  sink->hold = true;
  for (int i = 0; i < 7; ++i)
    offer(i);
  worker->start();
  ASSERT_TRUE(run_until(ctx, [&] { return sink->calls.size() == 3; }));
  ctx.poll();
  EXPECT_EQ(sink->calls.size(), 3u);  // the fourth waits for a free lane
  EXPECT_EQ(sink->outstanding, 3u);
  EXPECT_EQ(sink->calls[0], seq({0, 1}));
  EXPECT_EQ(sink->calls[1], seq({2, 3}));
  EXPECT_EQ(sink->calls[2], seq({4, 5}));
  EXPECT_EQ(worker->stats().queued_events, 7u);
  sink->release();
  ASSERT_TRUE(run_until(ctx, [&] { return worker->stats().sent == 7; }));
  EXPECT_EQ(delivered_in_order(), seq({0, 1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(worker->stats().queued_events, 0u);
  EXPECT_EQ(sm.queue_events->Value(), 0);
}

TEST_F(WorkerTest, RetryWithSeveralBatchesInFlightIsSentAgainFirst) {
  // The batch behind it was already out: it lands first, and the retried record goes with the
  // next batch, ahead of the records still pending.
  make(2);
  sink->lanes = 2;
  sink->hold = true;
  sink->then({retry("busy"), ok});
  sink->then({ok});
  for (int i = 0; i < 5; ++i)
    offer(i);
  worker->start();
  ASSERT_TRUE(run_until(ctx, [&] { return sink->calls.size() == 2; }));
  sink->release();
  ASSERT_TRUE(run_until(ctx, [&] { return worker->stats().sent == 5; }));
  EXPECT_EQ(delivered_in_order(), seq({0, 1, 2, 3, 0, 4}));
  EXPECT_EQ(worker->stats().retries, 1u);
}

TEST_F(WorkerTest, DropOldestBetweenBatchesInFlight) {
  // A retried record, pending again in front of a batch still in flight, is evicted: the
  // batch behind it must still be acknowledged as its own records.
  config.buffer.max_events = 4;
  config.buffer.when_full = config::BufferConfig::WhenFull::drop_oldest;
  make(2);
  sink->lanes = 2;
  sink->hold = true;
  sink->then({retry("busy", 1h), ok});  // and a pause before anything new goes out
  for (int i = 0; i < 4; ++i)
    offer(i);
  worker->start();
  ASSERT_TRUE(run_until(ctx, [&] { return sink->calls.size() == 2; }));
  sink->release_one();
  ASSERT_TRUE(run_until(ctx, [&] { return worker->stats().sent == 1; }));
  // Queue: 0 (pending again), 1 (done), 2 3 (in flight), then 4. 5 evicts 0, 6 evicts 4.
  EXPECT_EQ(offer(4), SinkWorker::Accept::queued);
  EXPECT_EQ(offer(5), SinkWorker::Accept::queued);
  EXPECT_EQ(offer(6), SinkWorker::Accept::queued);
  EXPECT_EQ(events_failed("dropped_full"), 2);
  sink->release();
  ASSERT_TRUE(run_until(ctx, [&] { return worker->stats().sent == 3; }));
  EXPECT_EQ(delivered_in_order(), seq({0, 1, 2, 3}));
  EXPECT_EQ(worker->stats().queued_events, 2u);  // 5 and 6, behind the requested pause
}

TEST_F(WorkerTest, RecordsOfferedWhileRunningAreDelivered) {
  make(1);
  worker->start();
  ctx.poll();
  offer(1);
  ASSERT_TRUE(run_until(ctx, [&] { return worker->stats().sent == 1; }));
  offer(2);
  ASSERT_TRUE(run_until(ctx, [&] { return worker->stats().sent == 2; }));
  EXPECT_EQ(delivered_in_order(), seq({1, 2}));
}

TEST_F(WorkerTest, LingersUntilTheBatchIsFull) {
  make(3);
  sink->linger = 1h;
  worker->start();
  offer(1);
  ctx.poll();
  EXPECT_TRUE(sink->calls.empty());  // one record is not a batch yet: it waits
  offer(2);
  ctx.poll();
  EXPECT_TRUE(sink->calls.empty());
  offer(3);
  ASSERT_TRUE(run_until(ctx, [&] { return worker->stats().sent == 3; }));
  ASSERT_EQ(sink->calls.size(), 1u);
  EXPECT_EQ(sink->calls[0], seq({1, 2, 3}));
}

TEST_F(WorkerTest, LingerEndsAfterMaxWait) {
  make(3);
  sink->linger = 20ms;
  worker->start();
  offer(1);
  ASSERT_TRUE(run_until(ctx, [&] { return worker->stats().sent == 1; }));
  EXPECT_EQ(sink->calls, std::vector<std::vector<std::string>>{seq({1})});
}

TEST_F(WorkerTest, DrainDoesNotLinger) {
  make(3);
  sink->linger = 1h;
  worker->start();
  offer(1);
  ctx.poll();
  EXPECT_TRUE(sink->calls.empty());
  ASSERT_TRUE(run_co(ctx, worker->stop(std::chrono::steady_clock::now() + 1h)));
  EXPECT_EQ(sink->calls, std::vector<std::vector<std::string>>{seq({1})});
  worker.reset();
}

TEST_F(WorkerTest, RetryAtTheHeadHoldsTheRecordsBehindIt) {
  make(1);
  for (int i = 0; i < 3; ++i)
    offer(i);
  sink->then({retry("write: disk full")});
  sink->then({retry("write: disk full")});
  worker->start();
  ASSERT_TRUE(run_until(ctx, [&] { return worker->stats().sent == 3; }));
  EXPECT_EQ(delivered_in_order(), seq({0, 0, 0, 1, 2}));
  const auto s = worker->stats();
  EXPECT_EQ(s.retries, 2u);
  EXPECT_EQ(s.failed, 0u);
  EXPECT_EQ(s.last_error, "write: disk full");
  EXPECT_EQ(sm.retries->Value(), 2);
  EXPECT_EQ(attempts_failed("write"), 2);  // the label is the reason's prefix
  EXPECT_EQ(sm.dead_lettered->Value(), 0);
}

TEST_F(WorkerTest, AcknowledgesOnlyTheRecordsTheSinkConfirmed) {
  make(3);
  for (int i = 0; i < 3; ++i)
    offer(i);
  sink->then({ok, retry("http_5xx: 503"), ok});
  sink->hold = true;
  worker->start();
  ASSERT_TRUE(run_until(ctx, [&] { return sink->in_flight; }));
  EXPECT_EQ(worker->stats().queued_events, 3u);  // nothing acknowledged before the sink answers
  sink->hold = false;
  sink->release();
  ASSERT_TRUE(run_until(ctx, [&] { return worker->stats().sent == 3; }));
  ASSERT_EQ(sink->calls.size(), 2u);
  EXPECT_EQ(sink->calls[0], seq({0, 1, 2}));
  EXPECT_EQ(sink->calls[1], seq({1}));  // only the unconfirmed one goes again
  EXPECT_EQ(attempts_failed("http_5xx"), 1);
}

TEST_F(WorkerTest, MetricsCountEachEventOnceAndEachAttempt) {
  config.buffer.max_events = 7;
  config.buffer.max_bytes = 4096;
  make(2);
  const auto first = make_record("0");
  offer(0);
  offer(1);
  // Record 0: a failed attempt, then delivered. Record 1: refused for good.
  sink->then({retry("timeout: no answer"), failed("rejected: 400")});
  sink->then({ok});
  worker->start();
  ASSERT_TRUE(run_until(ctx, [&] { return worker->stats().sent == 1; }));
  EXPECT_EQ(attempts_failed("timeout"), 1);
  EXPECT_EQ(attempts_failed("rejected"), 1);
  EXPECT_EQ(events_failed("dead_letter"), 1);
  EXPECT_EQ(events_failed("dropped_full"), 0);
  EXPECT_EQ(worker->stats().failed, 1u);  // /status's `failed`: the sum of events_failed
  EXPECT_EQ(sm.sent->Value(), 1);
  EXPECT_EQ(sm.bytes_sent->Value(), static_cast<double>(first.bytes()));
  EXPECT_EQ(sm.capacity_events->Value(), 7);
  EXPECT_EQ(sm.capacity_bytes->Value(), 4096);
}

TEST_F(WorkerTest, RetryAfterIsHonouredAndStopCutsTheBackoffShort) {
  make(3);
  for (int i = 0; i < 3; ++i)
    offer(i);
  sink->then({ok, retry("rate_limited: 429", 1h), ok});
  worker->start();
  ASSERT_TRUE(run_until(ctx, [&] { return worker->stats().backoff.count() > 0; }));
  auto s = worker->stats();
  EXPECT_EQ(s.backoff, 1h);  // jitter alone would give 0 ms
  EXPECT_EQ(s.sent, 2u);
  EXPECT_EQ(s.queued_events, 1u);
  EXPECT_EQ(s.queued_bytes, make_record("1").bytes());
  ASSERT_TRUE(run_co(ctx, worker->stop(std::chrono::steady_clock::now())));
  s = worker->stats();
  EXPECT_EQ(s.backoff, 0ms);
  EXPECT_EQ(s.queued_events, 1u);  // left over at the deadline, not dead-lettered
  EXPECT_EQ(s.dead_lettered, 0u);
  EXPECT_EQ(sink->closed, 1);
  EXPECT_EQ(sink->calls.size(), 1u);
}

TEST_F(WorkerTest, ALongRetryAfterPausesTheSinkInsteadOfDeadLetteringEverything) {
  // A receiver in maintenance (503, Retry-After: 3600) with a budget far shorter than its wait:
  // one request, then nothing until the pause ends; nothing dead-lettered, everything queued.
  config.retry.max_elapsed = 10s;
  config.dead_letter = dir / "dead.jsonl";
  make(1);
  for (int i = 0; i < 500; ++i)
    offer(i);
  for (int i = 0; i < 500; ++i)
    sink->then({retry("http_503: 503 Service Unavailable", 3600s)});
  worker->start();
  ASSERT_TRUE(run_until(ctx, [&] { return worker->stats().backoff.count() > 0; }));
  for (int i = 0; i < 50; ++i)
    ctx.poll();  // any send the pause failed to hold back would happen here
  const auto s = worker->stats();
  EXPECT_EQ(sink->calls.size(), 1u);
  EXPECT_EQ(s.dead_lettered, 0u);
  EXPECT_EQ(s.queued_events, 500u);
  EXPECT_EQ(s.backoff, 3600s);
  ASSERT_TRUE(s.paused_until.has_value());
  EXPECT_EQ(*s.paused_until, wall + 3600s);
  ASSERT_TRUE(run_co(ctx, worker->stop(std::chrono::steady_clock::now())));
  EXPECT_EQ(worker->stats().dead_lettered, 0u);
  EXPECT_FALSE(worker->stats().paused_until.has_value());
}

TEST_F(WorkerTest, MaxElapsedSendsTheRecordToTheDeadLetterFile) {
  config.retry.max_elapsed = 10s;
  config.dead_letter = dir / "dead/s.jsonl";  // the directory does not exist yet
  make(1);
  const auto rec = make_record(R"({"$id":"a1","n":1})", "orders");
  worker->offer(rec);
  offer(2);
  sink->then({retry("write: No space left on device")});
  sink->script.push_back([&](std::span<const Record>, std::span<Result> out) {
    now += 11s;  // the clock passes max_elapsed during the second attempt
    out[0] = retry("write: No space left on device");
  });
  sink->script.push_back([&](std::span<const Record>, std::span<Result>) {});
  worker->start();
  ASSERT_TRUE(run_until(ctx, [&] { return worker->stats().sent == 1; }));
  EXPECT_EQ(delivered_in_order(),
            (std::vector<std::string>{R"({"$id":"a1","n":1})", R"({"$id":"a1","n":1})", "2"}));
  const auto s = worker->stats();
  EXPECT_EQ(s.dead_lettered, 1u);
  EXPECT_EQ(s.failed, 1u);
  EXPECT_EQ(s.retries, 1u);
  EXPECT_EQ(sm.dead_lettered->Value(), 1);
  EXPECT_EQ(attempts_failed("write"), 2);

  const std::string text = test::read_file(dir / "dead/s.jsonl");
  ASSERT_FALSE(text.empty());
  ASSERT_EQ(text.back(), '\n');
  ASSERT_EQ(text.find('\n'), text.size() - 1);  // one line
  const auto line = boost::json::parse(text).as_object();
  EXPECT_EQ(line.at("time").as_string(), "2024-05-01T12:00:00.000Z");
  EXPECT_EQ(line.at("sink").as_string(), "s");
  EXPECT_EQ(line.at("route").as_string(), "orders");
  EXPECT_EQ(line.at("event_id").as_string(), rec.event->id);
  EXPECT_EQ(line.at("reason").as_string(), "retries exhausted: write: No space left on device");
  EXPECT_EQ(line.at("attempts").as_int64(), 2);
  EXPECT_EQ(line.at("first_attempt").as_string(), "2024-05-01T12:00:00.000Z");
  EXPECT_EQ(line.at("last_attempt").as_string(), "2024-05-01T12:00:00.000Z");
  // The record is the raw bytes, unchanged.
  const std::string tail = ",\"record\":" + std::string(rec.event->data) + "}\n";
  EXPECT_EQ(text.substr(text.size() - tail.size()), tail);
}

TEST_F(WorkerTest, FailedGoesToTheDeadLetterFileAndTheQueueMovesOn) {
  config.dead_letter = dir / "s.jsonl";
  make(1);
  offer(1);
  offer(2);
  sink->script.push_back([&](std::span<const Record>, std::span<Result> out) {
    wall += 1500ms;  // the dead letter's own time comes after the attempt
    out[0] = failed("rejected: 413 Payload Too Large");
  });
  worker->start();
  ASSERT_TRUE(run_until(ctx, [&] { return worker->stats().sent == 1; }));
  EXPECT_EQ(delivered_in_order(), seq({1, 2}));
  EXPECT_EQ(attempts_failed("rejected"), 1);
  EXPECT_EQ(events_failed("dead_letter"), 1);  // the event, counted once as it leaves
  EXPECT_EQ(sm.retries->Value(), 0);
  const auto line = boost::json::parse(test::read_file(dir / "s.jsonl")).as_object();
  EXPECT_EQ(line.at("reason").as_string(), "rejected: 413 Payload Too Large");
  EXPECT_EQ(line.at("attempts").as_int64(), 1);
  EXPECT_EQ(line.at("time").as_string(), "2024-05-01T12:00:01.500Z");
  EXPECT_EQ(line.at("first_attempt").as_string(), "2024-05-01T12:00:00.000Z");
  EXPECT_EQ(line.at("record").as_object().at("payload").as_int64(), 1);
}

TEST_F(WorkerTest, DeadLettersAppendAndEachRecordGetsALine) {
  config.dead_letter = dir / "s.jsonl";
  make(4);
  for (int i = 0; i < 4; ++i)
    offer(i);
  sink->then({failed("rejected: a"), ok, failed("rejected: b"), ok});
  worker->start();
  ASSERT_TRUE(run_until(ctx, [&] { return worker->stats().sent == 2; }));
  ASSERT_TRUE(run_until(ctx, [&] { return worker->stats().dead_lettered == 2; }));
  offer(9);
  sink->then({failed("rejected: c")});
  ASSERT_TRUE(run_until(ctx, [&] { return worker->stats().dead_lettered == 3; }));
  const std::string text = test::read_file(dir / "s.jsonl");
  std::vector<std::string> reasons;
  std::size_t start = 0;
  for (auto end = text.find('\n'); end != std::string::npos; end = text.find('\n', start)) {
    reasons.emplace_back(
        boost::json::parse(text.substr(start, end - start)).as_object().at("reason").as_string());
    start = end + 1;
  }
  EXPECT_EQ(reasons, (std::vector<std::string>{"rejected: a", "rejected: b", "rejected: c"}));
}

TEST_F(WorkerTest, WithoutADeadLetterPathRecordsAreOnlyCounted) {
  make(1);
  offer(1);
  sink->then({failed("rejected: 400")});
  worker->start();
  ASSERT_TRUE(run_until(ctx, [&] { return worker->stats().dead_lettered == 1; }));
  EXPECT_EQ(sm.dead_lettered->Value(), 1);
  EXPECT_EQ(worker->stats().queued_events, 0u);
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

TEST_F(WorkerTest, DeadLetterWriteFailureIsCountedAndSurvived) {
  test::write_file(dir / "blocker", "x");
  config.dead_letter = dir / "blocker/s.jsonl";  // the parent is a regular file
  make(1);
  offer(1);
  offer(2);
  sink->then({failed("rejected: 400")});
  worker->start();
  ASSERT_TRUE(run_until(ctx, [&] { return worker->stats().sent == 1; }));
  EXPECT_EQ(sm.write_errors("dead_letter").Value(), 1);
  EXPECT_EQ(worker->stats().dead_lettered, 1u);
  EXPECT_EQ(delivered_in_order(), seq({1, 2}));
}

TEST_F(WorkerTest, SinkExceptionIsRetried) {
  make(1);
  offer(1);
  sink->script.push_back(
      [](std::span<const Record>, std::span<Result>) { throw std::runtime_error("boom"); });
  worker->start();
  ASSERT_TRUE(run_until(ctx, [&] { return worker->stats().sent == 1; }));
  EXPECT_EQ(delivered_in_order(), seq({1, 1}));
  EXPECT_EQ(worker->stats().last_error, "exception: boom");
  EXPECT_EQ(attempts_failed("exception"), 1);
}

TEST_F(WorkerTest, DropNewestWhenFull) {
  config.buffer.max_events = 3;
  config.buffer.when_full = config::BufferConfig::WhenFull::drop_newest;
  make(10);
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(offer(i), SinkWorker::Accept::queued);
  EXPECT_EQ(offer(3), SinkWorker::Accept::dropped);
  EXPECT_EQ(offer(4), SinkWorker::Accept::dropped);
  EXPECT_EQ(events_failed("dropped_full"), 2);
  EXPECT_EQ(worker->stats().dropped, 2u);
  EXPECT_EQ(worker->stats().failed, 2u);
  EXPECT_EQ(worker->stats().queued_events, 3u);
  worker->start();
  ASSERT_TRUE(run_until(ctx, [&] { return worker->stats().sent == 3; }));
  EXPECT_EQ(delivered_in_order(), seq({0, 1, 2}));
}

TEST_F(WorkerTest, DropOldestWhenFull) {
  config.buffer.max_events = 3;
  config.buffer.when_full = config::BufferConfig::WhenFull::drop_oldest;
  make(10);
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(offer(i), SinkWorker::Accept::queued);
  EXPECT_EQ(events_failed("dropped_full"), 2);
  EXPECT_EQ(worker->stats().queued_events, 3u);
  EXPECT_EQ(sm.queue_events->Value(), 3);
  worker->start();
  ASSERT_TRUE(run_until(ctx, [&] { return worker->stats().sent == 3; }));
  EXPECT_EQ(delivered_in_order(), seq({2, 3, 4}));
}

TEST_F(WorkerTest, DropOldestNeverEvictsWhatTheSinkHolds) {
  config.buffer.max_events = 2;
  config.buffer.when_full = config::BufferConfig::WhenFull::drop_oldest;
  make(1);
  sink->hold = true;
  offer(0);
  worker->start();
  ASSERT_TRUE(run_until(ctx, [&] { return sink->in_flight; }));
  EXPECT_EQ(offer(1), SinkWorker::Accept::queued);
  EXPECT_EQ(offer(2), SinkWorker::Accept::queued);  // evicts 1, not the in-flight 0
  EXPECT_EQ(offer(3), SinkWorker::Accept::queued);  // evicts 2
  EXPECT_EQ(events_failed("dropped_full"), 2);
  sink->release();
  ASSERT_TRUE(run_until(ctx, [&] { return worker->stats().sent == 2; }));
  EXPECT_EQ(delivered_in_order(), seq({0, 3}));
}

TEST_F(WorkerTest, DropOldestDropsTheNewOneWhenOnlyInFlightRecordsAreLeft) {
  config.buffer.max_events = 1;
  config.buffer.when_full = config::BufferConfig::WhenFull::drop_oldest;
  make(1);
  sink->hold = true;
  offer(0);
  worker->start();
  ASSERT_TRUE(run_until(ctx, [&] { return sink->in_flight; }));
  EXPECT_EQ(offer(1), SinkWorker::Accept::dropped);
  EXPECT_EQ(events_failed("dropped_full"), 1);
  sink->release();
  ASSERT_TRUE(run_until(ctx, [&] { return worker->stats().sent == 1; }));
  EXPECT_EQ(delivered_in_order(), seq({0}));
}

TEST_F(WorkerTest, BlockRefusesUntilThereIsSpace) {
  config.buffer.max_events = 2;
  config.buffer.when_full = config::BufferConfig::WhenFull::block;
  make(1);
  EXPECT_EQ(offer(0), SinkWorker::Accept::queued);
  EXPECT_EQ(offer(1), SinkWorker::Accept::queued);
  EXPECT_EQ(offer(2), SinkWorker::Accept::full);
  EXPECT_EQ(worker->stats().queued_events, 2u);  // nothing queued, nothing counted
  EXPECT_EQ(worker->stats().failed, 0u);
  EXPECT_EQ(events_failed("dropped_full"), 0);

  bool woke = false;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        co_await worker->wait_for_space();
        woke = true;
        EXPECT_EQ(offer(2), SinkWorker::Accept::queued);
      },
      asio::detached);
  ctx.poll();
  EXPECT_FALSE(woke);  // still full: the sink has not run
  worker->start();
  ASSERT_TRUE(run_until(ctx, [&] { return worker->stats().sent == 3; }));
  EXPECT_TRUE(woke);
  EXPECT_EQ(delivered_in_order(), seq({0, 1, 2}));
}

TEST_F(WorkerTest, ByteBoundAndOversizeRecords) {
  const auto one = make_record("1").bytes();
  config.buffer.max_bytes = 2 * one;
  config.buffer.when_full = config::BufferConfig::WhenFull::block;
  make(1);
  EXPECT_EQ(offer(1), SinkWorker::Accept::queued);
  EXPECT_EQ(offer(2), SinkWorker::Accept::queued);
  EXPECT_EQ(offer(3), SinkWorker::Accept::full);
  EXPECT_EQ(worker->stats().queued_bytes, 2 * one);
  EXPECT_EQ(sm.queue_bytes->Value(), static_cast<double>(2 * one));
  worker->start();
  ASSERT_TRUE(run_until(ctx, [&] { return worker->stats().sent == 2; }));
  // A record larger than the whole buffer still goes through an empty queue.
  const std::string big(4 * one, '7');
  EXPECT_EQ(worker->offer(make_record(big)), SinkWorker::Accept::queued);
  EXPECT_EQ(offer(4), SinkWorker::Accept::full);
  ASSERT_TRUE(run_until(ctx, [&] { return worker->stats().sent == 3; }));
  EXPECT_EQ(offer(4), SinkWorker::Accept::queued);
}

TEST_F(WorkerTest, StopDrainsWithinTheDeadlineThenClosesAndRefuses) {
  make(2);
  for (int i = 0; i < 5; ++i)
    offer(i);
  worker->start();
  ASSERT_TRUE(run_co(ctx, worker->stop(std::chrono::steady_clock::now() + 60s)));
  EXPECT_EQ(worker->stats().sent, 5u);
  EXPECT_EQ(worker->stats().queued_events, 0u);
  EXPECT_EQ(sink->closed, 1);
  EXPECT_EQ(offer(9), SinkWorker::Accept::dropped);
  EXPECT_EQ(events_failed("stopped"), 1);
  ASSERT_TRUE(run_co(ctx, worker->stop(std::chrono::steady_clock::now())));  // idempotent
  EXPECT_EQ(sink->closed, 1);
}

TEST_F(WorkerTest, StopGivesUpAtTheDeadlineWhenTheSinkKeepsFailing) {
  config.retry.initial = 1h;
  config.retry.max = 1h;
  random = 0.5;  // a 30 min backoff
  make(1);
  offer(1);
  offer(2);
  for (int i = 0; i < 100; ++i)
    sink->then({retry("connect: refused")});
  worker->start();
  ASSERT_TRUE(run_until(ctx, [&] { return worker->stats().backoff.count() > 0; }));
  EXPECT_EQ(worker->stats().backoff, 30min);
  ASSERT_TRUE(run_co(ctx, worker->stop(std::chrono::steady_clock::now() + 20ms)));
  EXPECT_EQ(sink->closed, 1);
  EXPECT_EQ(sink->calls.size(), 1u);  // no attempt after the deadline
  EXPECT_EQ(worker->stats().queued_events, 2u);
}

TEST_F(WorkerTest, StopBeforeStartStillDeliversAndCloses) {
  make(1);
  offer(1);
  ASSERT_TRUE(run_co(ctx, worker->stop(std::chrono::steady_clock::now() + 60s)));
  EXPECT_EQ(worker->stats().sent, 1u);
  EXPECT_EQ(sink->closed, 1);
}

TEST_F(WorkerTest, StopWakesBlockedProducers) {
  config.buffer.max_events = 1;
  make(1);
  offer(0);
  EXPECT_EQ(offer(1), SinkWorker::Accept::full);
  bool woke = false;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        co_await worker->wait_for_space();
        woke = true;
      },
      asio::detached);
  ctx.poll();
  EXPECT_FALSE(woke);
  sink->hold = true;
  bool stopped = false;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        co_await worker->stop(std::chrono::steady_clock::now() + 60s);
        stopped = true;
      },
      asio::detached);
  ASSERT_TRUE(run_until(ctx, [&] { return woke; }));
  sink->release();
  ASSERT_TRUE(run_until(ctx, [&] { return stopped; }));
}

TEST_F(WorkerTest, StuckWhenTheOldestRecordWaitsTooLong) {
  options.stuck_after = 60s;
  make(1);
  EXPECT_FALSE(worker->stats().stuck);
  offer(1);
  now += 60s;
  EXPECT_FALSE(worker->stats().stuck);
  now += 1s;
  EXPECT_TRUE(worker->stats().stuck);
  worker->start();
  ASSERT_TRUE(run_until(ctx, [&] { return worker->stats().sent == 1; }));
  EXPECT_FALSE(worker->stats().stuck);
}

TEST_F(WorkerTest, StuckWhenTheHeadIsRetriedPastMaxElapsed) {
  options.stuck_after = 24h;
  config.retry.max_elapsed = 10s;
  config.retry.initial = 1h;
  config.retry.max = 1h;
  random = 0.5;
  make(1);
  offer(1);
  sink->then({retry("connect: refused")});
  worker->start();
  ASSERT_TRUE(run_until(ctx, [&] { return worker->stats().backoff.count() > 0; }));
  EXPECT_EQ(worker->stats().backoff, 10s);  // the last delay ends at max_elapsed
  EXPECT_FALSE(worker->stats().stuck);
  now += 10s;
  EXPECT_TRUE(worker->stats().stuck);
}

TEST(ReasonLabel, IsTheReasonsPrefix) {
  EXPECT_EQ(reason_label("write: No space left on device"), "write");
  EXPECT_EQ(reason_label("http_5xx"), "http_5xx");
  EXPECT_EQ(reason_label(" retries exhausted : x"), "retries_exhausted");
  EXPECT_EQ(reason_label(""), "error");
  EXPECT_EQ(reason_label(": x"), "error");
}

TEST(BlockingPool, RunsOffTheLoopAndResumesOnIt) {
  asio::io_context ctx;
  BlockingPool pool(1);
  const auto loop_thread = std::this_thread::get_id();
  std::thread::id ran_on;
  std::thread::id resumed_on;
  int value = 0;
  ASSERT_TRUE(run_co(ctx, [&]() -> asio::awaitable<void> {
    value = co_await pool.run([&] {
      ran_on = std::this_thread::get_id();
      return 42;
    });
    resumed_on = std::this_thread::get_id();
    co_await pool.run([] {});
    bool thrown = false;
    try {
      co_await pool.run([]() -> int { throw std::runtime_error("x"); });
    } catch (const std::runtime_error&) {
      thrown = true;
    }
    EXPECT_TRUE(thrown);
  }()));
  EXPECT_EQ(value, 42);
  EXPECT_NE(ran_on, loop_thread);
  EXPECT_EQ(resumed_on, loop_thread);
}

}  // namespace
}  // namespace sluice::sinks
