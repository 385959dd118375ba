#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>

#include "core/utc.hpp"
#include "daemon/recovery/backfill_pager.hpp"
#include "daemon/recovery/backfill_plan.hpp"
#include "daemon/recovery/backfill_synth.hpp"

namespace sluice::recovery {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

// 2026-12-06T12:00:00Z
const Millis kNow{std::chrono::sys_days{std::chrono::year{2026} / 12 / 6} + 12h};

config::Config make_config(std::vector<std::vector<std::string>> route_channels,
                           config::AuthConfig::Kind auth = config::AuthConfig::Kind::session) {
  config::Config c;
  c.appwrite.project = "shop";
  c.appwrite.auth.kind = auth;
  for (std::size_t i = 0; i < route_channels.size(); ++i) {
    config::RouteConfig route;
    route.name = "r" + std::to_string(i);
    route.channels = std::move(route_channels[i]);
    route.sinks = {"out"};
    c.routes.push_back(std::move(route));
  }
  return c;
}

PlanContext context(std::optional<std::string> version = "1.9.6") {
  return PlanContext{std::move(version), kNow, std::nullopt};
}

State live_until(Millis at) {
  State s;
  s.live_until = at;
  return s;
}

// --- planner ---------------------------------------------------------------------------------

TEST(BackfillPlanTest, TheApiFollowsTheChannelFormAndTheServerVersion) {
  const auto c =
      make_config({{"tablesdb.db.tables.orders.rows", "databases.legacy.collections.c.documents",
                    "databases.tdb.tables.t.rows.row1.update", "buckets.avatars.files"}});
  const auto state = live_until(kNow - 10s);
  const auto on19 = plan_backfill(c, state, context("1.9.6"));
  ASSERT_EQ(on19.targets.size(), 4u);
  EXPECT_EQ(on19.profile, emulator::Profile::v1_9);
  std::map<std::string, Target> by_key;
  for (const auto& t : on19.targets)
    by_key[t.key] = t;
  EXPECT_EQ(by_key["databases/db/tables/orders"].api, Api::tablesdb);
  EXPECT_EQ(by_key["databases/db/tables/orders"].database_type, "tablesdb");
  EXPECT_EQ(by_key["databases/legacy/tables/c"].api, Api::databases);
  EXPECT_EQ(by_key["databases/legacy/tables/c"].database_type, "legacy");
  EXPECT_EQ(by_key["databases/tdb/tables/t"].api, Api::tablesdb);  // the TablesDB words
  EXPECT_EQ(by_key["buckets/avatars"].api, Api::storage);
  EXPECT_EQ(by_key["buckets/avatars"].container, "avatars");
  EXPECT_TRUE(on19.not_covered.empty());

  // Before 1.8 there is no TablesDB API: everything is a collection.
  const auto on17 = plan_backfill(c, state, context("1.7.4"));
  EXPECT_EQ(on17.profile, emulator::Profile::v1_8);
  for (const auto& t : on17.targets)
    EXPECT_EQ(t.api, t.key.starts_with("buckets/") ? Api::storage : Api::databases) << t.key;
  // 1.8 has TablesDB, with 1.8's fan-out.
  const auto on18 = plan_backfill(c, state, context("1.8.1"));
  EXPECT_EQ(on18.profile, emulator::Profile::v1_8);
  EXPECT_EQ(on18.targets[1].key, "databases/db/tables/orders");
  EXPECT_EQ(on18.targets[1].api, Api::tablesdb);
  // An unknown version lists with the API every version serves.
  const auto unknown = plan_backfill(c, state, context(std::nullopt));
  EXPECT_EQ(unknown.targets[1].api, Api::databases);
}

TEST(BackfillPlanTest, TwoChannelFormsOfOneTableAreListedOnce) {
  const auto c = make_config(
      {{"databases.db.collections.orders.documents"}, {"tablesdb.db.tables.orders.rows.create"}});
  const auto p = plan_backfill(c, live_until(kNow - 10s), context());
  ASSERT_EQ(p.targets.size(), 1u);
  EXPECT_EQ(p.targets[0].key, "databases/db/tables/orders");
  EXPECT_EQ(p.targets[0].database_type, "tablesdb");
  EXPECT_EQ(p.targets[0].api, Api::tablesdb);
}

TEST(BackfillPlanTest, FromIsTheNewerOfCheckpointAndLiveUntilMinusTheMargin) {
  auto c = make_config(
      {{"tablesdb.db.tables.a.rows", "tablesdb.db.tables.b.rows", "tablesdb.db.tables.c.rows"}});
  c.backfill.margin = 5000ms;
  State state = live_until(kNow - 60s);
  state.resources["databases/db/tables/a"] = Checkpoint{kNow - 30s, {"r1", "r2"}};  // newer
  state.resources["databases/db/tables/b"] = Checkpoint{kNow - 90s, {"r3"}};        // older
  const auto p = plan_backfill(c, state, context());
  ASSERT_EQ(p.targets.size(), 3u);
  EXPECT_EQ(p.targets[0].since, kNow - 30s);
  EXPECT_EQ(p.targets[0].from, kNow - 35s);
  EXPECT_EQ(p.targets[0].skip_at, kNow - 30s);
  EXPECT_EQ(p.targets[0].skip_ids, (std::vector<std::string>{"r1", "r2"}));
  EXPECT_EQ(p.targets[1].since, kNow - 60s);  // live_until is newer than its checkpoint
  EXPECT_EQ(p.targets[1].from, kNow - 65s);
  EXPECT_EQ(p.targets[2].since, kNow - 60s);  // no checkpoint: live_until
  for (const auto& t : p.targets)
    EXPECT_EQ(t.not_fetched, 0ms);
}

TEST(BackfillPlanTest, WithoutLiveUntilTheGapStartStandsInAndWithoutBothNothingIsListed) {
  const auto c = make_config({{"tablesdb.db.tables.a.rows"}});
  auto ctx = context();
  EXPECT_TRUE(plan_backfill(c, State{}, ctx).targets.empty());
  ctx.gap_start = kNow - 20s;
  const auto p = plan_backfill(c, State{}, ctx);
  ASSERT_EQ(p.targets.size(), 1u);
  EXPECT_EQ(p.targets[0].since, kNow - 20s);
}

TEST(BackfillPlanTest, MaxWindowClipsTheGapAndReportsTheRestAsNotFetched) {
  auto c = make_config({{"tablesdb.db.tables.a.rows"}});
  c.backfill.max_window = 3600s;
  c.backfill.margin = 5000ms;
  const auto p = plan_backfill(c, live_until(kNow - 5h), context());
  ASSERT_EQ(p.targets.size(), 1u);
  EXPECT_EQ(p.targets[0].from, kNow - 1h);
  EXPECT_EQ(p.targets[0].not_fetched, 4h);
  // A gap just inside the window: only the margin is clipped, nothing is unreported.
  const auto inside = plan_backfill(c, live_until(kNow - 1h + 2s), context());
  EXPECT_EQ(inside.targets[0].from, kNow - 1h);
  EXPECT_EQ(inside.targets[0].not_fetched, 0ms);
}

TEST(BackfillPlanTest, RoutesWithBackfillOffAndDisabledBackfillListNothing) {
  auto c = make_config({{"tablesdb.db.tables.a.rows"}, {"tablesdb.db.tables.b.rows"}});
  c.routes[1].backfill = false;
  const auto p = plan_backfill(c, live_until(kNow - 10s), context());
  ASSERT_EQ(p.targets.size(), 1u);
  EXPECT_EQ(p.targets[0].key, "databases/db/tables/a");
  c.backfill.enabled = false;
  const auto off = plan_backfill(c, live_until(kNow - 10s), context());
  EXPECT_TRUE(off.targets.empty());
  EXPECT_TRUE(off.not_covered.empty());
  EXPECT_TRUE(uncovered_channels(c).empty());
}

TEST(BackfillPlanTest, BroadChannelsNeedAnApiKey) {
  auto c = make_config({{"rows", "files.create"}});
  const auto p = plan_backfill(c, live_until(kNow - 10s), context());
  EXPECT_FALSE(p.discover_databases);
  EXPECT_FALSE(p.discover_buckets);
  ASSERT_EQ(p.not_covered.size(), 2u);
  EXPECT_EQ(p.not_covered[0].channel, "rows");
  EXPECT_EQ(p.not_covered[0].route, "r0");
  EXPECT_NE(p.not_covered[0].reason.find("needs an api_key"), std::string::npos);
  EXPECT_NE(p.not_covered[1].reason.find("bucket"), std::string::npos);

  c.appwrite.auth.kind = config::AuthConfig::Kind::api_key;
  const auto keyed = plan_backfill(c, live_until(kNow - 10s), context());
  EXPECT_TRUE(keyed.discover_databases);
  EXPECT_TRUE(keyed.discover_buckets);
  EXPECT_TRUE(keyed.not_covered.empty());
  // A table found by discovery is planned like a named one.
  const auto t = plan_target("databases/db/tables/x", "tablesdb", true, c.backfill,
                             live_until(kNow - 10s), context());
  ASSERT_TRUE(t);
  EXPECT_EQ(t->api, Api::tablesdb);
  EXPECT_EQ(t->database, "db");
  EXPECT_EQ(t->container, "x");
}

TEST(BackfillPlanTest, ChangesAppwriteCannotListAreReportedWithTheReason) {
  const auto c = make_config({{"account", "teams.t1", "memberships", "executions",
                               "documentsdb.d.collections.c.documents", "no.such.channel"}});
  const auto p = plan_backfill(c, live_until(kNow - 10s), context());
  EXPECT_TRUE(p.targets.empty());
  std::map<std::string, std::string> reasons;
  for (const auto& u : p.not_covered)
    reasons[u.channel] = u.reason;
  EXPECT_NE(reasons["account"].find("no listable history of account"), std::string::npos);
  EXPECT_NE(reasons["teams.t1"].find("teams"), std::string::npos);
  EXPECT_NE(reasons["memberships"].find("memberships"), std::string::npos);
  EXPECT_NE(reasons["executions"].find("executions"), std::string::npos);
  EXPECT_NE(reasons["documentsdb.d.collections.c.documents"].find("documentsdb"),
            std::string::npos);
  EXPECT_FALSE(reasons.contains("no.such.channel"));  // not a channel at all: lint's business
  EXPECT_EQ(p.not_covered.size(), 5u);
}

// --- pager -----------------------------------------------------------------------------------

TEST(BackfillPagerTest, QueriesAreWrittenAsAppwritesSdkWritesThem) {
  // The `appwrite` npm SDK: Query.greaterThanEqual("$updatedAt", v), Query.orderAsc("$id"),
  // Query.limit(500), Query.cursorAfter("r9"): JSON.stringify of {method, attribute, values}.
  EXPECT_EQ(
      query_json("greaterThanEqual", "$updatedAt", "2026-12-06T12:00:00.000+00:00"),
      R"({"method":"greaterThanEqual","attribute":"$updatedAt","values":["2026-12-06T12:00:00.000+00:00"]})");
  EXPECT_EQ(query_json("orderAsc", "$id", std::nullopt),
            R"({"method":"orderAsc","attribute":"$id"})");
  EXPECT_EQ(query_json("limit", "", std::nullopt, 500), R"({"method":"limit","values":[500]})");
  EXPECT_EQ(query_json("cursorAfter", "", "r9"), R"({"method":"cursorAfter","values":["r9"]})");
  // Query.or([Query.greaterThan("$updatedAt", T), Query.and([Query.equal("$updatedAt", [T]),
  // Query.greaterThan("$id", "r9")])]): the SDK parses inner queries back into objects.
  EXPECT_EQ(
      after_key_query(kNow, "r9"),
      R"({"method":"or","values":[{"method":"greaterThan","attribute":"$updatedAt","values":["2026-12-06T12:00:00.000+00:00"]},)"
      R"({"method":"and","values":[{"method":"equal","attribute":"$updatedAt","values":["2026-12-06T12:00:00.000+00:00"]},)"
      R"({"method":"greaterThan","attribute":"$id","values":["r9"]}]}]})");
}

Target table_target(Api api = Api::tablesdb) {
  Target t;
  t.key = api == Api::storage ? "buckets/b" : "databases/db/tables/orders";
  t.api = api;
  t.database = api == Api::storage ? "" : "db";
  t.container = api == Api::storage ? "b" : "orders";
  t.database_type = api == Api::storage ? "" : "tablesdb";
  t.since = kNow - 60s;
  t.from = kNow - 65s;
  return t;
}

// The queries of a request path, decoded.
std::vector<json::object> queries_of(const std::string& path) {
  const auto url = boost::urls::parse_origin_form(path);
  std::vector<json::object> out;
  for (const auto& param : url->params())
    out.push_back(json::parse(param.value).as_object());
  return out;
}

TEST(BackfillPagerTest, TheRequestPathListsByUpdatedAtThenIdFromTheTargetsStart) {
  Pager pager(table_target(), kNow, 500);
  const auto path = pager.next_path();
  EXPECT_TRUE(path.starts_with("/tablesdb/db/tables/orders/rows?queries%5B0%5D=")) << path;
  const auto q = queries_of(path);
  ASSERT_EQ(q.size(), 5u);
  EXPECT_EQ(
      json::serialize(q[0]),
      R"({"method":"greaterThanEqual","attribute":"$updatedAt","values":["2026-12-06T11:58:55.000+00:00"]})");
  EXPECT_EQ(
      json::serialize(q[1]),
      R"({"method":"lessThanEqual","attribute":"$updatedAt","values":["2026-12-06T12:00:00.000+00:00"]})");
  EXPECT_EQ(json::serialize(q[2]), R"({"method":"orderAsc","attribute":"$updatedAt"})");
  EXPECT_EQ(json::serialize(q[3]), R"({"method":"orderAsc","attribute":"$id"})");
  EXPECT_EQ(json::serialize(q[4]), R"({"method":"limit","values":[500]})");
  EXPECT_TRUE(Pager(table_target(Api::databases), kNow, 5)
                  .next_path()
                  .starts_with("/databases/db/collections/orders/documents?"));
  EXPECT_TRUE(Pager(table_target(Api::storage), kNow, 5)
                  .next_path()
                  .starts_with("/storage/buckets/b/files?"));
}

// A table as Appwrite lists it: the filters the pager sends (and, or, equal and comparisons on
// $updatedAt as instants and on $id as text), ordered by ($updatedAt, $id), limited.
struct FakeTable {
  std::map<std::string, Millis> rows;  // $id -> $updatedAt
  std::string key = "rows";
  bool ignore_filters = false;  // a broken server: answers every request alike
  int requests = 0;

  static bool matches(const json::object& q, Millis at, const std::string& id) {
    const std::string_view method = q.at("method").as_string();
    const auto& values = q.at("values").as_array();
    if (method == "and" || method == "or") {
      const auto inner = [&](const json::value& v) { return matches(v.as_object(), at, id); };
      return method == "and" ? std::all_of(values.begin(), values.end(), inner)
                             : std::any_of(values.begin(), values.end(), inner);
    }
    const std::string_view attribute = q.at("attribute").as_string();
    int c = 0;
    if (attribute == "$updatedAt") {
      const auto other = upstream::parse_timestamp(values.at(0).as_string());
      EXPECT_TRUE(other.has_value());
      c = at < *other ? -1 : at > *other ? 1 : 0;
    } else {
      EXPECT_EQ(attribute, "$id");
      const std::string_view other = values.at(0).as_string();
      c = id < other ? -1 : id > other ? 1 : 0;
    }
    if (method == "equal")
      return c == 0;
    if (method == "greaterThan")
      return c > 0;
    if (method == "greaterThanEqual")
      return c >= 0;
    if (method == "lessThanEqual")
      return c <= 0;
    ADD_FAILURE() << "unexpected filter " << method;
    return false;
  }

  std::pair<unsigned, std::string> answer(const std::string& path) {
    ++requests;
    std::size_t limit = 25;
    std::vector<json::object> filters;
    for (auto& q : queries_of(path)) {
      const std::string_view method = q.at("method").as_string();
      if (method == "limit")
        limit = static_cast<std::size_t>(q.at("values").as_array().at(0).as_int64());
      else if (method != "orderAsc")
        filters.push_back(std::move(q));
    }
    std::vector<std::pair<Millis, std::string>> sorted;
    for (const auto& [id, at] : rows)
      if (ignore_filters || std::all_of(filters.begin(), filters.end(),
                                        [&](const auto& q) { return matches(q, at, id); }))
        sorted.emplace_back(at, id);
    std::sort(sorted.begin(), sorted.end());
    json::array list;
    for (std::size_t i = 0; i < sorted.size() && list.size() < limit; ++i) {
      const auto text = format_utc_millis(sorted[i].first, "+00:00");
      list.push_back(json::object{{"$id", sorted[i].second},
                                  {"$createdAt", format_utc_millis(kNow - 1h, "+00:00")},
                                  {"$updatedAt", text}});
    }
    json::object body{{"total", sorted.size()}, {key, std::move(list)}};
    return {200, json::serialize(body)};
  }
};

// Drives the pager against `table`, calling `between` after each page; the ids taken in order.
std::vector<std::string> drain(Pager& pager, FakeTable& table,
                               const std::function<void(int page)>& between = {}) {
  std::vector<std::string> taken;
  for (int page = 0; !pager.done(); ++page) {
    if (page > 200) {
      ADD_FAILURE() << "the pager does not end";
      break;
    }
    const auto [status, body] = table.answer(pager.next_path());
    const auto out = pager.on_response(status, body, std::nullopt);
    EXPECT_TRUE(out.error.empty()) << out.error;
    for (const auto& row : out.rows)
      taken.emplace_back(row.row.at("$id").as_string());
    if (between)
      between(page);
  }
  return taken;
}

TEST(BackfillPagerTest, PagesByKeyUntilAShortPageAndTakesEveryRowOnce) {
  FakeTable table;
  for (int i = 0; i < 12; ++i)
    table.rows[fmt::format("r{:02}", i)] = kNow - 50s + std::chrono::seconds(i);
  table.rows["old"] = kNow - 2h;  // before `from`
  table.rows["new"] = kNow + 1s;  // after `until`: it arrives live
  Pager pager(table_target(), kNow, 5);
  std::vector<std::string> paths;
  std::vector<std::string> taken;
  while (!pager.done() && paths.size() < 10) {
    paths.push_back(pager.next_path());
    const auto [status, body] = table.answer(paths.back());
    for (const auto& row : pager.on_response(status, body, std::nullopt).rows)
      taken.emplace_back(row.row.at("$id").as_string());
  }
  ASSERT_EQ(taken.size(), 12u);
  for (int i = 0; i < 12; ++i)
    EXPECT_EQ(taken[i], fmt::format("r{:02}", i));
  ASSERT_EQ(paths.size(), 3u);  // 5 + 5 + 2: the short page ends the listing
  EXPECT_EQ(pager.pages(), 3u);
  // After the first page, the first query is the key of the last row taken, never a cursor.
  const auto q = queries_of(paths[1]);
  ASSERT_EQ(q.size(), 5u);
  EXPECT_EQ(json::serialize(q[0]), after_key_query(kNow - 50s + 4s, "r04"));
  for (const auto& path : paths)
    EXPECT_EQ(path.find("cursor"), std::string::npos) << path;
}

TEST(BackfillPagerTest, ARowChangedAfterItsPageDoesNotMoveTheListingPastOthers) {
  // Page size 2: a@1 b@2 c@3 d@4. After the first page (a, b), b changes to @50 and f appears
  // at @60. A cursor after b would start at b's new time and hide c and d.
  FakeTable table;
  const auto at = [](int s) { return kNow - 65s + std::chrono::seconds(s); };
  table.rows = {{"a", at(1)}, {"b", at(2)}, {"c", at(3)}, {"d", at(4)}};
  Pager pager(table_target(), kNow, 2);
  const auto taken = drain(pager, table, [&](int page) {
    if (page == 0) {
      table.rows["b"] = at(50);
      table.rows["f"] = at(60);
    }
  });
  EXPECT_EQ(taken, (std::vector<std::string>{"a", "b", "c", "d", "b", "f"}));
}

TEST(BackfillPagerTest, RowsSharingAMillisecondBeyondAPageSurviveChangesDuringTheListing) {
  FakeTable table;
  for (int i = 0; i < 8; ++i)
    table.rows[fmt::format("s{}", i)] = kNow - 30s;  // more than two pages in one millisecond
  table.rows["z"] = kNow - 20s;
  Pager pager(table_target(), kNow, 3);
  const auto taken = drain(pager, table, [&](int page) {
    if (page == 0) {
      table.rows["s2"] = kNow - 25s;  // the last row taken changes
      table.rows["s5"] = kNow - 25s;  // a row not listed yet changes
    }
    if (page == 1)
      table.rows["s7"] = kNow + 3s;  // changes past `until`: it arrives live
  });
  // s2 is listed in both its versions, s5 once at its new time, s7 not (live delivers it).
  EXPECT_EQ(taken, (std::vector<std::string>{"s0", "s1", "s2", "s3", "s4", "s6", "s2", "s5", "z"}));
}

TEST(BackfillPagerTest, AServerIgnoringTheKeyStopsTheListingAfterTwoPagesWithoutANewRow) {
  FakeTable table;
  table.ignore_filters = true;
  for (int i = 0; i < 6; ++i)
    table.rows[fmt::format("r{}", i)] = kNow - 30s + std::chrono::seconds(i);
  Pager pager(table_target(), kNow, 2);
  const auto taken = drain(pager, table);
  EXPECT_EQ(taken, (std::vector<std::string>{"r0", "r1"}));
  EXPECT_EQ(table.requests, 3);
}

TEST(BackfillPagerTest, RowsThatChangeWhileListedNeitherLoopNorHideOthers) {
  FakeTable table;
  for (int i = 0; i < 20; ++i)
    table.rows[fmt::format("r{:02}", i)] = kNow - 50s + std::chrono::seconds(i);
  Pager pager(table_target(), kNow, 5);
  const auto taken = drain(pager, table, [&](int page) {
    if (page == 0) {
      table.rows["r04"] = kNow + 5s;  // the last row taken changes: a cursor would jump
      table.rows["r07"] = kNow + 6s;  // a row not listed yet changes: it arrives live
    }
    if (page == 1)
      table.rows["r02"] = kNow - 50s + 15500ms;  // a listed row moves ahead of the key
  });
  std::map<std::string, int> times;
  for (const auto& id : taken)
    ++times[id];
  for (int i = 0; i < 20; ++i) {
    const auto id = fmt::format("r{:02}", i);
    // r07 changed after the run began (live delivers it); r02 is listed in both its versions.
    const int expected = id == "r07" ? 0 : id == "r02" ? 2 : 1;
    EXPECT_EQ(times[id], expected) << id;
  }
  EXPECT_LT(table.requests, 15);
}

TEST(BackfillPagerTest, ADeletedRowDoesNotDisturbTheListing) {
  FakeTable table;
  for (int i = 0; i < 10; ++i)
    table.rows[fmt::format("r{:02}", i)] = kNow - 50s + std::chrono::seconds(i);
  Pager pager(table_target(), kNow, 4);
  const auto taken = drain(pager, table, [&](int page) {
    if (page == 0)
      table.rows.erase("r03");
  });
  EXPECT_EQ(taken, (std::vector<std::string>{"r00", "r01", "r02", "r03", "r04", "r05", "r06", "r07",
                                             "r08", "r09"}));
}

TEST(BackfillPagerTest, MoreRowsAtOneInstantThanAPageArePagedByKey) {
  FakeTable table;
  for (int i = 0; i < 7; ++i)
    table.rows[fmt::format("r{}", i)] = kNow - 30s;
  table.rows["z"] = kNow - 20s;
  Pager pager(table_target(), kNow, 3);
  const auto taken = drain(pager, table);
  EXPECT_EQ(taken, (std::vector<std::string>{"r0", "r1", "r2", "r3", "r4", "r5", "r6", "z"}));
}

TEST(BackfillPagerTest, BrokenAndHostileAnswersAreErrorsWithACauseAndTheSameRequestIsRetried) {
  Pager pager(table_target(), kNow, 2);
  const auto path = pager.next_path();
  const auto refused = [&](unsigned status, std::string_view body, std::string_view cause) {
    const auto out = pager.on_response(status, body, std::nullopt);
    EXPECT_NE(out.error.find(cause), std::string::npos)
        << status << " " << body << ": " << out.error;
    EXPECT_TRUE(out.rows.empty());
    EXPECT_FALSE(pager.done());
    EXPECT_EQ(pager.next_path(), path);
  };
  refused(200, "<!DOCTYPE html><html>Bad gateway</html>", "not a JSON object");
  refused(200, R"({"total":1,"rows":"x"})", "no `rows` array");
  refused(200, R"({"total":1,"documents":[]})", "no `rows` array");
  refused(
      200,
      R"({"rows":[{"$id":7,"$createdAt":"2026-12-06T11:59:00.000+00:00","$updatedAt":"2026-12-06T11:59:00.000+00:00"}]})",
      "`rows`[0] is not a row");
  refused(
      200,
      R"({"rows":[{"$id":"a","$createdAt":"2026-12-06T11:59:00.000+00:00","$updatedAt":"yesterday"}]})",
      "`rows`[0] is not a row");
  refused(200, R"({"rows":[1,2,3]})", "more than the 2 asked for");
  refused(
      200,
      R"({"rows":[{"$id":"b","$createdAt":"2026-12-06T11:59:00.000+00:00","$updatedAt":"2026-12-06T11:59:02.000+00:00"},{"$id":"a","$createdAt":"2026-12-06T11:59:00.000+00:00","$updatedAt":"2026-12-06T11:59:01.000+00:00"}]})",
      "not ordered");
  refused(200, std::string(100000, '['), "not a JSON object");
  refused(
      401,
      R"({"message":"The current user is not authorized to perform the requested action.","code":401,"type":"user_unauthorized"})",
      "HTTP 401: user_unauthorized: The current user is not authorized");
  refused(401, "", "the credentials may not list");
  refused(
      404,
      R"({"message":"Table with the requested ID could not be found.","code":404,"type":"table_not_found"})",
      "table_not_found");
  refused(500, "oops", "HTTP 500");
  const auto limited = pager.on_response(
      429, R"({"message":"Rate limit","code":429,"type":"general_rate_limit_exceeded"})",
      std::chrono::seconds(7));
  EXPECT_NE(limited.error.find("HTTP 429"), std::string::npos);
  EXPECT_EQ(limited.retry_after, std::chrono::seconds(7));
  EXPECT_EQ(pager.pages(), 0u);
  // After all that, a good answer is taken.
  const auto ok = pager.on_response(
      200,
      R"({"total":1,"rows":[{"$id":"a","$createdAt":"2026-12-06T11:59:00.000+00:00","$updatedAt":"2026-12-06T11:59:01.000+00:00"}]})",
      std::nullopt);
  EXPECT_TRUE(ok.error.empty());
  EXPECT_EQ(ok.rows.size(), 1u);
  EXPECT_TRUE(pager.done());
}

TEST(BackfillPagerTest, DiscoveryListsIdsAndDatabaseTypesByCursor) {
  EXPECT_EQ(
      discovery_path("/databases", std::nullopt),
      "/databases?queries%5B0%5D=%7B%22method%22%3A%22limit%22%2C%22values%22%3A%5B100%5D%7D");
  const auto q = queries_of(discovery_path("/storage/buckets", "b9"));
  ASSERT_EQ(q.size(), 2u);
  EXPECT_EQ(json::serialize(q[1]), R"({"method":"cursorAfter","values":["b9"]})");
  const auto page = parse_discovery(
      200, R"({"total":2,"databases":[{"$id":"shop","type":"tablesdb"},{"$id":"old"}]})",
      "databases");
  ASSERT_TRUE(page.error.empty()) << page.error;
  ASSERT_EQ(page.items.size(), 2u);
  EXPECT_EQ(page.items[0].id, "shop");
  EXPECT_EQ(page.items[0].type, "tablesdb");
  EXPECT_EQ(page.items[1].type, "legacy");
  EXPECT_EQ(parse_discovery(200, R"({"tables":[{"$id":"t"}]})", "tables").items[0].type, "");
  EXPECT_NE(parse_discovery(200, "<html>", "tables").error.find("no `tables` array"),
            std::string::npos);
  EXPECT_NE(parse_discovery(200, R"({"tables":[{"name":"t"}]})", "tables").error.find("`$id`"),
            std::string::npos);
  EXPECT_NE(
      parse_discovery(401, R"({"message":"No key","code":401,"type":"general_unauthorized_scope"})",
                      "buckets")
          .error.find("HTTP 401: general_unauthorized_scope"),
      std::string::npos);
}

// --- synthesis -------------------------------------------------------------------------------

ListedRow listed(std::string id, Millis created, Millis updated) {
  ListedRow row;
  row.row = json::object{{"$id", id},
                         {"$sequence", 7},
                         {"$tableId", "orders"},
                         {"$databaseId", "db"},
                         {"$createdAt", format_utc_millis(created, "+00:00")},
                         {"$updatedAt", format_utc_millis(updated, "+00:00")},
                         {"$permissions", json::array{}},
                         {"status", "paid"}};
  row.created_at = created;
  row.updated_at = updated;
  return row;
}

std::set<std::string> as_set(const std::vector<std::string_view>& items) {
  return {items.begin(), items.end()};
}
std::set<std::string> as_set(const std::vector<std::string>& items) {
  return {items.begin(), items.end()};
}

TEST(BackfillSynthTest, ARowCreatedInTheGapBecomesTheCreateEventRealtimeWouldHaveSent) {
  for (const auto profile : {emulator::Profile::v1_8, emulator::Profile::v1_9}) {
    Synthesizer synth(profile, "shop");
    const auto row = listed("r1", kNow - 30s, kNow - 20s);
    const auto result = synth.make(table_target(), row);
    ASSERT_TRUE(result.error.empty()) << result.error;
    ASSERT_TRUE(result.event);
    const auto& e = *result.event;
    // What the server publishes for the same change, as a user publishes it to the emulator.
    const auto live = emulator::compute_fanout(
        profile, "databases.[databaseId].tables.[tableId].rows.[rowId].create",
        {{"databaseId", "db"}, {"tableId", "orders"}, {"rowId", "r1"}}, "tablesdb", {"any"},
        emulator::Project{"shop", ""}, row.row);
    ASSERT_TRUE(std::holds_alternative<emulator::Fanout>(live));
    const auto& fanout = std::get<emulator::Fanout>(live);
    EXPECT_EQ(as_set(e.events), as_set(fanout.events));
    EXPECT_EQ(as_set(e.channels), as_set(fanout.channels));
    EXPECT_TRUE(as_set(e.channels).contains("tablesdb.db.tables.orders.rows") ||
                profile == emulator::Profile::v1_8);
    EXPECT_TRUE(as_set(e.channels).contains("databases.db.collections.orders.documents"));
    EXPECT_EQ(e.first_event(), fanout.events.front());
    EXPECT_EQ(e.timestamp_text, "2026-12-06T11:59:40.000+00:00");
    EXPECT_EQ(e.timestamp, kNow - 20s);
    EXPECT_TRUE(e.subscriptions.empty());
    const auto data = json::parse(e.data).as_object();
    EXPECT_EQ(data.at("recovered"), json::value(true));
    EXPECT_EQ(data.at("payload"), json::value(row.row));
    EXPECT_EQ(data.size(), 5u);  // events, channels, timestamp, payload, recovered
    EXPECT_EQ(json::parse(e.payload), json::value(row.row));
  }
}

TEST(BackfillSynthTest, ARecoveredEventHasTheIdOfTheLiveEventOfTheSameChange) {
  Synthesizer synth(emulator::Profile::v1_9, "shop");
  const auto row = listed("r1", kNow - 2h, kNow - 20s);
  const auto recovered = synth.make(table_target(), row);
  ASSERT_TRUE(recovered.event);
  // The live event: an upsert on another connection, another timestamp, subscription ids.
  upstream::FrameDecoder decoder{"shop"};
  const auto live = decoder.decode(
      R"({"type":"event","data":{"events":["tablesdb.db.tables.orders.rows.r1.upsert"],)"
      R"("channels":["tablesdb.db.tables.orders.rows"],"timestamp":"2026-12-06T11:59:40.123+00:00",)"
      R"("payload":)" +
          json::serialize(row.row) + R"(,"subscriptions":["s1"]}})",
      false, std::chrono::steady_clock::now(), std::chrono::system_clock::now());
  ASSERT_EQ(live.kind, upstream::FrameKind::event);
  EXPECT_EQ(recovered.event->id, live.event->id);
  EXPECT_EQ(recovered.event->id.size(), 32u);
  EXPECT_EQ(recovered.event->id, make_change_id("shop", recovered.event->first_event(), "r1",
                                                std::string(row.row.at("$updatedAt").as_string())));
}

TEST(BackfillSynthTest, ARowCreatedBeforeTheGapIsAnUpdate) {
  Synthesizer synth(emulator::Profile::v1_9, "shop");
  const auto result = synth.make(table_target(), listed("r1", kNow - 2h, kNow - 20s));
  ASSERT_TRUE(result.event);
  EXPECT_TRUE(result.event->first_event().ends_with(".update")) << result.event->first_event();
  for (const auto& event : result.event->events)
    EXPECT_FALSE(event.ends_with(".create")) << event;
}

TEST(BackfillSynthTest, ALegacyCollectionGetsTheChannelsOfALegacyDatabase) {
  Synthesizer synth(emulator::Profile::v1_9, "shop");
  auto target = table_target(Api::databases);
  target.database_type = "legacy";
  const auto row = listed("r1", kNow - 30s, kNow - 20s);
  const auto result = synth.make(target, row);
  ASSERT_TRUE(result.event);
  const auto live = emulator::compute_fanout(
      emulator::Profile::v1_9,
      "databases.[databaseId].collections.[collectionId].documents.[documentId].create",
      {{"databaseId", "db"}, {"collectionId", "orders"}, {"documentId", "r1"}}, "legacy", {"any"},
      emulator::Project{"shop", ""}, row.row);
  EXPECT_EQ(as_set(result.event->channels), as_set(std::get<emulator::Fanout>(live).channels));
  EXPECT_TRUE(as_set(result.event->channels).contains("databases.db.collections.orders.documents"));
}

TEST(BackfillSynthTest, AFileBecomesABucketEvent) {
  Synthesizer synth(emulator::Profile::v1_9, "shop");
  ListedRow file;
  file.row = json::object{{"$id", "f1"},
                          {"bucketId", "b"},
                          {"$createdAt", format_utc_millis(kNow - 30s, "+00:00")},
                          {"$updatedAt", format_utc_millis(kNow - 30s, "+00:00")},
                          {"name", "a.png"}};
  file.created_at = file.updated_at = kNow - 30s;
  const auto result = synth.make(table_target(Api::storage), file);
  ASSERT_TRUE(result.event) << result.error;
  EXPECT_EQ(result.event->first_event(), "buckets.b.files.f1.create");
  EXPECT_TRUE(as_set(result.event->channels).contains("buckets.b.files"));
  EXPECT_TRUE(as_set(result.event->channels).contains("files"));
}

TEST(BackfillSynthTest, RowsTheCheckpointRecordsAsDeliveredAreSkipped) {
  Synthesizer synth(emulator::Profile::v1_9, "shop");
  auto target = table_target();
  target.skip_at = kNow - 40s;
  target.skip_ids = {"r1"};
  EXPECT_TRUE(synth.make(target, listed("r1", kNow - 2h, kNow - 40s)).duplicate);
  // Another row at that instant, or the same row changed later, is recovered.
  EXPECT_TRUE(synth.make(target, listed("r2", kNow - 2h, kNow - 40s)).event);
  EXPECT_TRUE(synth.make(target, listed("r1", kNow - 2h, kNow - 39s)).event);
}

}  // namespace
}  // namespace sluice::recovery
