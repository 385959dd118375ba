#include "sinks/delivery_queue.hpp"

#include <gtest/gtest.h>

#include "tests/unit/sinks/test_support.hpp"

// The queue's policy on its own: admission, batching, fates and the spool head, driven by hand
// with explicit times. No sockets, no timers, no sleeps.
namespace sluice::sinks {
namespace {

using namespace std::chrono_literals;
using Kind = DeliveryQueue::Step::Kind;
using Fate = DeliveryQueue::Fate;
using WhenFull = config::BufferConfig::WhenFull;

const Result ok{};
Result retry(std::string reason, std::optional<std::chrono::milliseconds> after = {}) {
  return Result{Outcome::retry, std::move(reason), after};
}
Result failed(std::string reason) {
  return Result{Outcome::failed, std::move(reason), {}};
}

std::vector<std::string> payloads(const DeliveryQueue::Batch& batch) {
  std::vector<std::string> out;
  for (const auto& r : batch.records)
    out.emplace_back(r.event ? r.event->payload : std::string_view{});
  return out;
}

std::vector<std::string> seq(std::initializer_list<int> values) {
  std::vector<std::string> out;
  for (int v : values)
    out.push_back(std::to_string(v));
  return out;
}

class DeliveryQueueTest : public ::testing::Test {
 protected:
  DeliveryQueueTest() {
    limits.max_events = 1000;
    limits.max_bytes = 1 << 20;
    retry_config.initial = 100ms;
    retry_config.max = 100ms;
    retry_config.max_elapsed = 1h;
  }

  DeliveryQueue& make(DeliveryQueue::Shape shape = {}) {
    queue.emplace(limits, RetryPolicy(retry_config, [this] { return random; }));
    queue->set_shape(shape);
    return *queue;
  }

  // Admits and pushes record `n` with spool sequence number `n`.
  DeliveryQueue::Admission offer(int n) {
    auto record = test::make_record(std::to_string(n));
    const auto admitted = queue->admit(record.bytes());
    if (admitted.admission == DeliveryQueue::Admission::queued)
      queue->push(std::move(record), static_cast<std::uint64_t>(n), t0);
    return admitted.admission;
  }

  DeliveryQueue::Batch send(std::chrono::steady_clock::duration at = 0s) {
    EXPECT_EQ(queue->next_step(t0 + at, false).kind, Kind::send);
    return queue->take_batch(t0 + at, wall0 + at);
  }

  // Completes and settles `batch` with `results` (the last one repeated) at t0 + `at`.
  DeliveryQueue::Verdict finish(DeliveryQueue::Batch batch, std::vector<Result> results,
                                std::chrono::steady_clock::duration at = 0s) {
    results.resize(batch.records.size(), results.back());
    auto verdict = queue->complete(batch, results, t0 + at);
    queue->settle(std::move(batch), verdict);
    return verdict;
  }

  config::BufferConfig limits;
  config::RetryConfig retry_config;
  double random = 0.5;
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  std::chrono::system_clock::time_point wall0 =
      std::chrono::sys_days{std::chrono::year{2024} / 5 / 1} + 12h;
  std::optional<DeliveryQueue> queue;
};

TEST_F(DeliveryQueueTest, BlockRefusesAtTheEventLimitUntilARecordLeaves) {
  limits.max_events = 2;
  limits.when_full = WhenFull::block;
  make();
  EXPECT_EQ(offer(0), DeliveryQueue::Admission::queued);
  EXPECT_EQ(offer(1), DeliveryQueue::Admission::queued);
  EXPECT_EQ(offer(2), DeliveryQueue::Admission::full);
  EXPECT_EQ(queue->live_events(), 2u);  // nothing queued
  EXPECT_FALSE(queue->has_room_for_blocked());
  auto batch = send();
  EXPECT_FALSE(queue->has_room_for_blocked());  // in flight still counts
  finish(std::move(batch), {ok});
  EXPECT_TRUE(queue->has_room_for_blocked());
  EXPECT_EQ(offer(2), DeliveryQueue::Admission::queued);
}

TEST_F(DeliveryQueueTest, DropNewestAtTheByteLimitAndAnEmptyQueueTakesAnySize) {
  const auto one = test::make_record("1").bytes();
  limits.max_bytes = 2 * one;
  limits.when_full = WhenFull::drop_newest;
  make();
  const auto big = test::make_record(std::string(4 * one, '7'));
  EXPECT_EQ(queue->admit(big.bytes()).admission, DeliveryQueue::Admission::queued);
  queue->push(big, 0, t0);
  EXPECT_EQ(offer(1), DeliveryQueue::Admission::dropped);
  finish(send(), {ok});
  EXPECT_EQ(offer(1), DeliveryQueue::Admission::queued);
  EXPECT_EQ(offer(2), DeliveryQueue::Admission::queued);
  EXPECT_EQ(offer(3), DeliveryQueue::Admission::dropped);
  EXPECT_EQ(queue->live_bytes(), 2 * one);
  EXPECT_EQ(queue->live_events(), 2u);
}

TEST_F(DeliveryQueueTest, DropOldestEvictsTheOldestPendingRecords) {
  limits.max_events = 3;
  limits.when_full = WhenFull::drop_oldest;
  make({10, 1, 0ms});
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(offer(i), DeliveryQueue::Admission::queued);
  auto record = test::make_record("3");
  const auto admitted = queue->admit(record.bytes());
  EXPECT_EQ(admitted.admission, DeliveryQueue::Admission::queued);
  EXPECT_EQ(admitted.evicted, 1u);
  queue->push(std::move(record), 3, t0);
  EXPECT_EQ(queue->first_seq(), 1u);  // the evicted front is gone from the spool's view too
  EXPECT_EQ(payloads(send()), seq({1, 2, 3}));
}

TEST_F(DeliveryQueueTest, DropOldestByBytesEvictsAsManyAsItTakes) {
  const auto one = test::make_record("1").bytes();
  limits.max_bytes = 3 * one;
  limits.when_full = WhenFull::drop_oldest;
  make({10, 1, 0ms});
  for (int i = 1; i <= 3; ++i)
    offer(i);
  const auto two = test::make_record("22");  // one byte more than the others
  const auto admitted = queue->admit(two.bytes());
  EXPECT_EQ(admitted.admission, DeliveryQueue::Admission::queued);
  EXPECT_EQ(admitted.evicted, 2u);
  EXPECT_EQ(queue->live_events(), 1u);
  EXPECT_EQ(queue->live_bytes(), one);
}

TEST_F(DeliveryQueueTest, DropOldestNeverEvictsRecordsInFlight) {
  limits.max_events = 2;
  limits.when_full = WhenFull::drop_oldest;
  make();
  offer(0);
  auto batch = send();  // 0 is in flight
  EXPECT_EQ(queue->in_flight_events(), 1u);
  EXPECT_EQ(offer(1), DeliveryQueue::Admission::queued);
  EXPECT_EQ(offer(2), DeliveryQueue::Admission::queued);  // evicts 1, not 0
  EXPECT_EQ(queue->live_events(), 2u);
  EXPECT_EQ(queue->first_seq(), 0u);
  finish(std::move(batch), {ok});
  EXPECT_EQ(payloads(send()), seq({2}));
}

TEST_F(DeliveryQueueTest, DropOldestDropsTheNewOneWhenOnlyInFlightRecordsAreLeft) {
  limits.max_events = 1;
  limits.when_full = WhenFull::drop_oldest;
  make();
  offer(0);
  auto batch = send();
  EXPECT_EQ(offer(1), DeliveryQueue::Admission::dropped);
  EXPECT_EQ(queue->live_events(), 1u);
  EXPECT_EQ(payloads(batch), seq({0}));
}

TEST_F(DeliveryQueueTest, BatchesAreTheFirstPendingRecordsUpToMaxBatch) {
  make({3, 3, 0ms});
  for (int i = 0; i < 7; ++i)
    offer(i);
  EXPECT_EQ(payloads(send()), seq({0, 1, 2}));
  EXPECT_EQ(payloads(send()), seq({3, 4, 5}));
  EXPECT_EQ(payloads(send()), seq({6}));
  EXPECT_EQ(queue->next_step(t0, false).kind, Kind::lanes);
  EXPECT_EQ(queue->in_flight_events(), 7u);
  EXPECT_EQ(queue->live_events(), 7u);  // nothing acknowledged before the sink answers
}

TEST_F(DeliveryQueueTest, IdleWithNothingPending) {
  make({2, 2, 0ms});
  EXPECT_EQ(queue->next_step(t0, false).kind, Kind::idle);
  offer(0);
  auto batch = send();
  EXPECT_EQ(queue->next_step(t0, false).kind, Kind::idle);  // a lane is free, nothing to send
}

TEST_F(DeliveryQueueTest, LingersUpToMaxWaitToFillABatch) {
  make({3, 1, 50ms});
  offer(0);
  auto step = queue->next_step(t0, false);
  EXPECT_EQ(step.kind, Kind::linger);
  EXPECT_EQ(step.until, t0 + 50ms);
  offer(1);
  step = queue->next_step(t0 + 20ms, false);  // the deadline counts from the first record
  EXPECT_EQ(step.kind, Kind::linger);
  EXPECT_EQ(step.until, t0 + 50ms);
  auto first = send(50ms);
  EXPECT_EQ(payloads(first), seq({0, 1}));
  finish(std::move(first), {ok});

  offer(2);
  step = queue->next_step(t0 + 60ms, false);  // the next batch has its own deadline
  EXPECT_EQ(step.kind, Kind::linger);
  EXPECT_EQ(step.until, t0 + 110ms);
  offer(3);
  offer(4);
  EXPECT_EQ(payloads(send(60ms)), seq({2, 3, 4}));  // full: it goes at once
}

TEST_F(DeliveryQueueTest, AFullBatchAndADrainDoNotLinger) {
  make({2, 2, 1h});
  offer(0);
  offer(1);
  offer(2);
  EXPECT_EQ(payloads(send()), seq({0, 1}));
  EXPECT_EQ(queue->next_step(t0, false).kind, Kind::linger);
  EXPECT_EQ(queue->next_step(t0, true).kind, Kind::send);  // stopping: send what there is
  EXPECT_EQ(payloads(queue->take_batch(t0, wall0)), seq({2}));
}

TEST_F(DeliveryQueueTest, SeveralBatchesInFlightAreAcknowledgedInOrder) {
  make({2, 3, 0ms});
  for (int i = 0; i < 6; ++i)
    offer(i);
  auto a = send();
  auto b = send();
  auto c = send();
  EXPECT_EQ(queue->lanes(), 3u);
  finish(std::move(c), {ok});
  finish(std::move(b), {ok});
  // Delivered but behind a batch still out: counted as gone, still ahead of the spool's head.
  EXPECT_EQ(queue->live_events(), 2u);
  EXPECT_EQ(queue->first_seq(), 0u);
  EXPECT_EQ(queue->lanes(), 1u);
  finish(std::move(a), {ok});
  EXPECT_EQ(queue->live_events(), 0u);
  EXPECT_EQ(queue->first_seq(), std::nullopt);
  EXPECT_EQ(queue->lanes(), 0u);
}

TEST_F(DeliveryQueueTest, ARetriedRecordGoesBackAheadOfLaterOnes) {
  random = 0.0;
  make({2, 2, 0ms});
  for (int i = 0; i < 5; ++i)
    offer(i);
  auto a = send();
  auto b = send();
  const auto verdict = finish(std::move(a), {retry("busy"), ok});
  EXPECT_EQ(verdict.fates, (std::vector<Fate>{Fate::retry, Fate::acknowledge}));
  EXPECT_EQ(verdict.retried, 1u);
  EXPECT_EQ(queue->live_events(), 4u);
  EXPECT_EQ(queue->in_flight_events(), 2u);  // b
  const auto step = queue->next_step(t0, false);
  EXPECT_EQ(step.kind, Kind::backoff);  // nothing new goes out before the pause
  EXPECT_EQ(step.backoff, 0ms);         // zero jitter
  EXPECT_EQ(payloads(send()), seq({0, 4}));
  finish(std::move(b), {ok});
  EXPECT_EQ(queue->first_seq(), 0u);  // 0 is out again: the head waits for it
}

TEST_F(DeliveryQueueTest, TheBatchBackoffIsTheHeadMostRetryRaisedByRetryAfter) {
  make({3, 1, 0ms});
  for (int i = 0; i < 3; ++i)
    offer(i);
  auto verdict = finish(send(), {retry("a"), retry("b"), retry("c", 2s)});
  ASSERT_TRUE(verdict.backoff);
  EXPECT_EQ(*verdict.backoff, 2s);
  EXPECT_EQ(queue->next_step(t0, false).backoff, 2s);
  verdict = finish(send(), {retry("a"), retry("b")});
  EXPECT_EQ(verdict.backoff, 50ms);  // the head-most jittered delay: half the 100 ms ceiling
}

TEST_F(DeliveryQueueTest, FailedAndExpiredRecordsAreDeadLettered) {
  retry_config.max_elapsed = 10s;
  make({3, 1, 0ms});
  for (int i = 0; i < 3; ++i)
    offer(i);
  auto verdict = finish(send(), {failed("rejected: 400"), retry("write: full"), ok});
  EXPECT_EQ(verdict.fates, (std::vector<Fate>{Fate::dead_letter, Fate::retry, Fate::acknowledge}));
  ASSERT_EQ(verdict.dead.size(), 1u);
  EXPECT_EQ(verdict.dead[0].reason, "rejected: 400");
  EXPECT_EQ(verdict.dead[0].attempts, 1u);
  EXPECT_EQ(std::string(verdict.dead[0].record.event->payload), "0");
  EXPECT_EQ(verdict.dead[0].record.route, "r1");
  EXPECT_EQ(queue->first_seq(), 1u);

  queue->next_step(t0, false);  // the backoff
  auto batch = send(5s);
  verdict = finish(std::move(batch), {retry("write: full")}, 11s);  // past max_elapsed
  EXPECT_EQ(verdict.fates, std::vector<Fate>{Fate::dead_letter});
  EXPECT_EQ(verdict.retried, 0u);
  EXPECT_FALSE(verdict.backoff);
  ASSERT_EQ(verdict.dead.size(), 1u);
  EXPECT_EQ(verdict.dead[0].reason, "retries exhausted: write: full");
  EXPECT_EQ(verdict.dead[0].attempts, 2u);
  EXPECT_EQ(verdict.dead[0].first_attempt, wall0);
  EXPECT_EQ(verdict.dead[0].last_attempt, wall0 + 5s);
  EXPECT_EQ(queue->live_events(), 0u);
  EXPECT_EQ(queue->first_seq(), std::nullopt);
}

TEST_F(DeliveryQueueTest, CompleteChangesNothingUntilSettled) {
  limits.max_events = 1;
  limits.when_full = WhenFull::drop_oldest;
  make();
  offer(0);
  auto batch = send();
  const std::vector<Result> results{failed("rejected: 400")};
  const auto verdict = queue->complete(batch, results, t0);
  // While the dead letter is written, the record is still queued and in flight.
  EXPECT_EQ(queue->live_events(), 1u);
  EXPECT_EQ(offer(1), DeliveryQueue::Admission::dropped);
  queue->settle(std::move(batch), verdict);
  EXPECT_EQ(queue->live_events(), 0u);
  EXPECT_EQ(offer(1), DeliveryQueue::Admission::queued);
}

TEST_F(DeliveryQueueTest, TheSpoolHeadOnlyMovesOverAnAcknowledgedPrefix) {
  random = 0.0;
  make({1, 4, 0ms});
  for (int i = 10; i < 14; ++i)
    offer(i);
  EXPECT_EQ(queue->first_seq(), 10u);
  auto b10 = send();
  auto b11 = send();
  auto b12 = send();
  auto b13 = send();
  finish(std::move(b11), {ok});
  finish(std::move(b13), {failed("rejected: 400")});
  EXPECT_EQ(queue->first_seq(), 10u);
  finish(std::move(b10), {retry("busy")});  // pending again: still the oldest
  EXPECT_EQ(queue->first_seq(), 10u);
  queue->next_step(t0, false);  // the backoff
  auto again = send();
  EXPECT_EQ(payloads(again), seq({10}));
  finish(std::move(again), {ok});
  EXPECT_EQ(queue->first_seq(), 12u);  // 11 was acknowledged, 12 is still out
  finish(std::move(b12), {ok});
  EXPECT_EQ(queue->first_seq(), std::nullopt);
}

TEST_F(DeliveryQueueTest, AnAbandonedLaneFreesTheLaneButKeepsItsRecordsQueued) {
  make({1, 1, 0ms});
  offer(0);
  offer(1);
  { auto lost = send(); }
  EXPECT_EQ(queue->next_step(t0, false).kind, Kind::lanes);
  queue->abandon_lane();
  EXPECT_EQ(payloads(send()), seq({1}));
  EXPECT_EQ(queue->live_events(), 2u);
}

TEST_F(DeliveryQueueTest, StuckWhenTheOldestWaitsTooLongOrIsRetriedPastMaxElapsed) {
  retry_config.max_elapsed = 10s;
  make();
  EXPECT_FALSE(queue->stuck(t0 + 1h, 60s));
  offer(0);
  EXPECT_FALSE(queue->stuck(t0 + 60s, 60s));
  EXPECT_TRUE(queue->stuck(t0 + 61s, 60s));
  finish(send(), {retry("busy")});
  EXPECT_FALSE(queue->stuck(t0 + 9s, 24h));
  EXPECT_TRUE(queue->stuck(t0 + 10s, 24h));
}

TEST_F(DeliveryQueueTest, AServerPauseHoldsTheSinkAndDoesNotCountAgainstMaxElapsed) {
  retry_config.max_elapsed = 10s;
  make();
  offer(0);
  offer(1);
  auto verdict = finish(send(), {retry("http_503", std::chrono::milliseconds{3600s})});
  EXPECT_TRUE(verdict.dead.empty());
  EXPECT_TRUE(verdict.server_pause);
  ASSERT_TRUE(verdict.backoff);
  EXPECT_EQ(*verdict.backoff, 3600s);  // waited in full, though far past max_elapsed
  auto step = queue->next_step(t0, false);
  EXPECT_EQ(step.kind, Kind::backoff);
  EXPECT_TRUE(step.server_pause);
  EXPECT_EQ(step.backoff, 3600s);
  // After the pause the record has been failing for ~0 s, not an hour: it is retried.
  verdict = finish(send(3600s), {retry("http_503")}, 3605s);
  EXPECT_TRUE(verdict.dead.empty());
  EXPECT_FALSE(verdict.server_pause);
  EXPECT_FALSE(queue->stuck(t0 + 3605s, 2h));
  EXPECT_EQ(queue->next_step(t0 + 3605s, false).kind, Kind::backoff);
  // Failing (not paused) for 10 s: dead-lettered.
  verdict = finish(send(3605s), {retry("http_503")}, 3611s);
  ASSERT_EQ(verdict.dead.size(), 1u);
  EXPECT_EQ(verdict.dead[0].reason, "retries exhausted: http_503");
}

TEST_F(DeliveryQueueTest, OverlappingServerPausesAreCountedOnce) {
  retry_config.max_elapsed = 10s;
  make({.max_batch = 1, .max_in_flight = 2});
  offer(0);
  offer(1);
  auto first = send();
  auto second = send();
  // Both batches hear the same hour-long pause; the records' budgets must not gain two hours.
  finish(std::move(first), {retry("http_503", std::chrono::milliseconds{3600s})});
  finish(std::move(second), {retry("http_503", std::chrono::milliseconds{3600s})});
  EXPECT_EQ(queue->next_step(t0, false).kind, Kind::backoff);
  auto again = send(3600s);
  const auto verdict = finish(std::move(again), {retry("http_503")}, 3611s);
  ASSERT_EQ(verdict.dead.size(), 1u);  // failing for 11 s outside the pause
}

}  // namespace
}  // namespace sluice::sinks
