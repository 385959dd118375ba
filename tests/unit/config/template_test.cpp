#include "core/template.hpp"

#include <gtest/gtest.h>

namespace sluice {
namespace {

// An event whose payload view points into a padded frame, as the decoder builds it.
Event make_event(std::string payload, std::chrono::sys_time<std::chrono::milliseconds> time = {}) {
  Event e;
  e.frame.reserve(payload.size() + kJsonPadding);
  e.frame = std::move(payload);
  e.payload = std::string_view(e.frame);
  const std::string event_name = "databases.db1.collections.orders.documents.d1.create";
  e.strings.reserve(256);
  e.strings = event_name + "databases.db1.collections.orders.documents";
  e.events.push_back(std::string_view(e.strings).substr(0, event_name.size()));
  e.channels.push_back(std::string_view(e.strings).substr(event_name.size()));
  e.timestamp_text = "2024-05-06 07:08:09.123";
  e.timestamp = time;
  e.id = "0123456789abcdef0123456789abcdef";
  return e;
}

Template parse_ok(std::string_view source, bool strftime = false) {
  Template t;
  Template::Error error;
  EXPECT_TRUE(Template::parse(source, strftime, t, error)) << source << ": " << error.message;
  return t;
}

Template::Error parse_error(std::string_view source, bool strftime = false) {
  Template t;
  Template::Error error;
  EXPECT_FALSE(Template::parse(source, strftime, t, error)) << source;
  return error;
}

TEST(Template, RendersEveryVariable) {
  const auto event = make_event(
      R"({"$id":"d1","$databaseId":"db1","n":{"x":"deep"},"total":12.50,"ok":true,"nil":null})");
  TemplateContext context{"paid-orders", "chan", "shop"};
  EXPECT_EQ(parse_ok("{event}|{channel}|{route}|{project}").render(event, context),
            "databases.db1.collections.orders.documents.d1.create|chan|paid-orders|shop");
  EXPECT_EQ(parse_ok("{timestamp}/{event_id}").render(event, context),
            "2024-05-06 07:08:09.123/0123456789abcdef0123456789abcdef");
  EXPECT_EQ(parse_ok("appwrite.{payload.$databaseId}.{payload.$id}").render(event, context),
            "appwrite.db1.d1");
  EXPECT_EQ(parse_ok("{payload.n.x}:{payload.total}:{payload.ok}:{payload.missing}:{payload.nil}")
                .render(event, context),
            "deep:12.50:true::");
}

TEST(Template, StringsRenderUnescaped) {
  const auto event = make_event(R"({"s":"a\"b\\c\u00e9"})");
  EXPECT_EQ(parse_ok("{payload.s}").render(event, {}), "a\"b\\c\xc3\xa9");
}

TEST(Template, DoubledBracesAreLiteral) {
  const auto event = make_event(R"({"a":"x"})");
  auto t = parse_ok("{{literal}} {payload.a} }}");
  EXPECT_EQ(t.render(event, {}), "{literal} x }");
  EXPECT_TRUE(parse_ok("{{}}").constant());
  EXPECT_FALSE(t.constant());
  EXPECT_EQ(t.source(), "{{literal}} {payload.a} }}");
}

TEST(Template, ParseErrorsCarryOffsets) {
  auto e = parse_error("ab{nope}");
  EXPECT_EQ(e.offset, 2u);
  EXPECT_NE(e.message.find("unknown variable {nope}"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("{payload.FIELD}"), std::string::npos) << e.message;

  e = parse_error("abc{event");
  EXPECT_EQ(e.offset, 3u);
  EXPECT_NE(e.message.find("unclosed"), std::string::npos);

  e = parse_error("a}b");
  EXPECT_EQ(e.offset, 1u);
  EXPECT_NE(e.message.find("unmatched"), std::string::npos);

  e = parse_error("x{a{event}}");
  EXPECT_EQ(e.offset, 1u);

  EXPECT_EQ(parse_error("x{}").offset, 1u);
  EXPECT_EQ(parse_error("{payload}").offset, 0u);
  EXPECT_EQ(parse_error("{payload.}").offset, 0u);
  EXPECT_EQ(parse_error("{payload.a..b}").offset, 0u);
  EXPECT_NE(parse_error("{payload.a b}").message.find("invalid character"), std::string::npos);
}

TEST(Template, StrftimeOnlyInFilePaths) {
  auto e = parse_error("topic-%Y");
  EXPECT_EQ(e.offset, 6u);
  EXPECT_NE(e.message.find("only in file paths"), std::string::npos);
  // Outside paths a '%' that is not a directive is an ordinary character.
  const auto event = make_event("{}");
  EXPECT_EQ(parse_ok("100%").render(event, {}), "100%");
  EXPECT_EQ(parse_ok("a%zb").render(event, {}), "a%zb");

  EXPECT_EQ(parse_error("/x/%S", true).offset, 3u);
  EXPECT_NE(parse_error("/x/%", true).message.find("lone"), std::string::npos);
}

TEST(Template, StrftimeRendersTheEventTimeInUtc) {
  using namespace std::chrono;
  const auto time = sys_days{year{2024} / 3 / 7} + hours{4} + minutes{5} + seconds{59};
  const auto event = make_event("{}", time_point_cast<milliseconds>(time));
  EXPECT_EQ(parse_ok("/a/%Y-%m-%d/%H%M/100%%.log", true).render(event, {}),
            "/a/2024-03-07/0405/100%.log");
}

TEST(Template, FilePathsNeutralisePayloadSlashesAndDots) {
  const auto event = make_event(R"({"a":"../../etc","b":"..","c":".","d":"x/y","e":"a\u0000b"})");
  EXPECT_EQ(parse_ok("/data/{payload.a}/f", true).render(event, {}), "/data/.._.._etc/f");
  EXPECT_EQ(parse_ok("/data/{payload.b}/f", true).render(event, {}), "/data/__/f");
  EXPECT_EQ(parse_ok("/data/.{payload.c}/f", true).render(event, {}), "/data/._/f");
  EXPECT_EQ(parse_ok("/data/{payload.c}{payload.c}/f", true).render(event, {}), "/data/__/f");
  EXPECT_EQ(parse_ok("/data/{payload.d}.log", true).render(event, {}), "/data/x_y.log");
  EXPECT_EQ(parse_ok("/data/{payload.e}", true).render(event, {}), std::string("/data/a_b"));
  // Dots the operator wrote stay; payload dots inside a longer name are harmless.
  EXPECT_EQ(parse_ok("/data/../{payload.a}.x", true).render(event, {}), "/data/../.._.._etc.x");
  // Outside file paths nothing is rewritten (a Kafka key keeps its bytes).
  EXPECT_EQ(parse_ok("{payload.d}").render(event, {}), "x/y");
}

// An execution names its function `functionId` up to Appwrite 1.9.6 and `resourceId` after it:
// one template serves both.
TEST(Template, PayloadAlternativesTakeTheFirstPresent) {
  const auto t = parse_ok("fn.{payload.resourceId|payload.functionId}");
  EXPECT_EQ(t.render(make_event(R"({"$id":"e1","functionId":"f1"})"), {}), "fn.f1");
  EXPECT_EQ(
      t.render(make_event(R"({"$id":"e1","resourceId":"f1","resourceType":"functions"})"), {}),
      "fn.f1");
  EXPECT_EQ(t.render(make_event(R"({"resourceId":null,"functionId":"f2"})"), {}), "fn.f2");
  EXPECT_EQ(t.render(make_event(R"({"$id":"e1"})"), {}), "fn.");
  EXPECT_EQ(parse_error("{payload.a|}").offset, 0u);
  EXPECT_EQ(parse_error("x{payload.a|route}").offset, 1u);
  EXPECT_NE(parse_error("{payload.a|payload.b c}").message.find("invalid character"),
            std::string::npos);
}

TEST(Template, MissingPayloadRendersEmpty) {
  Event empty;
  EXPECT_EQ(parse_ok("k-{payload.x}").render(empty, {}), "k-");
}

}  // namespace
}  // namespace sluice
