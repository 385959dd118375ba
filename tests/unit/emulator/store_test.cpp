#include "emulator/store.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "emulator/rest_list.hpp"

// The emulator's store and Appwrite's list rules over it, without sockets.
namespace sluice::emulator {
namespace {

namespace json = boost::json;

TEST(ParseInstant, ComparesInstantsWhateverTheOffset) {
  const auto utc = parse_instant("2026-08-21T12:00:00.123+00:00");
  ASSERT_TRUE(utc);
  EXPECT_EQ(parse_instant("2026-08-21T12:00:00.123Z"), utc);
  EXPECT_EQ(parse_instant("2026-08-21T14:00:00.123+02:00"), utc);
  EXPECT_EQ(parse_instant("2026-08-21T11:30:00.123-00:30"), utc);
  EXPECT_EQ(*parse_instant("2026-08-21T12:00:00+00:00") + 123000, *utc);
  EXPECT_EQ(*parse_instant("2026-08-21"), *utc - ((12 * 3600) * 1000000LL + 123000));
  EXPECT_FALSE(parse_instant("2026-13-01T00:00:00Z"));
  EXPECT_FALSE(parse_instant("yesterday"));
  EXPECT_FALSE(parse_instant("2026-08-21T12:00:00+00:00 "));
}

TEST(StoreChangeOf, NamesTheRowOrFileOfEveryEventForm) {
  const json::object payload{{"$id", "p1"}};
  const auto row = store_change_of(
      "databases.[databaseId].collections.[collectionId].documents."
      "[documentId].update",
      {{"databaseId", "d"}, {"tableId", "t"}, {"rowId", "r"}}, payload);
  ASSERT_TRUE(row);
  EXPECT_EQ(row->kind, StoreChange::Kind::row);
  EXPECT_EQ(row->parent, "d");
  EXPECT_EQ(row->container, "t");
  EXPECT_EQ(row->id, "r");
  EXPECT_FALSE(row->remove);
  const auto from_payload =
      store_change_of("tablesdb.d.tables.t.rows.*.delete", {}, payload);  // id from `$id`
  ASSERT_TRUE(from_payload);
  EXPECT_EQ(from_payload->id, "p1");
  EXPECT_TRUE(from_payload->remove);
  const auto file = store_change_of("buckets.[bucketId].files.[fileId].create",
                                    {{"bucketId", "b"}, {"fileId", "f"}}, payload);
  ASSERT_TRUE(file);
  EXPECT_EQ(file->kind, StoreChange::Kind::file);
  EXPECT_EQ(file->parent, "b");
  EXPECT_EQ(file->id, "f");
  EXPECT_FALSE(store_change_of("users.[userId].update", {{"userId", "u"}}, payload));
  EXPECT_FALSE(store_change_of("databases.d.tables.t.rows.r", {}, payload));  // no action
  EXPECT_FALSE(store_change_of("databases.d.tables.*.rows.r.update", {}, payload));
}

class ListTest : public ::testing::Test {
 protected:
  void put(const std::string& id, const std::string& updated_at,
           std::vector<std::string> read = {"any"}) {
    const json::object payload{{"$id", id}, {"$updatedAt", updated_at}, {"n", 1}};
    store_.apply("test", StoreChange{StoreChange::Kind::row, "d", "t", id, false}, "tablesdb",
                 payload, read, "2026-01-01T00:00:00.000+00:00");
  }
  json::value list(std::vector<std::pair<std::string, std::string>> params, unsigned want = 200,
                   ListCaller caller = ListCaller{true, {}, ""}) {
    const auto answer =
        serve_list(store_.project("test"), "/tablesdb/d/tables/t/rows", params, caller, "1.9.6");
    EXPECT_TRUE(answer);
    EXPECT_EQ(answer->status, want) << answer->body;
    return json::parse(answer->body);
  }
  static std::vector<std::string> ids(const json::value& body) {
    std::vector<std::string> out;
    for (const auto& row : body.at("rows").as_array())
      out.emplace_back(row.at("$id").as_string());
    return out;
  }
  Store store_;
};

TEST_F(ListTest, OrdersByInstantsThenTheLastTieBreakAndPagesWithCursors) {
  put("b", "2026-01-01T01:00:01.000+01:00");
  put("a", "2026-01-01T00:00:01.000+00:00");
  put("c", "2026-01-01T00:00:00.500Z");
  const std::string by_time = R"({"method":"orderAsc","attribute":"$updatedAt"})";
  const std::string by_id = R"({"method":"orderAsc","attribute":"$id"})";
  const std::string two = R"({"method":"limit","values":[2]})";
  EXPECT_EQ(ids(list({{"queries[0]", by_time}, {"queries[1]", by_id}})),
            (std::vector<std::string>{"c", "a", "b"}));
  EXPECT_EQ(ids(list({{"queries[0]", by_time},
                      {"queries[1]", by_id},
                      {"queries[2]", two},
                      {"queries[3]", R"({"method":"cursorAfter","values":["c"]})"}})),
            (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(ids(list({{"queries[0]", by_time},
                      {"queries[1]", by_id},
                      {"queries[2]", R"({"method":"cursorBefore","values":["b"]})"}})),
            (std::vector<std::string>{"c", "a"}));
  const auto later = list({{"queries[0]", R"({"method":"greaterThan","attribute":"$updatedAt",)"
                                          R"("values":["2026-01-01T00:00:00.600+00:00"]})"}});
  EXPECT_EQ(later.at("total").as_int64(), 2);
}

TEST_F(ListTest, ReadRolesDecideWhatACallerSees) {
  put("open", "2026-01-01T00:00:01.000+00:00");
  put("alices", "2026-01-01T00:00:02.000+00:00", {"user:alice"});
  const ListCaller guest{false, {"guests"}, "User (role: guests)"};
  const ListCaller alice{false, {"user:alice", "users"}, "alice@example.com (role: users)"};
  EXPECT_EQ(ids(list({}, 200, guest)), std::vector<std::string>{"open"});
  EXPECT_EQ(ids(list({}, 200, alice)).size(), 2u);
  // A cursor that names a row the caller cannot read is still found, as in Appwrite.
  EXPECT_EQ(
      ids(list({{"queries[]", R"({"method":"cursorAfter","values":["alices"]})"}}, 200, guest)),
      std::vector<std::string>{});
}

TEST_F(ListTest, AFileListingFindsItsCursorAmongFilesTheCallerCannotRead) {
  const auto put_file = [&](const std::string& id, std::vector<std::string> read) {
    const json::object payload{{"$id", id}, {"$updatedAt", "2026-01-01T00:00:01.000+00:00"}};
    store_.apply("test", StoreChange{StoreChange::Kind::file, "b", "", id, false}, "", payload,
                 read, "2026-01-01T00:00:00.000+00:00");
  };
  put_file("open", {"any"});
  put_file("private", {"user:alice"});
  const ListCaller guest{false, {"guests"}, "User (role: guests)"};
  const auto files = [&](const std::string& query, unsigned want) {
    const auto answer = serve_list(store_.project("test"), "/storage/buckets/b/files",
                                   {{"queries[]", query}}, guest, "1.9.6");
    EXPECT_TRUE(answer);
    EXPECT_EQ(answer->status, want) << answer->body;
    return json::parse(answer->body);
  };
  const auto all = files(R"({"method":"limit","values":[25]})", 200);
  ASSERT_EQ(all.at("files").as_array().size(), 1u);
  EXPECT_EQ(all.at("files").at(0).at("$id").as_string(), "open");
  EXPECT_EQ(all.at("files").at(0).at("bucketId").as_string(), "b");
  const auto after = files(R"({"method":"cursorAfter","values":["private"]})", 200);
  EXPECT_EQ(after.at("total").as_int64(), 1);
  const auto missing = files(R"({"method":"cursorAfter","values":["zz"]})", 400);
  EXPECT_EQ(missing.at("message").as_string(), "File 'zz' for the 'cursor' value not found.");
}

TEST_F(ListTest, InvalidQueriesGetAppwritesTypesAndMessages) {
  put("a", "2026-01-01T00:00:01.000+00:00");
  const auto error = [&](const std::string& query) {
    const auto body = list({{"queries[]", query}}, 400);
    return std::string(body.at("type").as_string()) + ": " +
           std::string(body.at("message").as_string());
  };
  EXPECT_EQ(error(R"({"method":"nope"})"), "general_query_invalid: Invalid query method: nope");
  EXPECT_EQ(error(R"({"method":"equal","attribute":"x","values":[1]})"),
            "general_query_invalid: Invalid query: Attribute not found in schema: x");
  EXPECT_EQ(error(R"({"method":"limit","values":[0]})"),
            "general_query_invalid: Invalid query: Invalid limit: Value must be a valid range "
            "between 1 and 9,223,372,036,854,775,807");
  EXPECT_EQ(error(R"({"method":"greaterThan","attribute":"n","values":[1,2]})"),
            "general_query_invalid: Invalid query: GreaterThan queries require exactly one value.");
  EXPECT_EQ(error(R"({"method":"cursorAfter","values":["zz"]})"),
            "general_cursor_not_found: Row 'zz' for the 'cursor' value not found.");
  EXPECT_EQ(error("{"), "general_query_invalid: Invalid query: Syntax error");
}

}  // namespace
}  // namespace sluice::emulator
