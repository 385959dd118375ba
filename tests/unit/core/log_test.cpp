#include "core/log.hpp"

#include <gtest/gtest.h>

namespace sluice::log {
namespace {

TEST(RateLimiter, LetsBurstThroughThenCountsSuppressed) {
  RateLimiter limiter(2, std::chrono::seconds(10));
  const auto t0 = RateLimiter::Clock::time_point{} + std::chrono::hours(1);
  EXPECT_TRUE(limiter.allow(t0));
  EXPECT_TRUE(limiter.allow(t0));
  EXPECT_FALSE(limiter.allow(t0));
  EXPECT_FALSE(limiter.allow(t0 + std::chrono::seconds(9)));
  EXPECT_TRUE(limiter.allow(t0 + std::chrono::seconds(10)));
  EXPECT_EQ(limiter.take_suppressed(), 2u);
  EXPECT_EQ(limiter.take_suppressed(), 0u);
}

TEST(Levels, ParseNames) {
  EXPECT_EQ(parse_level("debug"), Level::debug);
  EXPECT_EQ(parse_level("warn"), Level::warn);
  EXPECT_FALSE(parse_level("loud").has_value());
  EXPECT_EQ(parse_format("json"), Format::json);
  EXPECT_FALSE(parse_format("xml").has_value());
}

}  // namespace
}  // namespace sluice::log
