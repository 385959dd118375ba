#include "config/config_map.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/loader.hpp"
#include "config/sink_type.hpp"

namespace sluice::config {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

struct Demo {
  std::string name;
  Duration wait{5000};
  std::uint32_t count = 3;
};

const ConfigMap<Demo>& demo_map() {
  static const ConfigMap<Demo> map({
      required_key("name", &Demo::name, as::string(), "what it is called"),
      key("wait", &Demo::wait, as::duration(), "how long it waits"),
      key("count", &Demo::count, as::integer(1, 10), "how many there are"),
  });
  return map;
}

// Reads `text` (a mapping at the top of the file) with demo_map() into `out`; returns the
// error lines.
std::vector<std::string> read_demo(std::string_view text, Demo& out) {
  Reader reader("t.yaml", {});
  const YAML::Node root = YAML::Load(std::string(text));
  demo_map().read(reader, MapView(reader, root, YAML::Mark{}, ""), out);
  std::vector<std::string> lines;
  for (const auto& e : reader.take_errors())
    lines.push_back(e.format());
  return lines;
}

TEST(ConfigMap, ReadsADeclaredKeyWithItsTypeAndKeepsTheDefaultOfAnAbsentOne) {
  Demo demo;
  EXPECT_THAT(read_demo("name: d\nwait: 2s\n", demo), IsEmpty());
  EXPECT_EQ(demo.name, "d");
  EXPECT_EQ(demo.wait, Duration(2000));
  EXPECT_EQ(demo.count, 3u);  // absent: the struct's default
}

TEST(ConfigMap, AWrongValueIsReportedAtItsLocationAndKeepsTheDefault) {
  Demo demo;
  EXPECT_THAT(read_demo("name: d\ncount: 11\n", demo),
              ElementsAre("t.yaml:2:8: count: expected an integer from 1 to 10, got \"11\""));
  EXPECT_EQ(demo.count, 3u);
}

TEST(ConfigMap, AnUndeclaredKeyIsReportedWithTheDeclaredOnes) {
  Demo demo;
  EXPECT_THAT(read_demo("name: d\nwiat: 1s\n", demo),
              ElementsAre("t.yaml:2:1: wiat: unknown key \"wiat\" (did you mean \"wait\"? "
                          "expected one of: count, name, wait)"));
  EXPECT_EQ(demo.wait, Duration(5000));
}

TEST(ConfigMap, AKeyFarFromEveryDeclaredOneGetsNoSuggestion) {
  Demo demo;
  EXPECT_THAT(read_demo("name: d\nsometimes: 1\n", demo),
              ElementsAre("t.yaml:2:1: sometimes: unknown key \"sometimes\" (expected one of: "
                          "count, name, wait)"));
}

TEST(DidYouMean, SuggestsTheClosestNameForOneTypoPerFourLetters) {
  const std::vector<std::string> keys = {"channels", "events", "name", "sinks", "where"};
  EXPECT_EQ(did_you_mean("chanels", keys), "did you mean \"channels\"? ");
  EXPECT_EQ(did_you_mean("Channels", keys), "did you mean \"channels\"? ");
  EXPECT_EQ(did_you_mean("chnanels", keys), "did you mean \"channels\"? ");  // a swapped pair
  EXPECT_EQ(did_you_mean("sink", keys), "did you mean \"sinks\"? ");
  EXPECT_EQ(did_you_mean("wehre", keys), "did you mean \"where\"? ");
  EXPECT_EQ(did_you_mean("route", keys), "");
  EXPECT_EQ(did_you_mean("", keys), "");
  EXPECT_EQ(did_you_mean("name", {}), "");
}

TEST(ConfigMap, AMissingRequiredKeyIsReportedWithItsHelp) {
  Demo demo;
  EXPECT_THAT(read_demo("wait: 1s\n", demo),
              ElementsAre("t.yaml:1:1: missing required key \"name\" (what it is called)"));
}

// A sink type the loader has never heard of, with one key of its own.
struct FakeSettings {
  static constexpr std::string_view kType = "fake";
  std::string target;
  bool operator==(const FakeSettings&) const = default;
};

SinkTypes fake_types() {
  return SinkTypes({sink_type(ConfigMap<FakeSettings>({
      required_key("target", &FakeSettings::target, as::string(), "where records go"),
  }))});
}

std::string with_sink(std::string_view sink) {
  return R"(appwrite:
  endpoint: https://a.example/v1
  project: p
  auth: {session: s}
sinks:
  f: )" + std::string(sink) +
         R"(
routes:
  - {name: r, channels: [c], sinks: [f]}
)";
}

std::vector<std::string> errors_of(const LoadResult& result) {
  std::vector<std::string> out;
  for (const auto& e : result.errors)
    out.push_back(e.format());
  return out;
}

TEST(SinkTypes, ARegisteredTypeIsReadByItsOwnMap) {
  const auto types = fake_types();
  const auto r =
      load_string(with_sink("{type: fake, target: here, retry: {max: 1m}}"), "t.yaml", types);
  ASSERT_TRUE(r.ok()) << errors_of(r)[0];
  const auto& sink = r.config->sinks.at(0);
  EXPECT_EQ(sink.type_name(), "fake");
  EXPECT_EQ(sink.settings_as<FakeSettings>().target, "here");
  EXPECT_EQ(sink.retry.max, Duration(60000));  // the keys every sink has still apply
}

TEST(SinkTypes, TheTypeKeysJoinTheCommonOnesInTheUnknownKeyCheck) {
  const auto types = fake_types();
  EXPECT_THAT(errors_of(load_string(with_sink("{type: fake, tagret: here}"), "t.yaml", types)),
              ElementsAre("t.yaml:6:3: sinks.f: missing required key \"target\" (where records "
                          "go)",
                          "t.yaml:6:19: sinks.f.tagret: unknown key \"tagret\" (did you mean "
                          "\"target\"? expected one of: "
                          "buffer, dead_letter, gap_marker, retry, target, type)"));
  EXPECT_THAT(errors_of(load_string(with_sink("{type: kafka}"), "t.yaml", types)),
              ElementsAre("t.yaml:6:13: sinks.f.type: unknown value \"kafka\" (expected one of: "
                          "fake)"));
}

TEST(SinkTypes, SameSettingsComparesTheTypedSettings) {
  SinkConfig a;
  a.name = "f";
  a.settings = make_settings(FakeSettings{"x"});
  SinkConfig b = a;
  b.settings = make_settings(FakeSettings{"x"});
  EXPECT_TRUE(a.same_settings(b));
  b.settings = make_settings(FakeSettings{"y"});
  EXPECT_FALSE(a.same_settings(b));
}

}  // namespace
}  // namespace sluice::config
