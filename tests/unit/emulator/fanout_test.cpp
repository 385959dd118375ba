#include "emulator/fanout/fanout.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <set>

// The expected counts and lists come from Appwrite's own unit and end-to-end tests of event
// generation and channel fan-out, read from its repository.
namespace sluice::emulator {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAreArray;

using Params = std::map<std::string, std::string>;
const std::vector<std::string> kAny = {"any"};

const Project kProject{"P", "owners"};

Fanout fanout(Profile profile, std::string_view pattern, const Params& params,
              std::string_view type = "", const std::vector<std::string>& read = kAny,
              const boost::json::object& payload = {}) {
  auto result = compute_fanout(profile, pattern, params, type, read, kProject, payload);
  if (auto* err = std::get_if<std::string>(&result)) {
    ADD_FAILURE() << "compute_fanout(" << pattern << ") failed: " << *err;
    return {};
  }
  return std::get<Fanout>(std::move(result));
}

std::string error_of(Profile profile, std::string_view pattern, const Params& params,
                     std::string_view type = "", const boost::json::object& payload = {}) {
  auto result = compute_fanout(profile, pattern, params, type, kAny, kProject, payload);
  if (auto* err = std::get_if<std::string>(&result))
    return *err;
  ADD_FAILURE() << "compute_fanout(" << pattern << ") unexpectedly succeeded";
  return {};
}

void expect_unique(const std::vector<std::string>& v) {
  EXPECT_EQ(std::set<std::string>(v.begin(), v.end()).size(), v.size());
  for (const auto& s : v) {
    EXPECT_EQ(s.find_first_of("[]"), std::string::npos) << s;
  }
}

// The 22 strings generateEvents makes for a row change of db D, table T, row R (1.8.x).
std::vector<std::string> row_events(const std::string& head, const std::string& mid,
                                    const std::string& leaf, const std::string& action) {
  std::vector<std::string> out;
  for (const char* d : {"default", "*"})
    for (const char* t : {"sample", "*"})
      for (const char* r : {"R", "*"}) {
        const std::string base = head + "." + d + "." + mid + "." + t + "." + leaf + "." + r;
        out.push_back(base + "." + action);
        out.push_back(base);
      }
  for (const char* d : {"default", "*"})
    for (const char* t : {"sample", "*"})
      out.push_back(head + "." + d + "." + mid + "." + t);
  out.push_back(head + ".default");
  out.push_back(head + ".*");
  return out;
}

const Params kRowParams = {{"databaseId", "default"}, {"tableId", "sample"}, {"rowId", "R"}};
const Params kDocParams = {
    {"databaseId", "default"}, {"collectionId", "sample"}, {"documentId", "R"}};
constexpr std::string_view kRowUpdate =
    "databases.[databaseId].tables.[tableId].rows.[rowId].update";
constexpr std::string_view kDocUpdate =
    "databases.[databaseId].collections.[collectionId].documents.[documentId].update";

const std::vector<std::string> kRowChannels19 = {
    "documents",
    "databases.default.collections.sample.documents",
    "databases.default.collections.sample.documents.R",
    "rows",
    "databases.default.tables.sample.rows",
    "databases.default.tables.sample.rows.R",
    "tablesdb.default.tables.sample.rows",
    "tablesdb.default.tables.sample.rows.R",
    "documents.update",
    "databases.default.collections.sample.documents.update",
    "databases.default.collections.sample.documents.R.update",
    "rows.update",
    "databases.default.tables.sample.rows.update",
    "databases.default.tables.sample.rows.R.update",
    "tablesdb.default.tables.sample.rows.update",
    "tablesdb.default.tables.sample.rows.R.update",
};

const std::vector<std::string> kRowChannels18 = {
    "rows",
    "databases.default.tables.sample.rows",
    "databases.default.tables.sample.rows.R",
    "documents",
    "databases.default.collections.sample.documents",
    "databases.default.collections.sample.documents.R",
};

TEST(FanoutEvents, TablesDbRowUpdateOn19Is64EventsAnd16Channels) {
  const auto f = fanout(Profile::v1_9, kRowUpdate, kRowParams, "tablesdb", {"user:A"});
  ASSERT_EQ(f.events.size(), 64u);
  expect_unique(f.events);
  // events[0] drives the channels; each event is followed by its two mirrored forms.
  EXPECT_EQ(f.events[0], "tablesdb.default.tables.sample.rows.R.update");
  EXPECT_EQ(f.events[1], "databases.default.collections.sample.documents.R.update");
  EXPECT_EQ(f.events[2], "databases.default.tables.sample.rows.R.update");
  EXPECT_EQ(f.events[3], "tablesdb.*.tables.*.rows.*.update");

  auto expected = row_events("tablesdb", "tables", "rows", "update");
  for (const auto& e : row_events("databases", "collections", "documents", "update"))
    expected.push_back(e);
  for (const auto& e : row_events("databases", "tables", "rows", "update"))
    if (e != "databases.default" && e != "databases.*")
      expected.push_back(e);
  EXPECT_THAT(f.events, UnorderedElementsAreArray(expected));

  EXPECT_THAT(f.channels, ElementsAreArray(kRowChannels19));
  EXPECT_THAT(f.roles, ElementsAre("user:A"));
  EXPECT_FALSE(f.permissions_changed);
}

TEST(FanoutEvents, RenamedPatternFormEqualsTablesDbType) {
  const auto a = fanout(Profile::v1_9, kRowUpdate, kRowParams, "tablesdb");
  const auto b = fanout(Profile::v1_9, "tablesdb.[databaseId].tables.[tableId].rows.[rowId].update",
                        kRowParams, "");
  EXPECT_EQ(a.events, b.events);
  EXPECT_EQ(a.channels, b.channels);
}

TEST(FanoutEvents, LegacyDocumentUpdateIs42OnBothProfiles) {
  for (auto profile : {Profile::v1_8, Profile::v1_9}) {
    const auto f = fanout(profile, kDocUpdate, kDocParams, "legacy");
    ASSERT_EQ(f.events.size(), 42u);
    expect_unique(f.events);
    EXPECT_EQ(f.events[0], "databases.default.collections.sample.documents.R.update");
    EXPECT_EQ(f.events[1], "databases.default.tables.sample.rows.R.update");
    auto expected = row_events("databases", "collections", "documents", "update");
    for (const auto& e : row_events("databases", "tables", "rows", "update"))
      if (e != "databases.default" && e != "databases.*")
        expected.push_back(e);
    EXPECT_THAT(f.events, UnorderedElementsAreArray(expected));
  }
  EXPECT_EQ(fanout(Profile::v1_8, kDocUpdate, kDocParams, "legacy").channels.size(), 6u);
  // 1.9 sends the same 8+8 channels for a legacy database.
  EXPECT_THAT(fanout(Profile::v1_9, kDocUpdate, kDocParams, "legacy").channels,
              ElementsAreArray(kRowChannels19));
}

TEST(FanoutEvents, TablesRowOnLegacyDatabaseIs42On19) {
  const auto f = fanout(Profile::v1_9, kRowUpdate, kRowParams, "legacy");
  EXPECT_EQ(f.events.size(), 42u);
  EXPECT_EQ(f.events[0], "databases.default.tables.sample.rows.R.update");
  EXPECT_EQ(f.events[1], "databases.default.collections.sample.documents.R.update");
}

TEST(FanoutEvents, RowUpdateOn18Is22EventsAnd6Channels) {
  // 1.8.x has no database types; tablesdb changes nothing there.
  for (std::string_view type : {"", "legacy", "tablesdb"}) {
    const auto f = fanout(Profile::v1_8, kRowUpdate, kRowParams, type);
    ASSERT_EQ(f.events.size(), 22u) << type;
    EXPECT_EQ(f.events[0], "databases.default.tables.sample.rows.R.update");
    EXPECT_EQ(f.events[1], "databases.*.tables.*.rows.*.update");
    EXPECT_THAT(f.events,
                UnorderedElementsAreArray(row_events("databases", "tables", "rows", "update")));
    EXPECT_THAT(f.channels, ElementsAreArray(kRowChannels18));
  }
}

TEST(FanoutEvents, ParamAliasesAreFilledBothWays) {
  const auto by_table = fanout(Profile::v1_9, kRowUpdate, kRowParams, "tablesdb");
  const auto by_collection = fanout(Profile::v1_9, kRowUpdate, kDocParams, "tablesdb");
  const Params both = {{"databaseId", "default"},
                       {"collectionId", "sample"},
                       {"tableId", "sample"},
                       {"documentId", "R"},
                       {"rowId", "R"}};
  const auto with_both = fanout(Profile::v1_9, kRowUpdate, both, "tablesdb");
  EXPECT_EQ(by_table.events, by_collection.events);
  EXPECT_EQ(by_table.events, with_both.events);
  EXPECT_EQ(by_table.channels, by_collection.channels);

  const auto doc_by_row = fanout(Profile::v1_8, kDocUpdate, kRowParams, "legacy");
  EXPECT_EQ(doc_by_row.events.size(), 42u);
  EXPECT_EQ(doc_by_row.events[0], "databases.default.collections.sample.documents.R.update");
}

TEST(FanoutEvents, DocumentsDbGetsOnlyTheTypeRenameAndNoMirror) {
  const auto f = fanout(Profile::v1_9, kDocUpdate, kDocParams, "documentsdb");
  EXPECT_EQ(f.events.size(), 22u);
  EXPECT_THAT(f.events, UnorderedElementsAreArray(
                            row_events("documentsdb", "collections", "documents", "update")));
  EXPECT_THAT(f.channels,
              ElementsAre("documents", "documentsdb.default.collections.sample.documents",
                          "documentsdb.default.collections.sample.documents.R", "documents.update",
                          "documentsdb.default.collections.sample.documents.update",
                          "documentsdb.default.collections.sample.documents.R.update"));
  const auto v = fanout(Profile::v1_9, kDocUpdate, kDocParams, "vectorsdb");
  EXPECT_EQ(v.events[0], "vectorsdb.default.collections.sample.documents.R.update");
  EXPECT_EQ(v.events.size(), 22u);
}

TEST(FanoutEvents, UserNameUpdate) {
  const Params p = {{"userId", "U"}};
  const auto f = fanout(Profile::v1_9, "users.[userId].update.name", p);
  // Without a sub-resource generateEvents puts t.r.action before t.r.action.attr.
  EXPECT_THAT(f.events, ElementsAre("users.U.update", "users.*.update", "users.U.update.name",
                                    "users.*.update.name", "users.U", "users.*"));
  EXPECT_THAT(f.channels,
              ElementsAre("account", "account.U", "account.update", "account.U.update"));
  EXPECT_THAT(f.roles, ElementsAre("user:U"));

  const auto old = fanout(Profile::v1_8, "users.[userId].update.name", p);
  EXPECT_EQ(old.events.size(), 6u);
  EXPECT_THAT(old.channels, ElementsAre("account", "account.U"));
}

TEST(FanoutEvents, SessionCreateHas10EventsAndNoActionSuffix) {
  const Params p = {{"userId", "U"}, {"sessionId", "S"}};
  const auto f = fanout(Profile::v1_9, "users.[userId].sessions.[sessionId].create", p);
  EXPECT_EQ(f.events.size(), 10u);
  expect_unique(f.events);
  EXPECT_THAT(f.events, UnorderedElementsAreArray(std::vector<std::string>{
                            "users.U.sessions.S.create", "users.*.sessions.*.create",
                            "users.*.sessions.S.create", "users.U.sessions.*.create",
                            "users.U.sessions.S", "users.*.sessions.*", "users.*.sessions.S",
                            "users.U.sessions.*", "users.U", "users.*"}));
  EXPECT_THAT(f.channels, ElementsAre("account", "account.U"));
  EXPECT_THAT(f.roles, ElementsAre("user:U"));
}

TEST(FanoutEvents, FileCreate) {
  const Params p = {{"bucketId", "B"}, {"fileId", "F"}};
  const std::vector<std::string> read = {"user:A", "team:X"};
  const auto f = fanout(Profile::v1_9, "buckets.[bucketId].files.[fileId].create", p, "", read);
  EXPECT_EQ(f.events.size(), 10u);
  EXPECT_THAT(f.channels,
              ElementsAre("files", "buckets.B.files", "buckets.B.files.F", "files.create",
                          "buckets.B.files.create", "buckets.B.files.F.create"));
  EXPECT_EQ(f.roles, read);
  const auto old = fanout(Profile::v1_8, "buckets.[bucketId].files.[fileId].create", p, "", read);
  EXPECT_EQ(old.events.size(), 10u);
  EXPECT_THAT(old.channels, ElementsAre("files", "buckets.B.files", "buckets.B.files.F"));
}

TEST(FanoutEvents, TeamCreateChangesPermissions) {
  const Params p = {{"teamId", "T"}};
  const auto f = fanout(Profile::v1_9, "teams.[teamId].create", p);
  EXPECT_THAT(f.events, ElementsAre("teams.T.create", "teams.*.create", "teams.T", "teams.*"));
  EXPECT_THAT(f.channels, ElementsAre("teams", "teams.T", "teams.create", "teams.T.create"));
  EXPECT_THAT(f.roles, ElementsAre("team:T"));
  EXPECT_TRUE(f.permissions_changed);

  const auto update = fanout(Profile::v1_9, "teams.[teamId].update.name", p);
  EXPECT_FALSE(update.permissions_changed);
  EXPECT_THAT(update.channels, ElementsAre("teams", "teams.T", "teams.update", "teams.T.update"));
  EXPECT_THAT(fanout(Profile::v1_8, "teams.[teamId].create", p).channels,
              ElementsAre("teams", "teams.T"));
}

TEST(FanoutEvents, MembershipStatusUpdate) {
  const Params p = {{"teamId", "T"}, {"membershipId", "M"}};
  const auto f =
      fanout(Profile::v1_9, "teams.[teamId].memberships.[membershipId].update.status", p);
  EXPECT_EQ(f.events.size(), 16u);
  expect_unique(f.events);
  EXPECT_EQ(f.events[0], "teams.T.memberships.M.update.status");
  // The attribute pattern without the sub-resource is Appwrite's too (generateEvents).
  EXPECT_THAT(f.events, ::testing::Contains("teams.*.update.status"));
  EXPECT_THAT(f.channels, ElementsAre("memberships", "memberships.M", "memberships.update",
                                      "memberships.M.update"));
  EXPECT_THAT(f.roles, ElementsAre("team:T"));
  EXPECT_TRUE(f.permissions_changed);
  const auto del = fanout(Profile::v1_8, "teams.[teamId].memberships.[membershipId].delete", p);
  EXPECT_TRUE(del.permissions_changed);
  EXPECT_THAT(del.channels, ElementsAre("memberships", "memberships.M"));
}

TEST(FanoutEvents, ExecutionUpdate) {
  const Params p = {{"functionId", "F"}, {"executionId", "E"}};
  const std::vector<std::string> read = {"user:A"};
  constexpr std::string_view kExecution = "functions.[functionId].executions.[executionId].update";
  const boost::json::object shape19 = {{"$id", "E"}, {"functionId", "F"}};
  const auto f = fanout(Profile::v1_9, kExecution, p, "", read, shape19);
  EXPECT_EQ(f.events.size(), 10u);
  EXPECT_THAT(f.channels,
              ElementsAre("console", "projects.P", "executions", "executions.E", "functions.F",
                          "executions.update", "executions.E.update", "functions.F.update"));
  EXPECT_EQ(f.roles, read);
  const auto old = fanout(Profile::v1_8, kExecution, p, "", read, shape19);
  EXPECT_THAT(old.channels,
              ElementsAre("console", "projects.P", "executions", "executions.E", "functions.F"));
  // An execution nobody may read is not published at all.
  const auto hidden = fanout(Profile::v1_9, kExecution, p, "", {});
  EXPECT_EQ(hidden.events.size(), 10u);
  EXPECT_TRUE(hidden.channels.empty());
  EXPECT_TRUE(hidden.roles.empty());
}

// After 1.9.6 (PR #13209) the payload names the function as resourceId + resourceType and
// the channel follows it; the event strings keep the functionId param.
TEST(FanoutEvents, ExecutionShapeAfter196) {
  const Params p = {{"functionId", "F"}, {"executionId", "E"}};
  constexpr std::string_view kExecution = "functions.[functionId].executions.[executionId].update";
  const boost::json::object shape_main = {
      {"$id", "E"}, {"resourceId", "F"}, {"resourceType", "functions"}};
  const auto f = fanout(Profile::main, kExecution, p, "", kAny, shape_main);
  EXPECT_EQ(f.events[0], "functions.F.executions.E.update");
  EXPECT_THAT(f.channels,
              ElementsAre("console", "projects.P", "executions", "executions.E", "functions.F",
                          "executions.update", "executions.E.update", "functions.F.update"));
  // Each profile refuses the other's shape instead of publishing on "functions.".
  const boost::json::object shape19 = {{"$id", "E"}, {"functionId", "F"}};
  EXPECT_THAT(error_of(Profile::main, kExecution, p, "", shape19), HasSubstr("resourceId"));
  EXPECT_THAT(error_of(Profile::v1_9, kExecution, p, "", shape_main), HasSubstr("functionId"));
  EXPECT_THAT(error_of(Profile::main, kExecution, p, "",
                       {{"resourceId", "F"}, {"resourceType", "workers"}}),
              HasSubstr("resourceType"));
}

TEST(FanoutEvents, ReportsReachTheOwnerTeamOnly) {
  const auto report = fanout(Profile::v1_9, "reports.[reportId].delete", {{"reportId", "R"}});
  EXPECT_THAT(report.events,
              ElementsAre("reports.R.delete", "reports.*.delete", "reports.R", "reports.*"));
  EXPECT_THAT(report.channels, ElementsAre("reports", "reports.R"));
  EXPECT_THAT(report.roles, ElementsAre("team:owners"));
  const auto insight = fanout(Profile::main, "reports.[reportId].insights.[insightId].create",
                              {{"reportId", "R"}, {"insightId", "I"}});
  EXPECT_THAT(insight.channels,
              ElementsAre("reports", "reports.R", "reports.R.insights", "reports.R.insights.I"));
  EXPECT_THAT(insight.roles, ElementsAre("team:owners"));
  EXPECT_TRUE(
      fanout(Profile::v1_8, "reports.[reportId].delete", {{"reportId", "R"}}).channels.empty());
}

TEST(FanoutEvents, ConsoleOnlyEventsHaveNoProjectChannels) {
  const Params p = {{"databaseId", "D"}, {"collectionId", "C"}, {"attributeId", "K"}};
  const auto f =
      fanout(Profile::v1_9,
             "databases.[databaseId].collections.[collectionId].attributes.[attributeId].create", p,
             "tablesdb");
  EXPECT_EQ(f.events[0], "tablesdb.D.tables.C.columns.K.create");
  EXPECT_THAT(f.events, ::testing::Contains("databases.D.collections.C.attributes.K.create"));
  EXPECT_TRUE(f.channels.empty());
}

TEST(FanoutEvents, MalformedPatternsAreErrors) {
  const Params p = {{"userId", "U"}};
  EXPECT_THAT(error_of(Profile::v1_9, "users", p), HasSubstr("malformed"));
  EXPECT_THAT(error_of(Profile::v1_9, "", p), HasSubstr("malformed"));
  EXPECT_THAT(error_of(Profile::v1_9, "users.U.create", p), HasSubstr("placeholder"));
  EXPECT_THAT(error_of(Profile::v1_9, "users..create", p), HasSubstr("empty segment"));
  EXPECT_THAT(error_of(Profile::v1_9, "users.[userId].update.name.extra", p),
              HasSubstr("too many"));
  EXPECT_THAT(error_of(Profile::v1_9, "users.[userId.create", p), HasSubstr("placeholder"));
  EXPECT_THAT(error_of(Profile::v1_9, "users.[userId].[x]", p), HasSubstr("unexpected"));
  EXPECT_EQ(error_of(Profile::v1_9, "teams.[teamId].create", p),
            "[teamId] is missing from the params.");
  EXPECT_THAT(error_of(Profile::v1_9, "users.[userId].create", {{"userId", ""}}),
              HasSubstr("empty"));
  EXPECT_THAT(error_of(Profile::v1_9, kRowUpdate, kRowParams, "bogus"),
              HasSubstr("unknown database_type"));
  EXPECT_THAT(error_of(Profile::v1_8, kDocUpdate, kDocParams, "documentsdb"), HasSubstr("1.8"));
  EXPECT_THAT(error_of(Profile::v1_8, "tablesdb.[databaseId].tables.[tableId].rows.[rowId].update",
                       kRowParams),
              HasSubstr("1.8"));
  EXPECT_THAT(error_of(Profile::v1_9, "tablesdb.[databaseId].tables.[tableId].rows.[rowId].update",
                       kRowParams, "documentsdb"),
              HasSubstr("contradicts"));
}

// --- who receives what (§7) ---

User make_user(std::string id, std::vector<std::string> teams = {}) {
  User u;
  u.id = std::move(id);
  u.teams = std::move(teams);
  return u;
}

TEST(FanoutRoles, ConnectionRoles) {
  EXPECT_THAT(connection_roles(nullptr), ElementsAre("guests"));
  User a = make_user("A", {"T1", "T2"});
  a.labels = {"vip"};
  EXPECT_THAT(connection_roles(&a),
              ElementsAre("user:A", "users", "user:A/verified", "users/verified", "team:T1",
                          "team:T2", "label:vip"));
  User b = make_user("B");
  b.email_verified = false;
  EXPECT_THAT(connection_roles(&b),
              ElementsAre("user:B", "users", "user:B/unverified", "users/unverified"));
}

struct Audience {
  User a = make_user("A", {"T"});
  User b = make_user("B");
  std::vector<std::string> ra = connection_roles(&a);
  std::vector<std::string> rb = connection_roles(&b);
  std::vector<std::string> guest = connection_roles(nullptr);
};

TEST(FanoutRoles, PrivateRowReachesOnlyItsReader) {
  Audience x;
  const auto f = fanout(Profile::v1_9, kRowUpdate, kRowParams, "tablesdb", {"user:A"});
  EXPECT_TRUE(may_receive(x.ra, f.roles));
  EXPECT_FALSE(may_receive(x.rb, f.roles));
  EXPECT_FALSE(may_receive(x.guest, f.roles));
}

TEST(FanoutRoles, TeamEventsReachOnlyMembers) {
  Audience x;
  const auto f = fanout(Profile::v1_9, "teams.[teamId].update.name", {{"teamId", "T"}});
  EXPECT_TRUE(may_receive(x.ra, f.roles));
  EXPECT_FALSE(may_receive(x.rb, f.roles));
  EXPECT_FALSE(may_receive(x.guest, f.roles));
  const auto m = fanout(Profile::v1_8, "teams.[teamId].memberships.[membershipId].create",
                        {{"teamId", "T"}, {"membershipId", "M"}});
  EXPECT_TRUE(may_receive(x.ra, m.roles));
  EXPECT_FALSE(may_receive(x.rb, m.roles));
}

TEST(FanoutRoles, GuestsUsersAndAny) {
  Audience x;
  EXPECT_FALSE(may_receive(x.ra, {"guests"}));
  EXPECT_TRUE(may_receive(x.guest, {"guests"}));
  EXPECT_TRUE(may_receive(x.ra, {"users"}));
  EXPECT_TRUE(may_receive(x.rb, {"users"}));
  EXPECT_FALSE(may_receive(x.guest, {"users"}));
  EXPECT_TRUE(may_receive(x.guest, {"any"}));
  EXPECT_TRUE(may_receive(x.ra, {"any"}));
  EXPECT_TRUE(may_receive(x.ra, {"users/verified"}));
  EXPECT_FALSE(may_receive(x.ra, {}));
  EXPECT_FALSE(may_receive({}, {"any"}));
}

TEST(FanoutRoles, AccountEventsReachOnlyThatUser) {
  Audience x;
  // The publisher's read list does not matter for account events.
  const auto f =
      fanout(Profile::v1_9, "users.[userId].update.name", {{"userId", "A"}}, "", {"any"});
  EXPECT_TRUE(may_receive(x.ra, f.roles));
  EXPECT_FALSE(may_receive(x.rb, f.roles));
  EXPECT_FALSE(may_receive(x.guest, f.roles));
}

// --- account channel rewriting (§6.4) ---

TEST(FanoutChannels, ConvertChannels18DropsEveryAccountSubchannel) {
  const User u = make_user("U1");
  const std::vector<std::string> in = {"documents",      "account",   "account.U1", "account.other",
                                       "account.update", "documents", "files"};
  EXPECT_THAT(convert_channels(Profile::v1_8, in, &u),
              ElementsAre("documents", "account", "files", "account.U1"));
  EXPECT_THAT(convert_channels(Profile::v1_8, in, nullptr),
              ElementsAre("documents", "account", "files"));
  EXPECT_THAT(convert_channels(Profile::v1_8, {"account.U1"}, &u), ::testing::IsEmpty());
}

TEST(FanoutChannels, ConvertChannels19ScopesActions) {
  const User u = make_user("U1");
  const std::vector<std::string> in = {"files",      "account.create", "account.other", "account",
                                       "account.U1", "account.bogus",  "account.update"};
  EXPECT_THAT(
      convert_channels(Profile::v1_9, in, &u),
      ElementsAre("files", "account", "account.U1.create", "account.U1", "account.U1.update"));
  EXPECT_THAT(convert_channels(Profile::v1_9, in, nullptr),
              ElementsAre("files", "account.create", "account", "account.update"));
  EXPECT_THAT(convert_channels(Profile::v1_9, {"account.U1"}, &u), ::testing::IsEmpty());
}

TEST(FanoutChannels, ConvertedAccountChannelsMatchPublishedOnes) {
  const User u = make_user("U1");
  const auto f = fanout(Profile::v1_9, "users.[userId].update.name", {{"userId", "U1"}});
  for (const auto& ch : convert_channels(Profile::v1_9, {"account", "account.update"}, &u))
    EXPECT_THAT(f.channels, ::testing::Contains(ch));
}

// --- query parsing ---

Query parse_ok(std::string_view json) {
  std::string error;
  auto q = parse_query_json(json, error);
  EXPECT_TRUE(q.has_value()) << json << ": " << error;
  EXPECT_TRUE(error.empty());
  return q.value_or(Query{});
}

std::string parse_error(std::string_view json) {
  std::string error;
  auto q = parse_query_json(json, error);
  EXPECT_FALSE(q.has_value()) << json;
  EXPECT_FALSE(error.empty());
  return error;
}

TEST(FanoutQuery, ParsesComparisons) {
  auto q = parse_ok(R"({"method":"equal","attribute":"status","values":["paid","open"]})");
  EXPECT_EQ(q.method, Query::Method::equal);
  EXPECT_EQ(q.attribute, "status");
  ASSERT_EQ(q.values.size(), 2u);
  EXPECT_EQ(std::get<std::string>(q.values[0]), "paid");
  EXPECT_EQ(std::get<std::string>(q.values[1]), "open");

  q = parse_ok(R"({"method":"greaterThan","attribute":"n","values":[5, 2.5, true, null]})");
  EXPECT_EQ(q.method, Query::Method::greater_than);
  ASSERT_EQ(q.values.size(), 4u);
  EXPECT_EQ(std::get<std::int64_t>(q.values[0]), 5);
  EXPECT_DOUBLE_EQ(std::get<double>(q.values[1]), 2.5);
  EXPECT_EQ(std::get<bool>(q.values[2]), true);
  EXPECT_TRUE(std::holds_alternative<std::nullptr_t>(q.values[3]));

  EXPECT_EQ(parse_ok(R"({"method":"notEqual","attribute":"a","values":[1]})").method,
            Query::Method::not_equal);
  EXPECT_EQ(parse_ok(R"({"method":"lessThan","attribute":"a","values":[1]})").method,
            Query::Method::less_than);
  EXPECT_EQ(parse_ok(R"({"method":"lessThanEqual","attribute":"a","values":[1]})").method,
            Query::Method::less_than_equal);
  EXPECT_EQ(parse_ok(R"({"method":"greaterThanEqual","attribute":"a","values":[1]})").method,
            Query::Method::greater_than_equal);
  q = parse_ok(R"({"method":"isNull","attribute":"a"})");
  EXPECT_EQ(q.method, Query::Method::is_null);
  EXPECT_TRUE(q.values.empty());
  EXPECT_EQ(parse_ok(R"({"method":"isNotNull","attribute":"a","values":[]})").method,
            Query::Method::is_not_null);
}

TEST(FanoutQuery, ParsesNestedQueriesAsObjectsOrStrings) {
  // Query::toArray writes children as objects; Query::parseQuery also takes JSON strings.
  auto q = parse_ok(
      R"({"method":"or","values":[{"method":"equal","attribute":"a","values":[1]},)"
      R"("{\"method\":\"and\",\"values\":[{\"method\":\"isNull\",\"attribute\":\"b\"}]}"]})");
  EXPECT_EQ(q.method, Query::Method::or_);
  EXPECT_TRUE(q.values.empty());
  ASSERT_EQ(q.queries.size(), 2u);
  EXPECT_EQ(q.queries[0].method, Query::Method::equal);
  EXPECT_EQ(q.queries[0].attribute, "a");
  EXPECT_EQ(q.queries[1].method, Query::Method::and_);
  ASSERT_EQ(q.queries[1].queries.size(), 1u);
  EXPECT_EQ(q.queries[1].queries[0].method, Query::Method::is_null);
  EXPECT_EQ(q.queries[1].queries[0].attribute, "b");
}

TEST(FanoutQuery, SelectOnlyAll) {
  const auto q = parse_ok(R"({"method":"select","values":["*"]})");
  EXPECT_EQ(q.method, Query::Method::select);
  EXPECT_THAT(parse_error(R"({"method":"select","values":["name"]})"),
              HasSubstr(R"(Only select("*"))"));
  EXPECT_THAT(parse_error(R"({"method":"select","values":[]})"), HasSubstr(R"(Only select("*"))"));
  EXPECT_THAT(parse_error(R"({"method":"select","values":["*","a"]})"),
              HasSubstr(R"(Only select("*"))"));
}

// `levels` and() queries around an isNull(), or around `inner` given as a JSON string.
std::string nest(const std::string& inner, int levels) {
  std::string out;
  for (int i = 0; i < levels; ++i)
    out += R"({"method":"and","values":[)";
  out += inner.empty() ? std::string(R"({"method":"isNull","attribute":"a"})")
                       : boost::json::serialize(boost::json::value(inner));
  for (int i = 0; i < levels; ++i)
    out += "]}";
  return out;
}

TEST(FanoutQuery, RejectsInvalidQueries) {
  EXPECT_EQ(parse_error(R"({"method":"foo","attribute":"a","values":[1]})"),
            "Invalid query method: foo");
  EXPECT_EQ(parse_error(R"({"attribute":"a"})"), "Invalid query method: ");
  EXPECT_EQ(parse_error(R"([1,2])"), "Invalid query method: ");
  EXPECT_THAT(parse_error(R"({"method":"search","attribute":"a","values":["x"]})"),
              HasSubstr("Query method 'search' is not supported in Realtime queries"));
  EXPECT_THAT(parse_error(R"({"method":"limit","values":[1]})"), HasSubstr("'limit'"));
  EXPECT_THAT(parse_error(R"({"method":"elemMatch","attribute":"a","values":[]})"),
              HasSubstr("'elemMatch'"));
  EXPECT_THAT(parse_error("{not json"), HasSubstr("Invalid query: "));
  EXPECT_EQ(parse_error(R"("equal")"), "Invalid query. Must be an array, got string");
  EXPECT_EQ(parse_error("42"), "Invalid query. Must be an array, got integer");
  EXPECT_EQ(parse_error(R"({"method":1})"), "Invalid query method. Must be a string, got integer");
  EXPECT_EQ(parse_error(R"({"method":"equal","attribute":["a"],"values":[1]})"),
            "Invalid query attribute. Must be a string, got array");
  EXPECT_EQ(parse_error(R"({"method":"equal","attribute":"a","values":"x"})"),
            "Invalid query values. Must be an array, got string");
  EXPECT_THAT(parse_error(R"({"method":"equal","attribute":"a","values":[[1]]})"),
              HasSubstr("arrays are not supported"));
  EXPECT_EQ(parse_error(R"({"method":"and","values":[3]})"),
            "Invalid nested query. Must be an array or string, got integer");
  // A disallowed method is found at any depth (convertQueries walks the tree).
  EXPECT_THAT(
      parse_error(
          R"({"method":"and","values":[{"method":"contains","attribute":"a","values":[1]}]})"),
      HasSubstr("'contains'"));
  EXPECT_THAT(parse_error(R"({"method":"or","values":["{broken"]})"), HasSubstr("Invalid query: "));
  // Too deep inside one JSON text: Boost.JSON's own depth limit.
  EXPECT_THAT(parse_error(nest("", 40)), HasSubstr("Invalid query: "));
  // Too deep through queries nested as strings, each text shallow enough to parse.
  EXPECT_THAT(parse_error(nest(nest(nest("", 12), 12), 12)), HasSubstr("nested too deeply"));
  parse_ok(nest(nest("", 12), 12));
}

// channel_family answers from compute_fanout's own channels, ids standing for any segment.
TEST(ChannelFamily, ChannelsTheFanoutEmits) {
  for (const char* channel :
       {"rows", "documents", "tablesdb.D.tables.T.rows", "tablesdb.D.tables.T.rows.R",
        "databases.D.collections.C.documents.X", "databases.D.tables.T.rows",
        "documentsdb.D.collections.C.documents", "vectorsdb.D.collections.C.documents.X"}) {
    EXPECT_EQ(channel_family(Profile::v1_9, channel), "documents") << channel;
  }
  EXPECT_EQ(channel_family(Profile::v1_9, "buckets.B.files"), "files");
  EXPECT_EQ(channel_family(Profile::v1_9, "buckets.B.files.F"), "files");
  EXPECT_EQ(channel_family(Profile::v1_9, "functions.F"), "executions");
  EXPECT_EQ(channel_family(Profile::v1_9, "executions"), "executions");
  EXPECT_EQ(channel_family(Profile::v1_9, "executions.E"), "executions");
  EXPECT_EQ(channel_family(Profile::v1_9, "account"), "account");
  EXPECT_EQ(channel_family(Profile::v1_9, "account.U"), "account");
  EXPECT_EQ(channel_family(Profile::v1_9, "teams.T"), "teams");
  EXPECT_EQ(channel_family(Profile::v1_9, "memberships.M"), "memberships");
  EXPECT_EQ(channel_family(Profile::v1_9, "reports.R.insights.I"), "reports");
  EXPECT_EQ(channel_family(Profile::v1_9, "presences.P"), "presences");
}

TEST(ChannelFamily, ActionSuffixesOnlyWhereAppwriteAddsThem) {
  for (const char* channel :
       {"rows.create", "documents.delete", "files.update", "tablesdb.D.tables.T.rows.R.upsert",
        "functions.F.create", "account.U.update", "teams.T.delete"}) {
    EXPECT_NE(channel_family(Profile::v1_9, channel), "") << channel;
    EXPECT_EQ(channel_family(Profile::v1_8, channel), "") << channel << " on 1.8";
  }
  // On 1.8 this is buckets.B.files.<fileId>, for a file whose id is "delete".
  EXPECT_EQ(channel_family(Profile::v1_9, "buckets.B.files.delete"), "files");
  EXPECT_EQ(channel_family(Profile::v1_8, "buckets.B.files.delete"), "files");
  // Neither reports nor insights is a resource leaf.
  EXPECT_EQ(channel_family(Profile::v1_9, "reports.R.create"), "");
}

TEST(ChannelFamily, ChannelsNoEventGives) {
  for (const char* channel : {"rows.X", "documents.X", "files.X", "documents.x.create", "functions",
                              "tablesdb", "tablesdb.D.tables.T.row", "databases.D.collections.C",
                              "buckets.B", "rows.*", "tablesdb.D.tables.*.rows", "buckets..files",
                              "account.U.sessions", "teams.T.memberships"}) {
    EXPECT_EQ(channel_family(Profile::v1_9, channel), "") << channel;
    EXPECT_EQ(channel_family(Profile::main, channel), "") << channel << " on main";
  }
  // 1.8 has no tablesdb channels and no presences.
  EXPECT_EQ(channel_family(Profile::v1_8, "tablesdb.D.tables.T.rows"), "");
  EXPECT_EQ(channel_family(Profile::v1_8, "presences.P"), "");
  EXPECT_EQ(channel_family(Profile::v1_8, "databases.D.tables.T.rows"), "documents");
}

}  // namespace
}  // namespace sluice::emulator
