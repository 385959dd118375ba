#include "daemon/router.hpp"

#include <gtest/gtest.h>

#include <random>
#include <stdexcept>
#include <string>

#include "daemon/upstream/decoder.hpp"

namespace sluice {
namespace {

struct RouteSpec {
  std::string name;
  std::vector<std::string> channels;
  std::vector<std::string> events;
  std::vector<Query> where;
  std::vector<std::string> sinks;
};

config::Config make_config(const std::vector<std::string>& sinks,
                           const std::vector<RouteSpec>& routes) {
  config::Config c;
  for (const std::string& name : sinks) {
    config::SinkConfig s;
    s.name = name;
    c.sinks.push_back(std::move(s));
  }
  for (const RouteSpec& spec : routes) {
    config::RouteConfig r;
    r.name = spec.name;
    r.channels = spec.channels;
    r.events = spec.events;
    r.where = spec.where;
    r.sinks = spec.sinks;
    c.routes.push_back(std::move(r));
  }
  return c;
}

std::string json_list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (const std::string& item : items) {
    if (out.size() > 1)
      out += ",";
    append_json_string(out, item);
  }
  return out + "]";
}

// Events are built through the real decoder so that their views point into a padded frame.
EventPtr make_event(const std::vector<std::string>& channels,
                    const std::vector<std::string>& events = {"x.create"},
                    const std::string& payload = "{}") {
  static upstream::FrameDecoder decoder{"p"};
  auto r = decoder.decode(R"({"type":"event","data":{"events":)" + json_list(events) +
                              R"(,"channels":)" + json_list(channels) +
                              R"(,"timestamp":"2026-01-01T00:00:00.000+00:00","payload":)" +
                              payload + "}}",
                          false, {}, {});
  EXPECT_EQ(r.kind, upstream::FrameKind::event) << r.invalid_reason;
  // Keep every test event alive: a test may read an event after routing it.
  static std::vector<EventPtr> alive;
  alive.push_back(r.event);
  return r.event;
}

Query cond(Query::Method m, std::string attribute, std::vector<Query::Value> values) {
  Query q;
  q.method = m;
  q.attribute = std::move(attribute);
  q.values = std::move(values);
  return q;
}

TEST(EventPattern, StarIsExactlyOneSegment) {
  const EventPattern p("databases.*.collections.*.documents.*.create");
  EXPECT_TRUE(p.matches("databases.shop.collections.orders.documents.r1.create"));
  EXPECT_TRUE(p.matches("databases.*.collections.*.documents.*.create"));
  EXPECT_FALSE(p.matches("databases.shop.collections.orders.documents.r1.update"));
  EXPECT_FALSE(p.matches("databases.shop.collections.orders.documents.create"));
  EXPECT_FALSE(p.matches("databases.shop.collections.orders.documents.r1.create.x"));
  EXPECT_FALSE(p.matches("databases.shop.x.collections.orders.documents.r1.create"));
  EXPECT_FALSE(p.matches(""));

  const EventPattern one("*");
  EXPECT_TRUE(one.matches("users"));
  EXPECT_FALSE(one.matches("users.u1"));
  const EventPattern tail("users.*");
  EXPECT_TRUE(tail.matches("users.u1"));
  EXPECT_FALSE(tail.matches("users"));
  EXPECT_FALSE(tail.matches("users.u1.update"));
  EXPECT_FALSE(tail.matches("usersx.u1"));
}

TEST(EventPattern, NoPartialSegmentMatch) {
  const EventPattern p("databases.shop*.collections");
  EXPECT_FALSE(p.matches("databases.shop1.collections"));
  EXPECT_TRUE(p.matches("databases.shop*.collections"));
  const EventPattern literal("a.b");
  EXPECT_TRUE(literal.matches("a.b"));
  EXPECT_FALSE(literal.matches("a.bc"));
  EXPECT_FALSE(literal.matches("a.b."));
  EXPECT_FALSE(literal.matches("a"));
  EXPECT_FALSE(EventPattern("a.*").matches("a"));
  EXPECT_TRUE(EventPattern("a.*").matches("a."));  // an empty segment is still one segment
}

TEST(Router, RoutesByChannelEventsAndWhere) {
  const auto config = make_config(
      {"orders", "archive", "audit"},
      {{"paid-orders",
        {"databases.shop.collections.orders.documents"},
        {"databases.*.collections.*.documents.*.create"},
        {cond(Query::Method::equal, "status", {std::string("paid"), std::string("refunded")}),
         cond(Query::Method::greater_than, "total", {std::int64_t{100}})},
        {"orders", "archive"}}});
  const Router router(config);
  RouteResult out;

  const std::vector<std::string> channels = {"documents",
                                             "databases.shop.collections.orders.documents"};
  const std::vector<std::string> create = {"databases.shop.collections.orders.documents.r1.create",
                                           "databases.shop"};
  router.route(*make_event(channels, create, R"({"status":"paid","total":120})"), out);
  ASSERT_EQ(out.targets.size(), 2u);
  EXPECT_EQ(out.targets[0].sink, 0u);
  EXPECT_EQ(out.targets[1].sink, 1u);
  EXPECT_EQ(out.targets[0].route_name, "paid-orders");
  EXPECT_EQ(out.targets[0].route, 0u);
  EXPECT_EQ(out.targets[0].channel, 1u);  // "databases.shop.collections.orders.documents"
  EXPECT_EQ(out.matched, std::vector<std::size_t>{0});
  EXPECT_FALSE(out.unmatched());

  // where fails.
  router.route(*make_event(channels, create, R"({"status":"open","total":120})"), out);
  EXPECT_TRUE(out.unmatched());
  EXPECT_TRUE(out.targets.empty());
  router.route(*make_event(channels, create, R"({"status":"paid","total":100})"), out);
  EXPECT_TRUE(out.unmatched());
  // events fail.
  router.route(*make_event(channels, {"databases.shop.collections.orders.documents.r1.update"},
                           R"({"status":"paid","total":120})"),
               out);
  EXPECT_TRUE(out.unmatched());
  // channel fails.
  router.route(*make_event({"documents"}, create, R"({"status":"paid","total":120})"), out);
  EXPECT_TRUE(out.unmatched());
}

TEST(Router, SinkReachedThroughTwoRoutesIsQueuedOnce) {
  const auto config = make_config({"a", "b", "c"}, {{"first", {"ch1"}, {}, {}, {"b", "a"}},
                                                    {"second", {"ch2", "ch1"}, {}, {}, {"a", "c"}},
                                                    {"third", {"ch3"}, {}, {}, {"a"}}});
  const Router router(config);
  RouteResult out;
  router.route(*make_event({"zz", "ch2", "ch1"}), out);
  EXPECT_EQ(out.matched, (std::vector<std::size_t>{0, 1}));
  ASSERT_EQ(out.targets.size(), 3u);
  // First matching route in file order labels each sink.
  EXPECT_EQ(out.targets[0].sink, 1u);
  EXPECT_EQ(out.targets[0].route_name, "first");
  EXPECT_EQ(out.targets[0].channel, 2u);  // "ch1"
  EXPECT_EQ(out.targets[1].sink, 0u);
  EXPECT_EQ(out.targets[1].route_name, "first");
  EXPECT_EQ(out.targets[2].sink, 2u);
  EXPECT_EQ(out.targets[2].route_name, "second");
  // The first of the event's channels that route listens on.
  EXPECT_EQ(out.targets[2].channel, 1u);  // "ch2"
}

TEST(Router, ChannelSharedBySeveralRoutesAndUnmatched) {
  const auto config =
      make_config({"k", "w"}, {{"creates", {"rows"}, {"*.*.create", "x.create"}, {}, {"k"}},
                               {"updates", {"rows"}, {"*.*.update"}, {}, {"w"}},
                               {"all", {"rows", "files"}, {}, {}, {"w"}}});
  const Router router(config);
  RouteResult out;
  router.route(*make_event({"rows"}, {"t.r.update", "t.r"}), out);
  EXPECT_EQ(out.matched, (std::vector<std::size_t>{1, 2}));
  ASSERT_EQ(out.targets.size(), 1u);
  EXPECT_EQ(out.targets[0].route_name, "updates");

  router.route(*make_event({"rows"}, {"x.create"}), out);
  EXPECT_EQ(out.matched, (std::vector<std::size_t>{0, 2}));
  ASSERT_EQ(out.targets.size(), 2u);

  router.route(*make_event({"files"}, {"x.create"}), out);
  EXPECT_EQ(out.matched, std::vector<std::size_t>{2});

  router.route(*make_event({"teams", "memberships"}), out);
  EXPECT_TRUE(out.unmatched());
  EXPECT_TRUE(out.targets.empty());
  router.route(*make_event({}), out);
  EXPECT_TRUE(out.unmatched());
}

// Channels are screened by length before the lookup: same-length strangers, shorter and
// longer channels (beyond the longest subscribed one) and the empty channel must all be
// handled, and the event's first listened-on channel is still the one reported.
TEST(Router, ChannelLengthScreenKeepsExactMatching) {
  const auto config =
      make_config({"k"}, {{"r", {"rows", "tablesdb.shop.tables.t.rows"}, {}, {}, {"k"}}});
  const Router router(config);
  RouteResult out;
  router.route(*make_event({"", "cols", "row", "rowsx", "tablesdb.shop.tables.t.rows.r1",
                            "tablesdb.shop.tables.u.rows"}),
               out);
  EXPECT_TRUE(out.unmatched());
  router.route(*make_event({"tablesdb.shop.tables.u.rows", "tablesdb.shop.tables.t.rows.r1",
                            "tablesdb.shop.tables.t.rows", "rows"}),
               out);
  EXPECT_EQ(out.matched, std::vector<std::size_t>{0});
  ASSERT_EQ(out.targets.size(), 1u);
  EXPECT_EQ(out.targets[0].channel, 2u);  // "tablesdb.shop.tables.t.rows"
}

TEST(Router, WhereWithOrAndNull) {
  Query any;
  any.method = Query::Method::or_;
  any.queries = {cond(Query::Method::is_null, "deletedAt", {}),
                 cond(Query::Method::less_than, "priority", {std::int64_t{3}})};
  const auto config = make_config({"s"}, {{"r", {"c"}, {}, {any}, {"s"}}});
  const Router router(config);
  RouteResult out;
  router.route(*make_event({"c"}, {"e"}, R"({"deletedAt":null,"priority":9})"), out);
  EXPECT_FALSE(out.unmatched());
  router.route(*make_event({"c"}, {"e"}, R"({"deletedAt":"2024","priority":1})"), out);
  EXPECT_FALSE(out.unmatched());
  router.route(*make_event({"c"}, {"e"}, R"({"deletedAt":"2024","priority":5})"), out);
  EXPECT_TRUE(out.unmatched());
  router.route(*make_event({"c"}, {"e"}, R"({"priority":5})"), out);  // missing ≠ null
  EXPECT_TRUE(out.unmatched());
}

TEST(Router, ManyRoutesOnlyTheListeningOnesAreConsidered) {
  std::vector<RouteSpec> routes;
  std::vector<std::string> sinks;
  for (int i = 0; i < 2000; ++i) {
    sinks.push_back("s" + std::to_string(i));
    routes.push_back({"r" + std::to_string(i),
                      {"channel." + std::to_string(i), "shared"},
                      {},
                      {cond(Query::Method::equal, "n", {std::int64_t{i}})},
                      {sinks.back()}});
  }
  const Router router(make_config(sinks, routes));
  EXPECT_EQ(router.route_count(), 2000u);
  EXPECT_EQ(router.subscription_channels().size(), 2001u);
  RouteResult out;
  router.route(*make_event({"channel.1234"}, {"e"}, R"({"n":1234})"), out);
  ASSERT_EQ(out.targets.size(), 1u);
  EXPECT_EQ(out.targets[0].sink, 1234u);
  EXPECT_EQ(out.targets[0].route_name, "r1234");
  router.route(*make_event({"channel.1234"}, {"e"}, R"({"n":1})"), out);
  EXPECT_TRUE(out.unmatched());
  router.route(*make_event({"shared"}, {"e"}, R"({"n":1999})"), out);
  EXPECT_EQ(out.matched, std::vector<std::size_t>{1999});
}

TEST(Router, EqualIndexKeepsPhpIdentity) {
  // Routes filed under `equal` values must match exactly as `===` does: by type and value.
  const auto config = make_config(
      {"s"}, {{"int", {"c"}, {}, {cond(Query::Method::equal, "v", {std::int64_t{100}})}, {"s"}},
              {"float", {"c"}, {}, {cond(Query::Method::equal, "v", {100.0})}, {"s"}},
              {"string", {"c"}, {}, {cond(Query::Method::equal, "v", {std::string("100")})}, {"s"}},
              {"zero", {"c"}, {}, {cond(Query::Method::equal, "v", {-0.0})}, {"s"}},
              {"null", {"c"}, {}, {cond(Query::Method::equal, "v", {nullptr})}, {"s"}},
              {"bool", {"c"}, {}, {cond(Query::Method::equal, "v", {true, false})}, {"s"}}});
  const Router router(config);
  RouteResult out;
  const auto matched = [&](const std::string& value) {
    router.route(*make_event({"c"}, {"e"}, R"({"v":)" + value + "}"), out);
    std::vector<std::string> names;
    for (const std::size_t r : out.matched)
      names.emplace_back(router.route_name(r));
    return names;
  };
  using Names = std::vector<std::string>;
  EXPECT_EQ(matched("100"), Names{"int"});
  EXPECT_EQ(matched("100.0"), Names{"float"});
  EXPECT_EQ(matched("1e2"), Names{"float"});
  EXPECT_EQ(matched(R"("100")"), Names{"string"});
  EXPECT_EQ(matched("0.0"), Names{"zero"});
  EXPECT_EQ(matched("-0.0"), Names{"zero"});
  EXPECT_EQ(matched("0"), Names{});
  EXPECT_EQ(matched("null"), Names{"null"});
  EXPECT_EQ(matched("false"), Names{"bool"});
  EXPECT_EQ(matched("[100]"), Names{});
  router.route(*make_event({"c"}, {"e"}, "{}"), out);
  EXPECT_TRUE(out.unmatched());
}

// The index is only a shortcut: over random routes and payloads the router must agree with
// evaluating every route's channels and `where` in file order.
TEST(Router, IndexedRoutingAgreesWithEvaluatingEveryRoute) {
  std::mt19937 rng(20261123);
  const auto pick = [&rng](std::size_t n) {
    return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng);
  };
  const std::vector<Query::Value> values = {
      std::int64_t{1},     std::int64_t{100}, 100.0, 0.0,   std::string("100"),
      std::string("paid"), std::string(""),   true,  false, nullptr};
  const std::vector<std::string> json_values = {
      "1",         "100",   "100.0", "1e2",   "0",    "-0.0", "0.0",        R"("100")",
      R"("paid")", R"("")", "true",  "false", "null", "[1]",  R"({"k":1})", "18446744073709551616"};
  const std::vector<std::string> attributes = {"a", "b", "n.x"};
  const std::vector<std::string> channels = {"c0", "c1", "c2", "c3"};
  const auto some_values = [&] {
    std::vector<Query::Value> out;
    for (std::size_t k = 1 + pick(3); k > 0; --k)
      out.push_back(values[pick(values.size())]);
    return out;
  };
  const auto random_condition = [&]() {
    const std::string& attribute = attributes[pick(attributes.size())];
    switch (pick(6)) {
      case 0:
      case 1:
        return cond(Query::Method::equal, attribute, some_values());
      case 2:
        return cond(Query::Method::not_equal, attribute, some_values());
      case 3:
        return cond(Query::Method::greater_than, attribute, some_values());
      case 4: {
        Query any;
        any.method = Query::Method::or_;
        any.queries = {cond(Query::Method::equal, attribute, some_values()),
                       cond(Query::Method::is_null, attributes[pick(attributes.size())], {})};
        return any;
      }
      default:
        return pick(4) == 0 ? cond(Query::Method::select, "", {std::string("*")})
                            : cond(Query::Method::is_not_null, attribute, {});
    }
  };
  std::vector<RouteSpec> routes;
  for (int i = 0; i < 300; ++i) {
    RouteSpec spec{"r" + std::to_string(i), {}, {}, {}, {"s" + std::to_string(i % 7)}};
    for (std::size_t k = 1 + pick(2); k > 0; --k)
      spec.channels.push_back(channels[pick(channels.size())]);
    for (std::size_t k = pick(3); k > 0; --k)
      spec.where.push_back(random_condition());
    routes.push_back(std::move(spec));
  }
  const auto config = make_config({"s0", "s1", "s2", "s3", "s4", "s5", "s6"}, routes);
  const Router router(config);
  RouteResult out;
  for (int e = 0; e < 2000; ++e) {
    std::vector<std::string> event_channels;
    for (std::size_t k = 1 + pick(3); k > 0; --k)
      event_channels.push_back(channels[pick(channels.size())]);
    std::string payload = "{";
    for (const char* key : {"a", "b"}) {
      if (pick(5) != 0)
        payload += std::string(payload.size() > 1 ? "," : "") + '"' + key +
                   "\":" + json_values[pick(json_values.size())];
    }
    if (pick(2) == 0)
      payload += std::string(payload.size() > 1 ? "," : "") + R"("n":{"x":)" +
                 json_values[pick(json_values.size())] + "}";
    payload += "}";
    const EventPtr event = make_event(event_channels, {"e"}, payload);
    router.route(*event, out);

    std::vector<std::size_t> expected;
    std::vector<std::string_view> expected_channel;
    const JsonBytes bytes{event->payload.data(), event->payload.size(),
                          event->readable_after(event->payload)};
    for (std::size_t r = 0; r < config.routes.size(); ++r) {
      const auto& listens = config.routes[r].channels;
      const auto first =
          std::find_if(event->channels.begin(), event->channels.end(), [&](std::string_view c) {
            return std::find(listens.begin(), listens.end(), c) != listens.end();
          });
      if (first == event->channels.end() || !matches_all(config.routes[r].where, bytes))
        continue;
      expected.push_back(r);
      expected_channel.push_back(*first);
    }
    ASSERT_EQ(out.matched, expected) << payload;
    for (const RouteTarget& target : out.targets) {
      const auto at = std::find(expected.begin(), expected.end(), target.route);
      ASSERT_NE(at, expected.end());
      EXPECT_EQ(event->channels[target.channel],
                expected_channel[static_cast<std::size_t>(at - expected.begin())]);
    }
  }
}

TEST(Router, SubscriptionChannelsAndPerRouteLists) {
  const auto config =
      make_config({"a", "b"}, {{"one", {"rows", "files", "rows"}, {}, {}, {"a", "a", "b"}},
                               {"two", {"account", "files"}, {}, {}, {"b"}}});
  const Router router(config);
  EXPECT_EQ(router.subscription_channels(), (std::vector<std::string>{"account", "files", "rows"}));
  ASSERT_EQ(router.route_count(), 2u);
  EXPECT_EQ(router.route_name(1), "two");
  EXPECT_EQ(router.route_channels(0), (std::vector<std::string>{"rows", "files"}));
  EXPECT_EQ(router.route_channels(1), (std::vector<std::string>{"account", "files"}));
  EXPECT_EQ(router.route_sinks(0), (std::vector<std::size_t>{0, 1}));

  RouteResult out;
  router.route(*make_event({"rows", "rows"}), out);  // duplicate channels in the event
  EXPECT_EQ(out.matched, std::vector<std::size_t>{0});
  EXPECT_EQ(out.targets.size(), 2u);
}

TEST(Router, UnknownSinkThrowsAtConstruction) {
  EXPECT_THROW(Router(make_config({"a"}, {{"r", {"c"}, {}, {}, {"missing"}}})),
               std::invalid_argument);
}

TEST(Router, ResultIsReusedWithoutReallocating) {
  const auto config = make_config({"a", "b"}, {{"r", {"c"}, {}, {}, {"a", "b"}}});
  const Router router(config);
  RouteResult out;
  const EventPtr event = make_event({"c"});
  router.route(*event, out);
  const RouteTarget* data = out.targets.data();
  for (int i = 0; i < 100; ++i) {
    router.route(*event, out);
    ASSERT_EQ(out.targets.size(), 2u);
  }
  EXPECT_EQ(out.targets.data(), data);
}

}  // namespace
}  // namespace sluice
