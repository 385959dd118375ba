#include "daemon/upstream/subscription_plan.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace sluice::upstream {
namespace {

const net::Endpoint kRealtime{false, "appwrite.example.com", "443", "/v1/realtime"};

// `n` routes, each on its own TablesDB table with a realistic 30-character id.
Subscription tables(std::size_t n) {
  Subscription s;
  for (std::size_t i = 0; i < n; ++i) {
    auto channel = fmt::format("tablesdb.shop.tables.{:0>30}.rows", fmt::format("tbl{}", i));
    s.entries.push_back({subscription_id(fmt::format("route-{}", i)), {channel}, {}});
    s.channels.push_back(std::move(channel));
  }
  std::sort(s.channels.begin(), s.channels.end());
  return s;
}

SubscriptionPlan plan(const Subscription& s, SubscribeMode mode, std::size_t header_bytes = 600) {
  return plan_subscription(s, mode, {&kRealtime, "shop", header_bytes});
}

TEST(SubscriptionPlannerTest, AThousandRoutesSplitIntoSubscribeFramesBelowTheFrameLimit) {
  const auto wanted = tables(1000);
  const auto p = plan(wanted, SubscribeMode::message);
  EXPECT_TRUE(p.error.empty());
  EXPECT_TRUE(p.widened.empty());
  EXPECT_GE(p.frames.size(), 2u);  // one frame would be ~90 KB
  EXPECT_LE(p.frames.size(), kMaxSubscribeFrames);
  std::size_t carried = 0;
  for (const auto& f : p.frames) {
    EXPECT_LE(f.size() + 14, kMaxInboundFrame);  // with a masked frame's header
    EXPECT_TRUE(f.starts_with(R"({"type":"subscribe","data":[{"subscriptionId":)"));
    EXPECT_TRUE(f.ends_with("]}"));
    for (std::size_t at = f.find("subscriptionId"); at != std::string::npos;
         at = f.find("subscriptionId", at + 1)) {
      ++carried;
    }
  }
  EXPECT_EQ(carried, 1000u);
  ASSERT_EQ(p.entries.size(), 1000u);  // one subscription per route, as without limits
  EXPECT_EQ(p.entries.back().id, wanted.entries.back().id);
  EXPECT_EQ(p.channels, wanted.channels);
}

TEST(SubscriptionPlannerTest, AUrlTooLongForTheRequestHeadWidensTablesToRows) {
  const auto wanted = tables(1000);
  const auto p = plan(wanted, SubscribeMode::url);
  EXPECT_TRUE(p.error.empty());
  EXPECT_EQ(p.channels, std::vector<std::string>{"rows"});
  ASSERT_EQ(p.widened.size(), 1u);
  EXPECT_EQ(p.widened[0].to, "rows");
  EXPECT_EQ(p.widened[0].from.size(), 1000u);
  EXPECT_LT(p.url_bytes, kMaxRequestHead);
  EXPECT_NE(p.why.find("request head of"), std::string::npos) << p.why;
  EXPECT_EQ(describe_widening(p).substr(0, 20), "rows (1000 channels,");
}

TEST(SubscriptionPlannerTest, WhatFitsStaysExact) {
  const auto wanted = tables(10);
  const auto url = plan(wanted, SubscribeMode::url);
  EXPECT_EQ(url.channels, wanted.channels);
  EXPECT_TRUE(url.widened.empty());
  EXPECT_GT(url.url_bytes, 600u);
  const auto message = plan(wanted, SubscribeMode::message);
  EXPECT_EQ(message.frames.size(), 1u);
  EXPECT_EQ(message.entries.size(), 10u);
  // No routes at all: an empty subscribe, whose answer still marks the connection subscribed.
  EXPECT_EQ(plan({}, SubscribeMode::message).frames,
            std::vector<std::string>{R"({"type":"subscribe","data":[]})"});
}

TEST(SubscriptionPlannerTest, OnlyTheGroupsNeededAreWidenedLargestFirst) {
  auto wanted = tables(1000);
  for (int i = 0; i < 3; ++i)
    wanted.channels.push_back(fmt::format("buckets.b{}.files", i));
  wanted.channels.push_back("console");
  std::sort(wanted.channels.begin(), wanted.channels.end());
  const auto p = plan(wanted, SubscribeMode::url);
  EXPECT_EQ(p.channels, (std::vector<std::string>{"buckets.b0.files", "buckets.b1.files",
                                                  "buckets.b2.files", "console", "rows"}));
}

TEST(SubscriptionPlannerTest, MessageModeBeyondItsFrameBudgetMergesThenWidens) {
  // 5,000 routes: one subscription per route takes more than kMaxSubscribeFrames frames, all
  // channels in shared subscriptions fit.
  const auto merged = plan(tables(5000), SubscribeMode::message);
  EXPECT_TRUE(merged.widened.empty());
  EXPECT_LE(merged.frames.size(), kMaxSubscribeFrames);
  EXPECT_LT(merged.entries.size(), 5000u);
  // 12,000 do not fit either way: `rows` covers them.
  const auto widened = plan(tables(12000), SubscribeMode::message);
  EXPECT_TRUE(widened.error.empty());
  EXPECT_EQ(widened.channels, std::vector<std::string>{"rows"});
  EXPECT_EQ(widened.frames.size(), 1u);
  EXPECT_NE(widened.why.find("subscribe frames"), std::string::npos) << widened.why;
}

TEST(SubscriptionPlannerTest, AChannelThatCannotFitIsAnErrorInWords) {
  Subscription s;
  s.channels.push_back("console." + std::string(70000, 'x'));
  s.entries.push_back({"a", s.channels, {}});
  const auto message = plan(s, SubscribeMode::message);
  EXPECT_NE(message.error.find("exceeds Appwrite's limit of 64,000"), std::string::npos)
      << message.error;
  const auto url = plan(s, SubscribeMode::url);
  EXPECT_NE(url.error.find("exceeds Appwrite's limit of 65536"), std::string::npos) << url.error;
}

TEST(SubscriptionPlannerTest, BroaderChannelsAreOnlyOnesAppwritePublishesEveryEventOn) {
  EXPECT_EQ(broader_channel("tablesdb.shop.tables.orders.rows"), "rows");
  EXPECT_EQ(broader_channel("databases.shop.tables.orders.rows.r1.update"), "rows");
  EXPECT_EQ(broader_channel("databases.shop.collections.orders.documents"), "documents");
  EXPECT_EQ(broader_channel("buckets.b1.files.f1"), "files");
  EXPECT_EQ(broader_channel("functions.f1"), "executions");
  EXPECT_EQ(broader_channel("executions.e1"), "executions");
  EXPECT_EQ(broader_channel("teams.t1"), "teams");
  EXPECT_EQ(broader_channel("rows"), std::nullopt);
  EXPECT_EQ(broader_channel("console"), std::nullopt);
  EXPECT_EQ(broader_channel("projects.shop"), std::nullopt);
  EXPECT_EQ(broader_channel("reports.r1.insights"), std::nullopt);
  EXPECT_EQ(broader_channel("console.tail.shop"), std::nullopt);
  EXPECT_EQ(broader_channel("tablesdb.shop.tables"), std::nullopt);
}

TEST(SubscriptionPlannerTest, UnsubscribesSplitBelowTheFrameLimit) {
  std::vector<std::string> ids;
  for (int i = 0; i < 3000; ++i)
    ids.push_back(subscription_id(fmt::format("route-{}", i)));
  const auto frames = unsubscribe_frames(ids);
  EXPECT_GE(frames.size(), 2u);
  std::size_t carried = 0;
  for (const auto& f : frames) {
    EXPECT_LE(f.size() + 14, kMaxInboundFrame);  // with a masked frame's header
    for (auto at = f.find("subscriptionId"); at != std::string::npos;
         at = f.find("subscriptionId", at + 1)) {
      ++carried;
    }
  }
  EXPECT_EQ(carried, 3000u);
  EXPECT_TRUE(unsubscribe_frames({}).empty());
}

Query q(Query::Method method, std::string attribute, std::vector<Query::Value> values) {
  return {method, std::move(attribute), std::move(values), {}};
}

TEST(SubscriptionPlannerTest, WhereBecomesTheQueriesAppwritesSdksSend) {
  using M = Query::Method;
  const std::vector<Query> where = {
      q(M::equal, "status", {std::string("paid"), std::string("refunded")}),
      q(M::greater_than, "total", {std::int64_t{100}}),
      q(M::less_than_equal, "weight", {2.0}),  // stays a float for PHP's ===
      q(M::is_null, "deleted", {}),
      Query{M::or_, "", {}, {q(M::not_equal, "flag", {true}), q(M::is_not_null, "note", {})}},
      q(M::equal, "missing", {nullptr}),
  };
  const auto queries = server_queries(where);
  ASSERT_TRUE(queries);
  EXPECT_EQ(
      *queries,
      (std::vector<std::string>{
          R"({"method":"equal","attribute":"status","values":["paid","refunded"]})",
          R"({"method":"greaterThan","attribute":"total","values":[100]})",
          R"({"method":"lessThanEqual","attribute":"weight","values":[2.0]})",
          R"({"method":"isNull","attribute":"deleted","values":[]})",
          R"({"method":"or","values":[{"method":"notEqual","attribute":"flag","values":[true]},)"
          R"({"method":"isNotNull","attribute":"note","values":[]}]})",
          R"({"method":"equal","attribute":"missing","values":[null]})"}));
  EXPECT_EQ(server_queries({}), std::vector<std::string>{});
}

TEST(SubscriptionPlannerTest, AWhereAppwriteWouldReadDifferentlyStaysOnTheRouter) {
  using M = Query::Method;
  // sluice reads `address.city` as a path, Appwrite as a top-level key named so.
  EXPECT_FALSE(server_queries({q(M::equal, "address.city", {std::string("Oslo")})}));
  EXPECT_FALSE(server_queries({Query{M::and_, "", {}, {q(M::is_null, "a.b", {})}}}));
}

TEST(SubscriptionPlannerTest, QueriesTravelWithTheirSubscriptionOnlyWhileExact) {
  auto wanted = tables(2);
  wanted.entries[0].queries = {R"({"method":"equal","attribute":"status","values":["paid"]})"};
  const auto exact = plan(wanted, SubscribeMode::message);
  ASSERT_EQ(exact.frames.size(), 1u);
  EXPECT_NE(
      exact.frames[0].find(
          R"("queries":["{\"method\":\"equal\",\"attribute\":\"status\",\"values\":[\"paid\"]}"]})"),
      std::string::npos)
      << exact.frames[0];
  // Merged subscriptions select every event of their channels: a route's filter cannot apply.
  auto many = tables(12000);
  many.entries[0].queries = wanted.entries[0].queries;
  for (const auto& f : plan(many, SubscribeMode::message).frames)
    EXPECT_NE(f.find(R"("queries":[]})"), std::string::npos);
}

}  // namespace
}  // namespace sluice::upstream
