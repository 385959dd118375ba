#include "daemon/cli.hpp"

#include <gtest/gtest.h>

namespace sluice {
namespace {

ParseOutcome parse(std::vector<std::string> args) {
  return parse_command_line(args);
}

TEST(CommandLine, ParsesBothOptionForms) {
  auto a = parse({"--config", "r.yaml", "--check-config", "--admin-listen=[::1]:9000",
                  "--log-level", "debug", "--log-format=json", "--watch-config"});
  ASSERT_TRUE(a.options) << a.error;
  EXPECT_EQ(a.options->config_path, "r.yaml");
  EXPECT_TRUE(a.options->check_config);
  EXPECT_TRUE(a.options->watch_config);
  EXPECT_EQ(a.options->admin_listen, "[::1]:9000");
  EXPECT_EQ(a.options->log_level, log::Level::debug);
  EXPECT_EQ(a.options->log_format, log::Format::json);

  auto b = parse({"--config=r.yaml"});
  ASSERT_TRUE(b.options);
  EXPECT_EQ(b.options->config_path, "r.yaml");
  EXPECT_FALSE(b.options->check_config);
  EXPECT_FALSE(b.options->admin_listen);
  EXPECT_FALSE(b.options->log_level);
}

TEST(CommandLine, HelpAndVersionNeedNoConfig) {
  auto h = parse({"--help"});
  ASSERT_TRUE(h.options);
  EXPECT_TRUE(h.options->help);
  EXPECT_TRUE(parse({"-h"}).options->help);
  auto v = parse({"--version"});
  ASSERT_TRUE(v.options);
  EXPECT_TRUE(v.options->version);
}

TEST(CommandLine, UsageErrors) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{}, "missing --config PATH"},
      {{"--check-config"}, "missing --config PATH"},
      {{"--config"}, "option --config needs a value"},
      {{"--config="}, "option --config needs a non-empty value"},
      {{"--config", "a", "--bogus"}, "unknown option \"--bogus\""},
      {{"--config", "a", "extra"}, "unexpected argument \"extra\""},
      {{"--config", "a", "--config", "b"}, "option --config given twice"},
      {{"--config", "a", "--check-config=yes"}, "option --check-config takes no value"},
      {{"--config", "a", "--log-level", "loud"},
       "--log-level \"loud\": expected one of: debug, info, warn, error"},
      {{"--config", "a", "--log-format=xml"}, "--log-format \"xml\": expected one of: text, json"},
      {{"--config", "a", "--admin-listen", "9477"},
       "--admin-listen \"9477\": expected HOST:PORT, e.g. 127.0.0.1:9477 or [::1]:9477"},
  };
  for (const auto& [args, message] : cases) {
    auto outcome = parse(args);
    EXPECT_FALSE(outcome.options) << message;
    EXPECT_EQ(outcome.error, message);
  }
}

TEST(CommandLine, UsageTextDocumentsEveryFlagAndExitCode) {
  const auto text = usage_text();
  for (const char* flag : {"--config", "--check-config", "--watch-config", "--admin-listen",
                           "--log-level", "--log-format", "--version", "--help"}) {
    EXPECT_NE(text.find(flag), std::string::npos) << flag;
  }
  for (const char* code : {"0  ", "1  ", "2  ", "3  "}) {
    EXPECT_NE(text.find(code), std::string::npos) << code;
  }
}

TEST(CommandLine, OverridesWinOverTheFile) {
  config::Config config;
  config.admin.host = "0.0.0.0";
  config.admin.port = 1;
  auto parsed = parse({"--config", "x", "--admin-listen", "[::1]:0", "--log-level=error"});
  ASSERT_TRUE(parsed.options);
  apply_overrides(*parsed.options, config);
  EXPECT_EQ(config.admin.host, "::1");
  EXPECT_EQ(config.admin.port, 0);
  EXPECT_EQ(config.log.level, log::Level::error);
  EXPECT_EQ(config.log.format, log::Format::text);  // not overridden

  config::Config untouched;
  apply_overrides(*parse({"--config", "x"}).options, untouched);
  EXPECT_EQ(untouched.admin.host, "127.0.0.1");
  EXPECT_EQ(untouched.admin.port, 9477);
}

TEST(CommandLine, TestIsASubcommandWithItsOwnOptions) {
  auto t = parse({"test", "--config", "r.yaml"});
  ASSERT_TRUE(t.options) << t.error;
  EXPECT_EQ(t.options->command, Command::test);
  EXPECT_EQ(t.options->config_path, "r.yaml");
  EXPECT_FALSE(t.options->capture);

  auto c = parse({"test", "--config=r.yaml", "--capture", "dead.jsonl"});
  ASSERT_TRUE(c.options) << c.error;
  EXPECT_EQ(c.options->capture, "dead.jsonl");

  EXPECT_EQ(parse({"test", "--config", "r.yaml", "--watch-config"}).error,
            "unknown option \"--watch-config\" for sluice test");
  EXPECT_EQ(parse({"--config", "r.yaml", "--capture", "x"}).error, "unknown option \"--capture\"");
  EXPECT_EQ(parse({"test"}).error, "missing --config PATH");
  EXPECT_EQ(parse({"--config", "r.yaml", "test"}).error, "unexpected argument \"test\"");
  EXPECT_EQ(parse({"--config", "r.yaml"}).options->command, Command::run);
}

TEST(CommandLine, ReplayTakesTheDeadLetterFileAndItsFilters) {
  auto r = parse({"replay", "--config", "r.yaml", "dead.jsonl", "--sink=k", "--reason", "http 5",
                  "--since", "2026-03-01", "--until=2026-03-02", "--failed-to", "f.jsonl",
                  "--from-line", "5", "--dry-run"});
  ASSERT_TRUE(r.options) << r.error;
  EXPECT_EQ(r.options->command, Command::replay);
  EXPECT_EQ(r.options->replay_file, "dead.jsonl");
  EXPECT_EQ(r.options->replay_sink, "k");
  EXPECT_EQ(r.options->replay_reason, "http 5");
  EXPECT_EQ(r.options->replay_since, "2026-03-01");
  EXPECT_EQ(r.options->replay_until, "2026-03-02");
  EXPECT_EQ(r.options->replay_failed_to, "f.jsonl");
  EXPECT_EQ(r.options->replay_from_line, "5");
  EXPECT_TRUE(r.options->dry_run);

  EXPECT_EQ(parse({"replay", "--config", "r.yaml"}).error,
            "missing the dead-letter FILE to replay");
  EXPECT_EQ(parse({"replay", "--config", "r.yaml", "a", "b"}).error, "unexpected argument \"b\"");
  EXPECT_EQ(parse({"replay", "--config", "r.yaml", "a", "--capture", "x"}).error,
            "unknown option \"--capture\" for sluice replay");
  EXPECT_EQ(parse({"--config", "r.yaml", "--dry-run"}).error, "unknown option \"--dry-run\"");
}

TEST(CommandLine, StrictGoesWithCheckConfig) {
  auto s = parse({"--config", "r.yaml", "--check-config", "--strict"});
  ASSERT_TRUE(s.options) << s.error;
  EXPECT_TRUE(s.options->strict);
  EXPECT_EQ(parse({"--config", "r.yaml", "--strict"}).error, "--strict goes with --check-config");
}

}  // namespace
}  // namespace sluice
