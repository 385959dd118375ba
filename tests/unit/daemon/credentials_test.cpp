#include "daemon/upstream/credentials.hpp"

#include <gtest/gtest.h>

namespace sluice::upstream {
namespace {

using namespace std::chrono_literals;
using Step = TokenPlan::Step;
using TimePoint = Credentials::TimePoint;

const TimePoint t0 = TimePoint{} + std::chrono::hours(24 * 365 * 56);
constexpr auto kYear = std::chrono::seconds(31536000);  // Appwrite's default session length

ServiceTokens session_from(TimePoint created, std::chrono::seconds lifetime,
                           std::optional<TimePoint> jwt_expire = {}) {
  ServiceTokens tokens;
  tokens.session_created = created;
  tokens.session_expire = created + lifetime;
  tokens.jwt_expire = jwt_expire;
  return tokens;
}

TEST(TokenPlanTest, StartsWithASessionOfItsOwnThenAJwtOfAppwritesDefaultLength) {
  EXPECT_EQ(plan_tokens({}, t0).step, Step::create_session);
  const auto plan = plan_tokens(session_from(t0, kYear), t0);
  EXPECT_EQ(plan.step, Step::mint_jwt);
  EXPECT_EQ(plan.jwt_duration, 900s);
}

TEST(TokenPlanTest, KeepsTheJwtUntilItsLastFiveMinutesByTheServersClock) {
  const auto tokens = session_from(t0, kYear, t0 + 900s);
  EXPECT_EQ(plan_tokens(tokens, t0).step, Step::use_jwt);
  EXPECT_EQ(plan_tokens(tokens, t0 + 599s).step, Step::use_jwt);
  EXPECT_EQ(plan_tokens(tokens, t0 + 600s).step, Step::mint_jwt);  // 300 s left
  EXPECT_EQ(plan_tokens(tokens, t0 + 2h).step, Step::mint_jwt);    // long expired
}

TEST(TokenPlanTest, ReplacesTheSessionHalfAnHourBeforeItEnds) {
  const auto tokens = session_from(t0, kYear, t0 + kYear - 20min);
  EXPECT_EQ(plan_tokens(tokens, t0 + kYear - 31min).step, Step::use_jwt);
  EXPECT_EQ(plan_tokens(tokens, t0 + kYear - 30min).step, Step::create_session);
  EXPECT_EQ(plan_tokens(tokens, t0 + kYear + 1s).step, Step::create_session);
}

TEST(TokenPlanTest, AJwtNeverOutlivesItsSession) {
  // A project with ten-minute sessions: replaced at half-time, JWTs for half of what is left.
  const auto tokens = session_from(t0, 10min);
  auto plan = plan_tokens(tokens, t0);
  EXPECT_EQ(plan.step, Step::mint_jwt);
  EXPECT_EQ(plan.jwt_duration, 300s);
  EXPECT_EQ(plan_tokens(tokens, t0 + 5min).step, Step::create_session);
  // A JWT that would end after its session (minted before a shorter session) is replaced.
  EXPECT_EQ(plan_tokens(session_from(t0, 10min, t0 + 11min), t0).step, Step::mint_jwt);
  // A short JWT is renewed near its end (here with under a third of its new length left).
  const auto short_jwt = session_from(t0, 10min, t0 + 300s);
  EXPECT_EQ(plan_tokens(short_jwt, t0 + 100s).step, Step::use_jwt);
  EXPECT_EQ(plan_tokens(short_jwt, t0 + 250s).step, Step::mint_jwt);
}

TEST(HttpDateTest, ParsesImfFixdateOnly) {
  using namespace std::chrono;
  EXPECT_EQ(parse_http_date("Sun, 06 Dec 2026 16:22:44 GMT"),
            sys_days{2026y / December / 6} + 16h + 22min + 44s);
  EXPECT_EQ(parse_http_date("Thu, 29 Feb 2024 00:00:00 GMT"), sys_days{2024y / February / 29});
  for (const auto* bad : {"", "Sun, 06 Dec 2026 16:22:44 UTC", "Sun, 6 Dec 2026 16:22:44 GMT",
                          "Sun, 06 Dez 2026 16:22:44 GMT", "Sun, 30 Feb 2026 16:22:44 GMT",
                          "Sun, 06 Dec 2026 24:22:44 GMT", "Sunday, 06-Dec-26 16:22:44 GMT"}) {
    EXPECT_FALSE(parse_http_date(bad)) << bad;
  }
}

}  // namespace
}  // namespace sluice::upstream
