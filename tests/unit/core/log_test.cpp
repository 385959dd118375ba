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

TEST(Journal, PrefixesAreSyslogPriorities) {
  EXPECT_EQ(journal_prefix(Level::error), "<3>");
  EXPECT_EQ(journal_prefix(Level::warn), "<4>");
  EXPECT_EQ(journal_prefix(Level::info), "<6>");
  EXPECT_EQ(journal_prefix(Level::debug), "<7>");
}

TEST(Journal, StreamMustNameStderrsOwnFile) {
  EXPECT_TRUE(is_journal_stream("8:12345", 8, 12345));
  // Inherited by a child whose stderr goes elsewhere: another inode, another device.
  EXPECT_FALSE(is_journal_stream("8:12345", 8, 12346));
  EXPECT_FALSE(is_journal_stream("9:12345", 8, 12345));
  for (const char* bad : {"", ":", "8:", ":12345", "8", "8:12345x", "x8:12345", "-8:12345",
                          "8:12345:1", "99999999999999999999999:1"})
    EXPECT_FALSE(is_journal_stream(bad, 8, 12345)) << bad;
}

}  // namespace
}  // namespace sluice::log
