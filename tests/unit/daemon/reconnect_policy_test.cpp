#include "daemon/upstream/reconnect_policy.hpp"

#include <algorithm>
#include <vector>

#include <gtest/gtest.h>

namespace sluice::upstream {
namespace {

using namespace std::chrono_literals;
using Duration = ReconnectPolicy::Duration;
using Clock = ReconnectPolicy::Clock;

const Clock::time_point t0 = Clock::time_point{} + 1h;

ReconnectPolicy::Settings settings(Duration initial = 1s, Duration max = 60s, double mult = 2) {
  ReconnectPolicy::Settings s;
  s.initial = initial;
  s.max = max;
  s.multiplier = mult;
  return s;
}

TEST(ReconnectPolicy, CapGrowsExponentiallyToMax) {
  ReconnectPolicy p(settings(), 1);
  const Duration expected_caps[] = {1s, 2s, 4s, 8s, 16s, 32s, 60s, 60s, 60s};
  std::uint32_t attempt = 0;
  for (const Duration cap : expected_caps) {
    EXPECT_EQ(p.cap(), cap);
    const Duration d = p.on_connect_failed(t0);
    EXPECT_LE(d, cap);
    EXPECT_GE(d, p.floor());
    EXPECT_EQ(p.attempts(), ++attempt);
  }
}

TEST(ReconnectPolicy, FromConfig) {
  config::ReconnectConfig c;
  c.initial = 500ms;
  c.max = 5s;
  c.multiplier = 3;
  ReconnectPolicy p(c, 7);
  EXPECT_EQ(p.cap(), 500ms);
  EXPECT_EQ(p.floor(), 100ms);
  (void)p.on_connect_failed(t0);
  EXPECT_EQ(p.cap(), 1500ms);
  (void)p.on_connect_failed(t0);
  EXPECT_EQ(p.cap(), 4500ms);
  (void)p.on_connect_failed(t0);
  EXPECT_EQ(p.cap(), 5s);
}

TEST(ReconnectPolicy, FullJitterStaysWithinBoundsAndSpreads) {
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    ReconnectPolicy p(settings(1s, 60s, 2), seed);
    Duration lowest = Duration::max();
    Duration highest = Duration::zero();
    for (int i = 0; i < 30; ++i) {
      const Duration cap = p.cap();
      const Duration d = p.on_connect_failed(t0);
      ASSERT_GE(d, 100ms) << seed;
      ASSERT_LE(d, cap) << seed;
      if (cap == 60s) {
        lowest = std::min(lowest, d);
        highest = std::max(highest, d);
      }
    }
    // 23 draws from [0.1 s, 60 s]: uniform, so they spread over most of the range.
    EXPECT_LT(lowest, 30s) << seed;
    EXPECT_GT(highest, 30s) << seed;
  }
}

TEST(ReconnectPolicy, SameSeedSameDelays) {
  ReconnectPolicy a(settings(), 42);
  ReconnectPolicy b(settings(), 42);
  ReconnectPolicy c(settings(), 43);
  bool differs = false;
  for (int i = 0; i < 10; ++i) {
    const Duration da = a.on_connect_failed(t0);
    EXPECT_EQ(da, b.on_connect_failed(t0));
    differs = differs || da != c.on_connect_failed(t0);
  }
  EXPECT_TRUE(differs);
}

TEST(ReconnectPolicy, ResetsOnlyAfterThirtySecondsHealthy) {
  ReconnectPolicy p(settings(), 3);
  for (int i = 0; i < 4; ++i)
    (void)p.on_connect_failed(t0);
  EXPECT_EQ(p.cap(), 16s);

  // Up for 29.999 s: still backing off, cap keeps growing.
  p.on_connected(t0);
  EXPECT_TRUE(p.connected());
  Duration d = p.on_disconnected(t0 + 29999ms);
  EXPECT_FALSE(p.connected());
  EXPECT_LE(d, 16s);
  EXPECT_EQ(p.cap(), 32s);
  EXPECT_EQ(p.attempts(), 5u);

  // Up for exactly 30 s: back to the initial cap for this delay.
  p.on_connected(t0 + 1min);
  d = p.on_disconnected(t0 + 1min + 30s);
  EXPECT_LE(d, 1s);
  EXPECT_GE(d, 100ms);
  EXPECT_EQ(p.cap(), 2s);
  EXPECT_EQ(p.attempts(), 1u);
}

TEST(ReconnectPolicy, ConnectedButNotDisconnectedDoesNotReset) {
  ReconnectPolicy p(settings(), 3);
  for (int i = 0; i < 3; ++i)
    (void)p.on_connect_failed(t0);
  p.on_connected(t0);
  // A later attempt that fails (without a disconnect report) keeps the cap.
  (void)p.on_connect_failed(t0 + 1h);
  EXPECT_EQ(p.cap(), 16s);
}

TEST(ReconnectPolicy, Policy1008WaitsTheMaximum) {
  ReconnectPolicy p(settings(1s, 45s, 2), 9);
  EXPECT_EQ(p.on_connect_failed(t0, true), 45s);
  p.on_connected(t0);
  EXPECT_EQ(p.on_disconnected(t0 + 1h, true), 45s);
  EXPECT_LE(p.on_disconnected(t0 + 1h), 2s);  // not fatal: normal backoff again
}

TEST(ReconnectPolicy, NeverAZeroDelayLoop) {
  // Even a 1 ms initial delay and multiplier 1 (constant) keep a 1 ms floor, and the default
  // settings never go below 100 ms.
  ReconnectPolicy tiny(settings(1ms, 1ms, 1), 5);
  for (int i = 0; i < 1000; ++i)  // an attempt a second: within the connect budget
    ASSERT_EQ(tiny.on_connect_failed(t0 + std::chrono::seconds(i)), 1ms);
  for (std::uint64_t seed = 0; seed < 50; ++seed) {
    ReconnectPolicy p(settings(), seed);
    for (int i = 0; i < 100; ++i) {
      p.on_connected(t0);
      ASSERT_GE(p.on_disconnected(t0 + 1h), 100ms);  // healthy each time: cap stays at 1 s
      ASSERT_EQ(p.cap(), 2s);
    }
  }
}

TEST(ReconnectPolicy, NonsenseSettingsAreClamped) {
  ReconnectPolicy p(settings(0ms, 0ms, 0.5), 1);
  EXPECT_GE(p.on_connect_failed(t0), 1ms);
  ReconnectPolicy q(settings(10s, 1s, 2), 1);  // max below initial: max becomes initial
  EXPECT_LE(q.on_connect_failed(t0), 10s);
  EXPECT_EQ(q.cap(), 10s);
}

TEST(ReconnectPolicy, NeverMoreConnectAttemptsThanAppwriteAllowsInAMinute) {
  // A tiny backoff and a server that fails every attempt at once: the attempts that start in
  // any 60 s stay within the budget (Appwrite refuses the 129th with 1013).
  ReconnectPolicy p(settings(1ms, 1ms, 1), 3);
  auto now = ReconnectPolicy::Clock::time_point{} + 1h;
  std::vector<ReconnectPolicy::Clock::time_point> starts;
  for (int i = 0; i < 400; ++i) {
    now += p.on_connect_failed(now);
    starts.push_back(now);
  }
  for (std::size_t i = 0; i < starts.size(); ++i) {
    const auto in_window = std::count_if(starts.begin() + static_cast<std::ptrdiff_t>(i),
                                         starts.end(), [&](auto t) { return t < starts[i] + 60s; });
    ASSERT_LE(in_window, static_cast<std::ptrdiff_t>(ReconnectPolicy::kConnectBudget)) << i;
  }
  EXPECT_GE(starts.back() - starts.front(), 120s);  // 400 attempts take at least three windows
}

}  // namespace
}  // namespace sluice::upstream
