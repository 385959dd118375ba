#include "daemon/reload_plan.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

// One test per promise of the README's "Changing routes while running".
namespace sluice {
namespace {

config::SinkConfig memory_sink(std::string name) {
  config::SinkConfig s;
  s.name = std::move(name);
  return s;
}

config::SinkConfig disk_sink(std::string name, std::string dir = "/spool") {
  config::SinkConfig s;
  s.name = std::move(name);
  s.buffer.type = config::BufferConfig::Type::disk;
  s.buffer.dir = std::move(dir);
  return s;
}

// A changed delivery setting (any of them makes same_settings() false).
config::SinkConfig changed(config::SinkConfig s) {
  s.buffer.max_events += 1;
  return s;
}

config::Config with_sinks(std::vector<config::SinkConfig> sinks) {
  config::Config c;
  c.sinks = std::move(sinks);
  return c;
}

const std::optional<std::size_t> none;

TEST(ReloadPlanTest, SpoolPathIsTheBufferDirectoryAndNameForDiskBuffersOnly) {
  EXPECT_EQ(sinks::spool_path(disk_sink("orders", "/var/spool")), "/var/spool/orders");
  EXPECT_EQ(sinks::spool_path(memory_sink("orders")), "");
}

TEST(ReloadPlanTest, AnUnchangedSinkKeepsItsWorkerEvenWhenMovedInTheFile) {
  auto a = memory_sink("a");
  auto b = disk_sink("b");
  auto moved_b = b;
  moved_b.location.line = 40;  // where it is declared does not matter
  const auto plan = plan_reload(with_sinks({a, b}), {}, with_sinks({moved_b, a}));
  ASSERT_EQ(plan.sinks.size(), 2u);
  EXPECT_EQ(plan.sinks[0].keep, std::optional<std::size_t>(1));
  EXPECT_EQ(plan.sinks[1].keep, std::optional<std::size_t>(0));
  EXPECT_EQ(plan.sinks[0].stop_old, none);
  EXPECT_TRUE(plan.sinks[0].stop_draining.empty());
  EXPECT_TRUE(plan.drain.empty());
  EXPECT_FALSE(plan.admin_changed);
}

TEST(ReloadPlanTest, ARemovedSinkDrains) {
  const auto plan = plan_reload(with_sinks({memory_sink("a"), disk_sink("b")}), {},
                                with_sinks({memory_sink("a")}));
  ASSERT_EQ(plan.sinks.size(), 1u);
  EXPECT_EQ(plan.sinks[0].keep, std::optional<std::size_t>(0));
  EXPECT_EQ(plan.drain, std::vector<std::size_t>{1});
}

TEST(ReloadPlanTest, ANewSinkGetsANewWorkerAndStopsNothing) {
  const auto plan = plan_reload(with_sinks({memory_sink("a")}), {},
                                with_sinks({memory_sink("a"), disk_sink("c")}));
  ASSERT_EQ(plan.sinks.size(), 2u);
  EXPECT_EQ(plan.sinks[1].keep, none);
  EXPECT_EQ(plan.sinks[1].stop_old, none);
  EXPECT_TRUE(plan.sinks[1].stop_draining.empty());
  EXPECT_TRUE(plan.drain.empty());
}

TEST(ReloadPlanTest, AChangedSinkWithAMemoryBufferIsReplacedAndTheOldOneDrains) {
  const auto a = memory_sink("a");
  const auto plan = plan_reload(with_sinks({a}), {}, with_sinks({changed(a)}));
  ASSERT_EQ(plan.sinks.size(), 1u);
  EXPECT_EQ(plan.sinks[0].keep, none);
  EXPECT_EQ(plan.sinks[0].stop_old, none);
  EXPECT_EQ(plan.drain, std::vector<std::size_t>{0});
}

TEST(ReloadPlanTest, AChangedSinkWithADiskBufferHandsItsBufferToItsReplacement) {
  const auto b = disk_sink("b");
  const auto plan = plan_reload(with_sinks({memory_sink("a"), b}), {},
                                with_sinks({changed(b), memory_sink("a")}));
  ASSERT_EQ(plan.sinks.size(), 2u);
  EXPECT_EQ(plan.sinks[0].keep, none);
  EXPECT_EQ(plan.sinks[0].stop_old, std::optional<std::size_t>(1));  // stopped, not drained
  EXPECT_TRUE(plan.drain.empty());
}

TEST(ReloadPlanTest, ADiskBufferMovedToAnotherDirectoryIsNotHandedOver) {
  const auto b = disk_sink("b", "/old");
  const auto plan = plan_reload(with_sinks({b}), {}, with_sinks({disk_sink("b", "/new")}));
  EXPECT_EQ(plan.sinks[0].stop_old, none);
  EXPECT_EQ(plan.drain, std::vector<std::size_t>{0});
}

TEST(ReloadPlanTest, ASinkThatLeavesItsDiskBufferForMemoryLetsTheOldOneDrain) {
  const auto b = disk_sink("b");
  const auto plan = plan_reload(with_sinks({b}), {}, with_sinks({memory_sink("b")}));
  EXPECT_EQ(plan.sinks[0].stop_old, none);
  EXPECT_EQ(plan.drain, std::vector<std::size_t>{0});
}

TEST(ReloadPlanTest, ASinkAddedBackStopsTheDrainingSinkThatHoldsItsBuffer) {
  const std::vector<DrainingSinkInfo> draining{
      {"x", "/spool/x"}, {"b", "/spool/b"}, {"m", ""}, {"b", "/elsewhere/b"}};
  const auto plan = plan_reload(with_sinks({memory_sink("a")}), draining,
                                with_sinks({memory_sink("a"), disk_sink("b"), memory_sink("m")}));
  ASSERT_EQ(plan.sinks.size(), 3u);
  EXPECT_EQ(plan.sinks[1].keep, none);
  EXPECT_EQ(plan.sinks[1].stop_draining, std::vector<std::size_t>{1});
  // A memory buffer is nobody's to hand over: the draining `m` finishes on its own.
  EXPECT_TRUE(plan.sinks[2].stop_draining.empty());
}

TEST(ReloadPlanTest, AChangedDiskSinkStopsBothItsOldWorkerAndADrainingOneWithItsBuffer) {
  // Possible after an earlier reload whose new worker for `b` failed to open and was undone
  // while the one before it was still draining.
  const auto b = disk_sink("b");
  const std::vector<DrainingSinkInfo> draining{{"b", "/spool/b"}};
  const auto plan = plan_reload(with_sinks({b}), draining, with_sinks({changed(b)}));
  EXPECT_EQ(plan.sinks[0].stop_old, std::optional<std::size_t>(0));
  EXPECT_EQ(plan.sinks[0].stop_draining, std::vector<std::size_t>{0});
  EXPECT_TRUE(plan.drain.empty());
}

TEST(ReloadPlanTest, AdminChangesAreFlaggedAndLogChangesAreNot) {
  const auto old = with_sinks({memory_sink("a")});
  auto next = old;
  next.log.level = log::Level::debug;
  EXPECT_FALSE(plan_reload(old, {}, next).admin_changed);
  next.admin.port = 9999;
  EXPECT_TRUE(plan_reload(old, {}, next).admin_changed);
}

class SubscriptionPlanTest : public ::testing::Test {
 protected:
  SubscriptionPlanTest() {
    appwrite.endpoint = "https://appwrite.example/v1";
    appwrite.realtime_endpoint = "wss://appwrite.example/v1/realtime";
    appwrite.project = "shop";
  }

  SubscriptionChange plan(std::string_view mode, bool backing_off,
                          const std::vector<std::string>& next_channels,
                          const config::AppwriteConfig& after) const {
    return plan_subscription(appwrite, after, UpstreamNow{mode, backing_off, channels},
                             next_channels);
  }
  SubscriptionChange plan(std::string_view mode, bool backing_off,
                          const std::vector<std::string>& next_channels) const {
    return plan(mode, backing_off, next_channels, appwrite);
  }

  config::AppwriteConfig appwrite;
  std::vector<std::string> channels{"a", "b"};
  std::vector<std::string> more{"a", "b", "c"};
};

TEST_F(SubscriptionPlanTest, MessageModeChangesTheOpenConnectionInPlace) {
  EXPECT_EQ(plan("message", false, more), SubscriptionChange::in_place);
  EXPECT_EQ(plan("message", false, channels), SubscriptionChange::in_place);
}

TEST_F(SubscriptionPlanTest, UrlModeOpensASecondConnectionWhenTheChannelsChange) {
  EXPECT_EQ(plan("url", false, more), SubscriptionChange::second_connection);
  EXPECT_EQ(plan("url", false, {"a"}), SubscriptionChange::second_connection);
}

TEST_F(SubscriptionPlanTest, UrlModeKeepsTheConnectionWhenTheChannelsAreTheSame) {
  EXPECT_EQ(plan("url", false, channels), SubscriptionChange::in_place);
}

TEST_F(SubscriptionPlanTest, WithoutAnOpenConnectionTheNextConnectUsesTheNewChannels) {
  EXPECT_EQ(plan("url", true, more), SubscriptionChange::in_place);
  EXPECT_EQ(plan("", false, more), SubscriptionChange::in_place);  // mode not known yet
}

TEST_F(SubscriptionPlanTest, NewAppwriteSettingsOpenASecondConnectionInEveryMode) {
  auto endpoint = appwrite;
  endpoint.realtime_endpoint = "wss://other.example/v1/realtime";
  auto project = appwrite;
  project.project = "other";
  auto credentials = appwrite;
  credentials.auth.email = "sluice@example.com";
  for (const auto& after : {endpoint, project, credentials}) {
    EXPECT_EQ(plan("message", false, channels, after), SubscriptionChange::second_connection);
    EXPECT_EQ(plan("url", true, channels, after), SubscriptionChange::second_connection);
  }
}

}  // namespace
}  // namespace sluice
