#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>

#include "config/loader.hpp"
#include "core/utc.hpp"
#include "sinks/dead_letter.hpp"
#include "sinks/sink_types.hpp"
#include "tools/lint.hpp"
#include "tools/replay.hpp"
#include "tools/route_test.hpp"

namespace sluice::tools {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kData =
    R"({"events":["tablesdb.shop.tables.orders.rows.o1.create"],)"
    R"("channels":["rows","tablesdb.shop.tables.orders.rows"],)"
    R"("timestamp":"2026-03-01T12:00:00.000+00:00","payload":{"$id":"o1","total":120.0}})";

config::Config load(const std::string& sinks, const std::string& routes) {
  const std::string text =
      "appwrite: {endpoint: http://127.0.0.1:1/v1, project: shop, auth: {session: s}}\n"
      "sinks:\n" +
      sinks + "routes:\n" + routes;
  auto loaded = config::load_string(text, "t.yaml", sinks::sink_types());
  EXPECT_TRUE(loaded.ok()) << (loaded.errors.empty() ? "" : loaded.errors[0].format());
  return std::move(*loaded.config);
}

TEST(DeadLetterLine, ReadsWhatTheDeadLetterFileWrites) {
  std::string error;
  const auto event = event_from_data("p", kData, error);
  ASSERT_TRUE(event) << error;
  sinks::DeadLetter entry;
  entry.record = {event, RouteName::intern("paid"), 1};
  entry.reason = "http 400";
  entry.attempts = 3;
  std::string line;
  const auto now = std::chrono::system_clock::time_point(
                       std::chrono::sys_days{std::chrono::year{2026} / 3 / 1}) +
                   12h + 5min + 250ms;
  sinks::DeadLetterFile::append_line(line, entry, "hook", now);
  line.pop_back();  // the newline

  const auto parsed = parse_dead_letter_line(line, error);
  ASSERT_TRUE(parsed) << error;
  EXPECT_EQ(parsed->sink, "hook");
  EXPECT_EQ(parsed->route, "paid");
  EXPECT_EQ(parsed->reason, "http 400");
  EXPECT_EQ(parsed->time, std::chrono::time_point_cast<std::chrono::milliseconds>(now));
  EXPECT_EQ(parsed->record, kData);  // byte for byte: 120.0 stays 120.0
}

TEST(DeadLetterLine, RefusesWhatIsNotADeadLetter) {
  std::string error;
  EXPECT_FALSE(parse_dead_letter_line("not json", error));
  EXPECT_EQ(error, "not valid JSON");
  EXPECT_FALSE(parse_dead_letter_line(kData, error));  // a file sink's record
  EXPECT_EQ(error, "not a dead-letter record (no `record` object)");
  EXPECT_FALSE(
      parse_dead_letter_line(R"({"record":{},"sink":"s","route":"r","reason":"x"})", error));
  EXPECT_EQ(error, "not a dead-letter record (no `time`)");
}

TEST(DeadLetterLine, TakesTheFirstAttemptOrElseTheTimeOfTheLine) {
  std::string error;
  const std::string head = R"({"time":"2026-03-01T12:00:00Z","sink":"s","route":"r",)"
                           R"("reason":"x",)";
  auto parsed = parse_dead_letter_line(
      head + R"("first_attempt":"2026-03-01T11:00:00.000Z","record":{}})", error);
  ASSERT_TRUE(parsed) << error;
  EXPECT_EQ(parsed->first_attempt, *parse_time("2026-03-01T11:00:00Z"));
  parsed = parse_dead_letter_line(head + R"("record":{}})", error);
  ASSERT_TRUE(parsed) << error;
  EXPECT_EQ(parsed->first_attempt, parsed->time);
}

// The daemon forwards an event whose timestamp is null or malformed, stamped with the time it
// received it, so such events reach dead-letter files and must replay.
TEST(DeadLetterLine, AnEventWithoutTimestampTakesTheTimeItWasReceived) {
  constexpr std::string_view data =
      R"({"events":["e"],"channels":["rows"],"timestamp":null,"payload":{"$id":"o1"}})";
  std::string error;
  EXPECT_FALSE(event_from_data("p", data, error));
  EXPECT_EQ(error, "its timestamp is missing or malformed");
  const auto received = *parse_time("2026-03-01T11:00:00Z");
  const auto event = event_from_data("p", data, error, received);
  ASSERT_TRUE(event) << error;
  EXPECT_EQ(event->timestamp, received);
  EXPECT_EQ(event->data, data);
}

// A dead-letter file that ends in a torn line (a crash mid-write, an editor) gets a newline
// before the next record, so no record is glued onto it and lost.
TEST(DeadLetterFile, AppendsWholeLinesAfterATornLine) {
  const auto path = ::testing::TempDir() + "tools_test_dead_letter.jsonl";
  std::remove(path.c_str());
  ASSERT_FALSE(sinks::DeadLetterFile::append_durably(path, "{\"a\":1}\n"));
  {
    std::ofstream torn(path, std::ios::app);
    torn << "{\"torn";
  }
  ASSERT_FALSE(sinks::DeadLetterFile::append_durably(path, "{\"b\":2}\n"));
  ASSERT_FALSE(sinks::DeadLetterFile::append_durably(path, "{\"c\":3}\n"));
  std::ifstream in(path);
  const std::string text{std::istreambuf_iterator<char>(in), {}};
  EXPECT_EQ(text, "{\"a\":1}\n{\"torn\n{\"b\":2}\n{\"c\":3}\n");
  std::remove(path.c_str());
}

TEST(Lint, AnAdminServerOnLoopbackNeedsNoToken) {
  const auto lint_admin = [](const std::string& listen) {
    const auto config = load("  w: {type: webhook, url: \"https://h.example/x\"}\n",
                             "  - {name: all, channels: [rows], sinks: [w]}\n"
                             "admin: {listen: \"" +
                                 listen + "\"}\n");
    return lint(config).size();
  };
  EXPECT_EQ(lint_admin("127.0.0.1:0"), 0u);
  EXPECT_EQ(lint_admin("[::1]:0"), 0u);
  EXPECT_EQ(lint_admin("[::ffff:127.0.0.1]:0"), 0u);
  EXPECT_EQ(lint_admin("0.0.0.0:0"), 1u);
  EXPECT_EQ(lint_admin("[::ffff:10.0.0.1]:0"), 1u);
}

TEST(Replay, FiltersByReasonAndAHalfOpenTimeWindow) {
  DeadLetterLine line;
  line.reason = "http 503";
  line.time = *parse_time("2026-03-01T12:00:00Z");
  ReplayOptions options;
  EXPECT_TRUE(selected(options, line));
  options.reason = "http 5";
  EXPECT_TRUE(selected(options, line));
  options.reason = "http 4";
  EXPECT_FALSE(selected(options, line));
  options.reason.reset();
  options.since = parse_time("2026-03-01T12:00:00Z");
  EXPECT_TRUE(selected(options, line));  // at `since` is in
  options.until = parse_time("2026-03-01T13:00:00+01:00");
  EXPECT_FALSE(selected(options, line));  // at `until` is out
  options.until = parse_time("2026-03-02");
  EXPECT_TRUE(selected(options, line));
}

TEST(Replay, ParsesTimesAsDatesOrIso8601) {
  EXPECT_EQ(parse_time("2026-03-01"), parse_time("2026-03-01T00:00:00Z"));
  EXPECT_EQ(parse_time("2026-03-01T01:00:00+01:00"), parse_time("2026-03-01T00:00:00.000Z"));
  EXPECT_FALSE(parse_time("yesterday"));
  EXPECT_FALSE(parse_time("2026-13-01"));
}

TEST(RouteOffline, RendersEachSinksTargetWithTheRouteThatSentIt) {
  const auto config = load(
      "  k: {type: kafka, brokers: [b:9092], topic: \"t.{route}\", key: \"{payload.customer}\"}\n"
      "  f: {type: file, path: \"/d/%Y/{channel}/{payload.$id}.jsonl\"}\n"
      "  w: {type: webhook, url: \"https://h.example/x\"}\n",
      "  - {name: big, channels: [tablesdb.shop.tables.orders.rows], sinks: [k, f],\n"
      "     where: [{greaterThan: [total, 100]}]}\n"
      "  - {name: all, channels: [rows], sinks: [f, w]}\n"
      "  - {name: none, channels: [files], sinks: [w]}\n");
  std::string error;
  const auto event = event_from_data("p", kData, error);
  ASSERT_TRUE(event) << error;
  const Router router(config);
  const auto routing = route_offline(config, router, *event);
  EXPECT_EQ(routing.routes, (std::vector<std::string>{"big", "all"}));
  ASSERT_EQ(routing.sinks.size(), 3u);
  EXPECT_EQ(routing.sinks[0].sink, "k");
  EXPECT_EQ(routing.sinks[0].topic, "t.big");
  EXPECT_EQ(routing.sinks[0].key, std::nullopt);  // no customer: an empty key is no key
  EXPECT_EQ(routing.sinks[1].sink, "f");
  EXPECT_EQ(routing.sinks[1].route, "big");  // the first route in file order
  EXPECT_EQ(routing.sinks[1].path, "/d/2026/tablesdb.shop.tables.orders.rows/o1.jsonl");
  EXPECT_EQ(routing.sinks[2].url, "https://h.example/x");
}

TEST(Capture, TurnsDeadLettersAndFileRecordsIntoCasesExpectingTodaysRouting) {
  const auto config = load("  w: {type: webhook, url: \"https://h.example/x\"}\n",
                           "  - {name: all, channels: [rows], sinks: [w]}\n");
  std::string error;
  const auto event = event_from_data("p", kData, error);
  ASSERT_TRUE(event) << error;
  std::istringstream in(std::string(kData) + "\n\n" + R"({"time":"2026-03-01T12:00:00Z",)" +
                        R"("sink":"w","route":"all","reason":"x","record":)" + std::string(kData) +
                        "}\n");
  const auto cases = capture_cases(config, in, "dead.jsonl", error);
  ASSERT_TRUE(cases) << error;
  const std::string one = "  - name: \"tablesdb.shop.tables.orders.rows.o1.create " +
                          event->id.substr(0, 8) + "\"\n    record: " + std::string(kData) +
                          "\n    expect:\n      routes: [\"all\"]\n      sinks:\n"
                          "        \"w\": {url: \"https://h.example/x\"}\n";
  EXPECT_EQ(*cases, "tests:\n" + one + one);

  std::istringstream bad("{\"events\":[]}\n");
  EXPECT_FALSE(capture_cases(config, bad, "dead.jsonl", error));
  EXPECT_EQ(error,
            "dead.jsonl:1: the record is not a realtime event's data (it needs events, channels, "
            "timestamp and payload)");
}

}  // namespace
}  // namespace sluice::tools
