#include "core/json.hpp"

#include <gtest/gtest.h>

#include "core/event.hpp"

namespace sluice {
namespace {

JsonValue lookup(std::string_view json, std::string_view path) {
  return json_lookup({json.data(), json.size(), json.size()}, path);
}

TEST(JsonLookup, ReadsScalarsByType) {
  const std::string doc =
      R"({"$id":"r1","total":120.5,"count":3,"paid":true,"note":null,"tags":["a","b"],)"
      R"("address":{"city":"Z\u00fcrich","zip":8001}})";
  EXPECT_EQ(lookup(doc, "$id").text, "r1");
  EXPECT_EQ(lookup(doc, "$id").type, JsonValue::Type::string);
  EXPECT_DOUBLE_EQ(lookup(doc, "total").number, 120.5);
  EXPECT_EQ(lookup(doc, "count").text, "3");
  EXPECT_TRUE(lookup(doc, "paid").boolean);
  EXPECT_EQ(lookup(doc, "note").type, JsonValue::Type::null);
  EXPECT_EQ(lookup(doc, "tags.1").text, "b");
  EXPECT_EQ(lookup(doc, "tags").type, JsonValue::Type::array);
  EXPECT_EQ(lookup(doc, "address.city").text, "Z\xc3\xbcrich");
  EXPECT_EQ(lookup(doc, "address").text, R"({"city":"Z\u00fcrich","zip":8001})");
}

TEST(JsonLookup, MissingAndMalformedAreMissing) {
  EXPECT_FALSE(lookup(R"({"a":1})", "b").present());
  EXPECT_FALSE(lookup(R"({"a":1})", "a.b").present());
  EXPECT_FALSE(lookup(R"({"a":[1]})", "a.5").present());
  EXPECT_FALSE(lookup(R"({"a":[1]})", "a.x").present());
  EXPECT_FALSE(lookup(R"({"a":)", "a").present());
  EXPECT_FALSE(lookup("", "a").present());
}

TEST(JsonLookup, ReadsInsidePaddedFrameWithoutCopy) {
  Event e;
  const std::string text = R"({"type":"event","data":{"payload":{"x":"y"}}})";
  e.frame.reserve(text.size() + kJsonPadding);
  e.frame = text;
  const auto start = e.frame.find(R"({"x")");
  const std::string_view payload(e.frame.data() + start, 9);
  const auto v = json_lookup({payload.data(), payload.size(), e.readable_after(payload)}, "x");
  EXPECT_EQ(v.text, "y");
}

TEST(JsonString, EscapesControlCharacters) {
  std::string out;
  append_json_string(out, "a\"b\\c\n\x01");
  EXPECT_EQ(out, R"("a\"b\\c\n\u0001")");
}

TEST(EventId, IsDeterministicAndDistinguishesBytes) {
  const auto a = make_event_id(R"({"a":1})");
  EXPECT_EQ(a.size(), 32u);
  EXPECT_EQ(a, make_event_id(R"({"a":1})"));
  EXPECT_NE(a, make_event_id(R"({"a":2})"));
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
}

}  // namespace
}  // namespace sluice
