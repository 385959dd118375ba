#include "sinks/retry_policy.hpp"

#include <gtest/gtest.h>

namespace sluice::sinks {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

config::RetryConfig retry(milliseconds initial, milliseconds max, milliseconds max_elapsed) {
  config::RetryConfig c;
  c.initial = initial;
  c.max = max;
  c.max_elapsed = max_elapsed;
  return c;
}

TEST(RetryPolicy, CeilingDoublesUpToMax) {
  RetryPolicy p(retry(500ms, 30s, 15min), [] { return 0.0; });
  EXPECT_EQ(p.ceiling(0), 500ms);
  EXPECT_EQ(p.ceiling(1), 1000ms);
  EXPECT_EQ(p.ceiling(5), 16000ms);
  EXPECT_EQ(p.ceiling(6), 30000ms);
  EXPECT_EQ(p.ceiling(4000000000u), 30000ms);  // no overflow, no long loop
}

TEST(RetryPolicy, FullJitterSpansZeroToCeiling) {
  double r = 0.0;
  RetryPolicy p(retry(1000ms, 60s, 1h), [&] { return r; });
  EXPECT_EQ(p.next(3, 0s).delay, 0ms);
  r = 0.5;
  EXPECT_EQ(p.next(3, 0s).delay, 4000ms);
  r = 0.999;
  EXPECT_EQ(p.next(3, 0s).delay, 7992ms);
  r = 0.25;
  EXPECT_EQ(p.next(0, 0s).delay, 250ms);
  EXPECT_FALSE(p.next(0, 0s).give_up);
}

TEST(RetryPolicy, RetryAfterRaisesTheDelayOnlyWhenLarger) {
  RetryPolicy p(retry(1000ms, 60s, 1h), [] { return 0.5; });
  EXPECT_EQ(p.next(2, 0s, 10s).delay, 10s);    // jitter gives 2 s: the server wins
  EXPECT_EQ(p.next(2, 0s, 100ms).delay, 2s);   // shorter than the backoff: backoff wins
  EXPECT_EQ(p.next(0, 0s, 5min).delay, 5min);  // not capped by retry.max
}

TEST(RetryPolicy, GivesUpAfterMaxElapsed) {
  RetryPolicy p(retry(1000ms, 60s, 10min), [] { return 0.5; });
  EXPECT_FALSE(p.next(1, 10min - 1ms).give_up);
  EXPECT_TRUE(p.next(1, 10min).give_up);
  EXPECT_TRUE(p.next(1, 2h).give_up);
}

TEST(RetryPolicy, LastDelayEndsAtMaxElapsed) {
  RetryPolicy p(retry(1000ms, 60s, 10min), [] { return 0.999; });
  const auto d = p.next(10, 10min - 3s);  // jitter would give ~59.9 s
  EXPECT_FALSE(d.give_up);
  EXPECT_EQ(d.delay, 3s);
}

TEST(RetryPolicy, RetryAfterBeyondTheBudgetIsWaitedInFull) {
  // A server's wait is a pause, not a failure: it is neither cut to the budget nor a reason to
  // give up (the caller leaves it out of `elapsed`).
  RetryPolicy p(retry(1000ms, 60s, 10min), [] { return 0.0; });
  auto d = p.next(0, 9min, 2min);
  EXPECT_FALSE(d.give_up);
  EXPECT_EQ(d.delay, 2min);
  d = p.next(0, 9min, 1h);
  EXPECT_FALSE(d.give_up);
  EXPECT_EQ(d.delay, 1h);
  EXPECT_TRUE(p.next(0, 10min, 1s).give_up);  // failing for max_elapsed: given up
}

TEST(RetryPolicy, RetryAfterIsCappedAtTheLongestServerPause) {
  RetryPolicy p(retry(1000ms, 60s, 10min), [] { return 0.0; });
  const auto d = p.next(0, 0s, std::chrono::hours{24 * 365});
  EXPECT_FALSE(d.give_up);
  EXPECT_EQ(d.delay, RetryPolicy::kMaxServerPause);
}

TEST(RetryPolicy, DefaultRandomStaysWithinTheCeiling) {
  RetryPolicy p(retry(100ms, 1s, 1h));
  for (int i = 0; i < 200; ++i) {
    const auto d = p.next(2, 0s);
    EXPECT_GE(d.delay, 0ms);
    EXPECT_LE(d.delay, 400ms);
  }
}

}  // namespace
}  // namespace sluice::sinks
