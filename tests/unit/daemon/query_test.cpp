// Tests for core/query.cpp (kept here because this binary's owner wrote it).
#include "core/query.hpp"

#include <gtest/gtest.h>

#include <string>

namespace sluice {
namespace {

using M = Query::Method;

Query q(M m, std::string attribute, std::vector<Query::Value> values) {
  Query out;
  out.method = m;
  out.attribute = std::move(attribute);
  out.values = std::move(values);
  return out;
}

Query group(M m, std::vector<Query> children) {
  Query out;
  out.method = m;
  out.queries = std::move(children);
  return out;
}

bool eval(const Query& query, const std::string& payload) {
  return matches(query, {payload.data(), payload.size(), payload.size()});
}

const std::string kPayload =
    R"({"status":"paid","total":120,"price":9.5,"round":100.0,"note":null,"paid":true,)"
    R"("code":"42","name":"bob","empty":"","tags":["a"],"none":[],"addr":{"city":"Bern"},)"
    R"("date":"2024-05-01T10:00:00.000+00:00","big":123456789012345678901234})";

TEST(QueryMethod, NamesRoundTrip) {
  const std::pair<M, std::string_view> all[] = {
      {M::equal, "equal"},
      {M::not_equal, "notEqual"},
      {M::less_than, "lessThan"},
      {M::less_than_equal, "lessThanEqual"},
      {M::greater_than, "greaterThan"},
      {M::greater_than_equal, "greaterThanEqual"},
      {M::is_null, "isNull"},
      {M::is_not_null, "isNotNull"},
      {M::and_, "and"},
      {M::or_, "or"},
      {M::select, "select"},
  };
  for (const auto& [m, name] : all) {
    EXPECT_EQ(method_name(m), name);
    M parsed = M::select;
    ASSERT_TRUE(parse_method(name, parsed)) << name;
    EXPECT_EQ(parsed, m);
  }
  M unused = M::equal;
  EXPECT_FALSE(parse_method("search", unused));
  EXPECT_FALSE(parse_method("Equal", unused));
  EXPECT_FALSE(parse_method("", unused));
}

TEST(QueryMatches, EqualIsAnyOfWithStrictTypes) {
  EXPECT_TRUE(
      eval(q(M::equal, "status", {std::string("refunded"), std::string("paid")}), kPayload));
  EXPECT_FALSE(eval(q(M::equal, "status", {std::string("refunded")}), kPayload));
  EXPECT_TRUE(eval(q(M::equal, "total", {std::int64_t{120}}), kPayload));
  // PHP `===`: int 120 is not float 120.0, and "42" is not 42.
  EXPECT_FALSE(eval(q(M::equal, "total", {120.0}), kPayload));
  EXPECT_FALSE(eval(q(M::equal, "round", {std::int64_t{100}}), kPayload));
  EXPECT_TRUE(eval(q(M::equal, "round", {100.0}), kPayload));
  EXPECT_FALSE(eval(q(M::equal, "code", {std::int64_t{42}}), kPayload));
  EXPECT_TRUE(eval(q(M::equal, "paid", {true}), kPayload));
  EXPECT_FALSE(eval(q(M::equal, "paid", {std::int64_t{1}}), kPayload));
  EXPECT_TRUE(eval(q(M::equal, "note", {nullptr}), kPayload));
  EXPECT_FALSE(eval(q(M::equal, "tags", {std::string("a")}), kPayload));
  EXPECT_TRUE(eval(q(M::equal, "addr.city", {std::string("Bern")}), kPayload));
  EXPECT_FALSE(eval(q(M::equal, "status", {}), kPayload));
}

TEST(QueryMatches, NotEqualIsNoneOf) {
  EXPECT_TRUE(eval(q(M::not_equal, "status", {std::string("open")}), kPayload));
  EXPECT_FALSE(
      eval(q(M::not_equal, "status", {std::string("open"), std::string("paid")}), kPayload));
  EXPECT_TRUE(eval(q(M::not_equal, "total", {120.0}), kPayload));
  EXPECT_TRUE(eval(q(M::not_equal, "status", {}), kPayload));
}

TEST(QueryMatches, MissingAttributeIsAlwaysFalse) {
  for (const M m : {M::equal, M::not_equal, M::less_than, M::less_than_equal, M::greater_than,
                    M::greater_than_equal, M::is_null, M::is_not_null}) {
    EXPECT_FALSE(eval(q(m, "absent", {std::int64_t{1}}), kPayload)) << method_name(m);
    EXPECT_FALSE(eval(q(m, "addr.zip", {std::int64_t{1}}), kPayload)) << method_name(m);
  }
}

TEST(QueryMatches, NullChecksNeedThePresentKey) {
  EXPECT_TRUE(eval(q(M::is_null, "note", {}), kPayload));
  EXPECT_FALSE(eval(q(M::is_not_null, "note", {}), kPayload));
  EXPECT_FALSE(eval(q(M::is_null, "empty", {}), kPayload));
  EXPECT_TRUE(eval(q(M::is_not_null, "empty", {}), kPayload));
  EXPECT_TRUE(eval(q(M::is_not_null, "none", {}), kPayload));
}

TEST(QueryMatches, NumericComparisons) {
  EXPECT_TRUE(eval(q(M::greater_than, "total", {std::int64_t{100}}), kPayload));
  EXPECT_FALSE(eval(q(M::greater_than, "total", {std::int64_t{120}}), kPayload));
  EXPECT_TRUE(eval(q(M::greater_than_equal, "total", {std::int64_t{120}}), kPayload));
  EXPECT_TRUE(eval(q(M::less_than, "price", {std::int64_t{10}}), kPayload));
  EXPECT_TRUE(eval(q(M::less_than_equal, "round", {std::int64_t{100}}), kPayload));
  EXPECT_FALSE(eval(q(M::less_than, "round", {std::int64_t{100}}), kPayload));
  // Any value suffices.
  EXPECT_TRUE(eval(q(M::less_than, "total", {std::int64_t{5}, std::int64_t{500}}), kPayload));
  // Integers beyond int64 are floats, as json_decode makes them.
  EXPECT_TRUE(eval(q(M::greater_than, "big", {std::int64_t{INT64_MAX}}), kPayload));
}

TEST(QueryMatches, StringComparisonsFollowPhp8) {
  // Non-numeric strings compare byte-wise: ISO dates order correctly.
  EXPECT_TRUE(eval(q(M::greater_than, "date", {std::string("2024-01-01")}), kPayload));
  EXPECT_FALSE(eval(q(M::greater_than, "date", {std::string("2024-06-01")}), kPayload));
  EXPECT_TRUE(eval(q(M::less_than, "name", {std::string("carol")}), kPayload));
  // Two numeric strings compare as numbers: "42" > "100" is false.
  EXPECT_FALSE(eval(q(M::greater_than, "code", {std::string("100")}), kPayload));
  EXPECT_TRUE(eval(q(M::greater_than, "code", {std::string(" 4.1e1 ")}), kPayload));
  // A numeric string against a number compares numerically.
  EXPECT_TRUE(eval(q(M::less_than, "code", {std::int64_t{100}}), kPayload));
  EXPECT_TRUE(eval(q(M::greater_than_equal, "total", {std::string("120")}), kPayload));
  // A non-numeric string against a number compares with the number's string form.
  EXPECT_TRUE(eval(q(M::greater_than, "name", {std::int64_t{5}}), kPayload));    // "bob" > "5"
  EXPECT_TRUE(eval(q(M::less_than, "total", {std::string("abc")}), kPayload));   // "120" < "abc"
  EXPECT_TRUE(eval(q(M::less_than, "price", {std::string("9.6x")}), kPayload));  // "9.5" < "9.6x"
}

TEST(QueryMatches, NullBoolAndArrayComparisons) {
  // null vs string compares "" with it; null vs number compares booleans.
  EXPECT_TRUE(eval(q(M::less_than, "note", {std::string("a")}), kPayload));
  EXPECT_TRUE(eval(q(M::less_than_equal, "note", {std::string("")}), kPayload));
  EXPECT_TRUE(eval(q(M::less_than, "note", {std::int64_t{5}}), kPayload));
  EXPECT_FALSE(eval(q(M::less_than, "note", {std::int64_t{0}}), kPayload));
  EXPECT_TRUE(eval(q(M::greater_than_equal, "paid", {std::int64_t{7}}), kPayload));
  EXPECT_TRUE(eval(q(M::greater_than, "paid", {false}), kPayload));
  // Arrays and objects are greater than scalars, and compare as booleans to null/bool.
  EXPECT_TRUE(eval(q(M::greater_than, "tags", {std::int64_t{1000}}), kPayload));
  EXPECT_TRUE(eval(q(M::greater_than, "addr", {std::string("zzz")}), kPayload));
  EXPECT_TRUE(eval(q(M::greater_than, "tags", {nullptr}), kPayload));
  EXPECT_FALSE(eval(q(M::greater_than, "none", {nullptr}), kPayload));
}

TEST(QueryMatches, AndOrAndSelect) {
  const Query paid = q(M::equal, "status", {std::string("paid")});
  const Query big = q(M::greater_than, "total", {std::int64_t{500}});
  EXPECT_FALSE(eval(group(M::and_, {paid, big}), kPayload));
  EXPECT_TRUE(eval(group(M::or_, {paid, big}), kPayload));
  EXPECT_TRUE(eval(group(M::and_, {paid, group(M::or_, {big, paid})}), kPayload));
  EXPECT_TRUE(eval(group(M::and_, {}), kPayload));
  EXPECT_FALSE(eval(group(M::or_, {}), kPayload));

  const Query all = q(M::select, "", {std::string("*")});
  EXPECT_TRUE(eval(all, kPayload));
  EXPECT_FALSE(eval(q(M::select, "", {std::string("status")}), kPayload));
  // Nested in and/or, select has no case in evaluateFilter: false.
  EXPECT_FALSE(eval(group(M::or_, {all}), kPayload));
}

TEST(QueryMatches, MatchesAllIsAndWithSelectAllShortcut) {
  const std::string& p = kPayload;
  const JsonBytes bytes{p.data(), p.size(), p.size()};
  const Query paid = q(M::equal, "status", {std::string("paid")});
  const Query big = q(M::greater_than, "total", {std::int64_t{500}});
  EXPECT_TRUE(matches_all({}, bytes));
  EXPECT_TRUE(matches_all({paid}, bytes));
  EXPECT_FALSE(matches_all({paid, big}, bytes));
  // RuntimeQuery::filter returns the payload as soon as any select("*") is in the list.
  EXPECT_TRUE(matches_all({paid, big, q(M::select, "", {std::string("*")})}, bytes));
}

TEST(QueryMatches, SharedLookupsGiveTheSameAnswersAndReadEachAttributeOnce) {
  const std::string& p = kPayload;
  const JsonBytes bytes{p.data(), p.size(), p.size()};
  const std::vector<std::vector<Query>> routes = {
      {q(M::equal, "status", {std::string("paid")})},
      {q(M::equal, "status", {std::string("refunded")})},
      {q(M::equal, "status", {std::string("paid")}),
       q(M::greater_than, "total", {std::int64_t{500}})},
      {group(M::or_,
             {q(M::is_null, "missing", {}), q(M::less_than, "total", {std::int64_t{500}})})},
  };
  PayloadLookups lookups;
  for (const auto& where : routes)
    EXPECT_EQ(matches_all(where, bytes, lookups), matches_all(where, bytes));
  EXPECT_EQ(lookups.size(), 3u);  // status, total, missing
  lookups.clear();
  EXPECT_EQ(lookups.size(), 0u);
}

TEST(QueryMatches, MalformedPayloadMatchesNothing) {
  EXPECT_FALSE(eval(q(M::is_not_null, "a", {}), R"({"a":)"));
  EXPECT_FALSE(eval(q(M::not_equal, "a", {std::int64_t{1}}), "[1,2]"));
}

}  // namespace
}  // namespace sluice
