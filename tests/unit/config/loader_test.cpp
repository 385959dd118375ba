#include "config/loader.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "sinks/file/file_config.hpp"
#include "sinks/kafka/kafka_config.hpp"
#include "sinks/sink_types.hpp"
#include "sinks/webhook/webhook_config.hpp"

namespace sluice::config {
namespace {

namespace fs = std::filesystem;
using sinks::FileSinkConfig;
using sinks::KafkaSinkConfig;
using sinks::WebhookSinkConfig;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr const char* kValid = R"(appwrite:
  endpoint: https://a.example/v1
  project: p
  auth: {session: s}
sinks:
  k: {type: kafka, brokers: [b:9092], topic: t}
routes:
  - {name: r, channels: [c], sinks: [k]}
)";

std::vector<std::string> errors_of(const LoadResult& result) {
  std::vector<std::string> out;
  for (const auto& e : result.errors)
    out.push_back(e.format());
  return out;
}

LoadResult load(std::string_view text) {
  return load_string(text, "t.yaml", sinks::sink_types());
}

// Loads `text` and returns its error lines; the config must then be unset.
std::vector<std::string> errors(std::string_view text) {
  auto result = load(text);
  EXPECT_FALSE(result.ok());
  EXPECT_FALSE(result.config.has_value());
  return errors_of(result);
}

// The valid base document with `from` replaced by `to` (which must occur once).
std::string with(std::string from, std::string to, std::string base = kValid) {
  const auto pos = base.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  if (pos != std::string::npos)
    base.replace(pos, from.size(), to);
  return base;
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "sluice-loader-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::string write(const std::string& name, const std::string& content) const {
    std::ofstream(path_ + "/" + name, std::ios::binary) << content;
    return path_ + "/" + name;
  }

 private:
  std::string path_;
};

// Sets an environment variable for the life of the object.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) { ::setenv(name, value, 1); }
  ~ScopedEnv() { ::unsetenv(name_); }

 private:
  const char* name_;
};

TEST(ErrorFormat, FollowsTheContract) {
  Error e{{"routes.yaml", 14, 7}, "routes[2].sinks[0]", "unknown sink \"archiv\""};
  EXPECT_EQ(e.format(), "routes.yaml:14:7: routes[2].sinks[0]: unknown sink \"archiv\"");
  Error no_path{{"f.yaml", 1, 2}, "", "YAML syntax error: x"};
  EXPECT_EQ(no_path.format(), "f.yaml:1:2: YAML syntax error: x");
  Error no_line{{"f.yaml", 0, 0}, "", "cannot read"};
  EXPECT_EQ(no_line.format(), "f.yaml: cannot read");
}

TEST(Loader, MinimalFileGetsEveryDefault) {
  auto result = load(kValid);
  ASSERT_TRUE(result.ok()) << errors_of(result)[0];
  const Config& c = *result.config;
  EXPECT_EQ(c.path, "t.yaml");
  EXPECT_EQ(c.appwrite.endpoint, "https://a.example/v1");
  EXPECT_EQ(c.appwrite.realtime_endpoint, "wss://a.example/v1/realtime");
  EXPECT_EQ(c.appwrite.project, "p");
  EXPECT_EQ(c.appwrite.auth.kind, AuthConfig::Kind::session);
  EXPECT_EQ(c.appwrite.auth.session.reveal(), "s");
  EXPECT_EQ(c.appwrite.subscribe, AppwriteConfig::Subscribe::auto_);
  EXPECT_EQ(c.appwrite.heartbeat, Duration(20000));
  EXPECT_EQ(c.appwrite.reconnect, ReconnectConfig{});
  EXPECT_EQ(c.appwrite.tls, TlsConfig{});
  EXPECT_EQ(c.admin.host, "127.0.0.1");
  EXPECT_EQ(c.admin.port, 9477);
  EXPECT_FALSE(c.admin.tls);
  EXPECT_EQ(c.log, LogConfig{});
  EXPECT_EQ(c.buffer, BufferConfig{});
  EXPECT_EQ(c.state_dir, "/var/lib/sluice");
  EXPECT_EQ(c.backfill, BackfillConfig{});
  EXPECT_TRUE(c.backfill.enabled);
  EXPECT_EQ(c.backfill.max_window, std::chrono::hours(24));
  EXPECT_EQ(c.backfill.margin, std::chrono::seconds(5));
  EXPECT_EQ(c.backfill.page_size, 500u);
  EXPECT_EQ(c.backfill.rate, 10.0);
  ASSERT_EQ(c.sinks.size(), 1u);
  const auto& sink = c.sinks[0];
  EXPECT_EQ(sink.name, "k");
  EXPECT_EQ(sink.type_name(), "kafka");
  EXPECT_EQ(sink.buffer, BufferConfig{});
  EXPECT_EQ(sink.retry, RetryConfig{});
  EXPECT_EQ(sink.location, (Location{"t.yaml", 6, 3}));
  const auto& kafka = sink.settings_as<KafkaSinkConfig>();
  EXPECT_EQ(kafka.brokers, std::vector<std::string>{"b:9092"});
  EXPECT_EQ(kafka.topic.source(), "t");
  EXPECT_FALSE(kafka.key);
  EXPECT_EQ(kafka.compression, KafkaSinkConfig::Compression::none);
  ASSERT_EQ(c.routes.size(), 1u);
  EXPECT_EQ(c.routes[0].name, "r");
  EXPECT_EQ(c.routes[0].channels, std::vector<std::string>{"c"});
  EXPECT_TRUE(c.routes[0].events.empty());
  EXPECT_TRUE(c.routes[0].where.empty());
  EXPECT_EQ(c.routes[0].sinks, std::vector<std::string>{"k"});
  EXPECT_TRUE(c.routes[0].backfill);
  EXPECT_EQ(c.routes[0].location, (Location{"t.yaml", 8, 5}));
  EXPECT_EQ(c.find_sink("k"), &c.sinks[0]);
}

TEST(Loader, DerivesTheRealtimeEndpoint) {
  auto r = load(with("https://a.example/v1", "http://localhost:8080/v1/"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config->appwrite.realtime_endpoint, "ws://localhost:8080/v1/realtime");
  r = load(with("  project: p", "  project: p\n  realtime_endpoint: wss://rt.example/v1/realtime"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config->appwrite.realtime_endpoint, "wss://rt.example/v1/realtime");
  EXPECT_THAT(errors(with("  project: p", "  project: p\n  realtime_endpoint: https://x/v1")),
              ElementsAre("t.yaml:4:22: appwrite.realtime_endpoint: expected a ws:// or wss:// "
                          "URL, got \"https://x/v1\""));
  EXPECT_THAT(errors(with("https://a.example/v1", "ftp://a.example")),
              ElementsAre("t.yaml:2:13: appwrite.endpoint: expected an http:// or https:// URL, "
                          "got \"ftp://a.example\""));
}

TEST(Loader, ReadsTheFullExample) {
  ScopedEnv a("SLUICE_SESSION", "session-value");
  ScopedEnv b("SLUICE_HOOK_SECRET", "hook-secret");
  ScopedEnv c("SLUICE_KAFKA_PASSWORD", "kafka-password");
  auto result = load_file(SLUICE_SOURCE_DIR "/config/routes.example.yaml", sinks::sink_types());
  ASSERT_TRUE(result.ok()) << errors_of(result)[0];
  const Config& config = *result.config;
  EXPECT_EQ(config.appwrite.auth.session.reveal(), "session-value");
  EXPECT_EQ(config.appwrite.reconnect.multiplier, 2.0);
  EXPECT_EQ(config.appwrite.reconnect.max, Duration(60000));
  ASSERT_EQ(config.sinks.size(), 3u);

  const auto* orders = config.find_sink("orders");
  ASSERT_NE(orders, nullptr);
  const auto& kafka = orders->settings_as<KafkaSinkConfig>();
  EXPECT_EQ(kafka.compression, KafkaSinkConfig::Compression::zstd);
  EXPECT_EQ(kafka.properties.at("sasl.password"), "kafka-password");
  EXPECT_EQ(kafka.properties.at("linger.ms"), "5");
  ASSERT_TRUE(kafka.key);
  EXPECT_EQ(kafka.key->source(), "{payload.$id}");
  EXPECT_EQ(kafka.headers.size(), 2u);
  EXPECT_EQ(orders->buffer.type, BufferConfig::Type::disk);
  EXPECT_EQ(orders->buffer.max_bytes, 1ull << 30);
  EXPECT_EQ(orders->buffer.dir, "/var/lib/sluice/spool");

  const auto* audit = config.find_sink("audit");
  ASSERT_NE(audit, nullptr);
  const auto& hook = audit->settings_as<WebhookSinkConfig>();
  EXPECT_EQ(hook.signing.scheme, WebhookSinkConfig::Signing::Scheme::standard);
  EXPECT_EQ(hook.signing.secret.reveal(), "hook-secret");
  EXPECT_EQ(hook.batch.max_bytes, 1ull << 20);
  EXPECT_EQ(hook.batch.max_wait, Duration(100));
  EXPECT_EQ(audit->dead_letter, "/var/lib/sluice/dead/audit.jsonl");
  EXPECT_EQ(audit->retry.max_elapsed, Duration(15 * 60 * 1000));

  const auto* archive = config.find_sink("archive");
  ASSERT_NE(archive, nullptr);
  const auto& file = archive->settings_as<FileSinkConfig>();
  EXPECT_EQ(file.rotate_max_size, 100ull << 20);
  EXPECT_EQ(file.rotate_max_age, Duration(3600000));
  EXPECT_EQ(file.fsync, FileSinkConfig::Fsync::batch);

  ASSERT_EQ(config.routes.size(), 2u);
  const auto& where = config.routes[0].where;
  ASSERT_EQ(where.size(), 4u);
  EXPECT_EQ(where[0].method, Query::Method::equal);
  EXPECT_EQ(where[0].attribute, "status");
  EXPECT_EQ(where[0].values,
            (std::vector<Query::Value>{std::string("paid"), std::string("refunded")}));
  EXPECT_EQ(where[1].values, std::vector<Query::Value>{std::int64_t{100}});
  EXPECT_EQ(where[2].method, Query::Method::is_not_null);
  EXPECT_EQ(where[2].attribute, "customer");
  EXPECT_EQ(where[3].method, Query::Method::or_);
  ASSERT_EQ(where[3].queries.size(), 2u);
  EXPECT_EQ(where[3].queries[1].method, Query::Method::and_);
  EXPECT_EQ(where[3].queries[1].queries[1].values, std::vector<Query::Value>{0.5});
  EXPECT_EQ(config.routes[1].channels.size(), 2u);
}

TEST(Loader, SinkBufferOverridesMergeOverTheTopLevel) {
  auto r = load(with("sinks:\n  k: {type: kafka, brokers: [b:9092], topic: t}",
                     "buffer: {type: disk, dir: /spool, max_bytes: 1GiB, when_full: drop_oldest}\n"
                     "sinks:\n"
                     "  k: {type: kafka, brokers: [b:9092], topic: t, buffer: {max_bytes: 2MiB}}\n"
                     "  f: {type: file, path: /x}"));
  ASSERT_TRUE(r.ok()) << errors_of(r)[0];
  const auto& k = *r.config->find_sink("k");
  EXPECT_EQ(k.buffer.type, BufferConfig::Type::disk);
  EXPECT_EQ(k.buffer.dir, "/spool");
  EXPECT_EQ(k.buffer.max_bytes, 2ull << 20);
  EXPECT_EQ(k.buffer.when_full, BufferConfig::WhenFull::drop_oldest);
  EXPECT_EQ(k.buffer.max_events, 100000u);
  const auto& f = *r.config->find_sink("f");
  EXPECT_EQ(f.buffer, r.config->buffer);
  EXPECT_EQ(f.buffer.max_bytes, 1ull << 30);
}

TEST(Loader, UnknownKeysListTheValidOnes) {
  EXPECT_THAT(
      errors(with("topic: t}", "topik: t}")),
      ElementsAre(
          "t.yaml:6:3: sinks.k: missing required key \"topic\" (a topic name "
          "template)",
          "t.yaml:6:39: sinks.k.topik: unknown key \"topik\" (did you mean \"topic\"? expected one "
          "of: "
          "brokers, buffer, compression, dead_letter, gap_marker, headers, key, properties, "
          "retry, topic, type)"));
}

TEST(Loader, DuplicateKeysAreErrors) {
  EXPECT_THAT(errors(with("  project: p", "  project: p\n  project: q")),
              ElementsAre("t.yaml:4:3: appwrite.project: duplicate key \"project\" (first given "
                          "at line 3)"));
}

TEST(Loader, TestCasesAreAListOrAFileNameAndTheDaemonIgnoresThem) {
  EXPECT_TRUE(load(std::string(kValid) + "tests: [{name: x}]\n").ok());
  EXPECT_TRUE(load(std::string(kValid) + "tests: routes.tests.yaml\n").ok());
  EXPECT_THAT(errors(std::string(kValid) + "tests: {name: x}\n"),
              ElementsAre("t.yaml:9:8: tests: expected a list of test cases or the name of a file "
                          "holding them, got a mapping"));
}

TEST(Loader, MissingRequiredSections) {
  EXPECT_THAT(errors("log: {level: info}\n"),
              ElementsAre("t.yaml:1:1: missing required key \"appwrite\" (the Appwrite endpoint, "
                          "project and auth)",
                          "t.yaml:1:1: missing required key \"sinks\" (a mapping of sink names to "
                          "sinks)",
                          "t.yaml:1:1: missing required key \"routes\" (a list of routes)"));
  EXPECT_THAT(errors(""), ElementsAre("t.yaml:1:1: the file is empty (expected a mapping with "
                                      "appwrite, sinks and routes)"));
  EXPECT_THAT(errors("- a\n"), ElementsAre("t.yaml:1:1: expected a mapping, got a list"));
}

TEST(Loader, SinkNamesCannotLeaveTheBufferDirectory) {
  // The name is the disk buffer's directory under buffer.dir.
  for (const std::string name : {"..", "."}) {
    const auto text = with("  k: {type: kafka", "  \"" + name + "\": {type: kafka",
                           with("sinks: [k]", "sinks: [\"" + name + "\"]"));
    EXPECT_THAT(errors(text), Contains(HasSubstr("bad sink name \"" + name + "\""))) << name;
  }
  const auto dots = load(
      with("  k: {type: kafka", "  k...1: {type: kafka", with("sinks: [k]", "sinks: [k...1]")));
  EXPECT_TRUE(dots.ok()) << errors_of(dots).front();
}

TEST(Loader, RouteChecks) {
  EXPECT_THAT(errors(with("sinks: [k]}", "sinks: [k, kk]}")),
              ElementsAre("t.yaml:8:41: routes[0].sinks[1]: unknown sink \"kk\" (known: k)"));
  EXPECT_THAT(errors(with("channels: [c]", "channels: []")),
              ElementsAre("t.yaml:8:25: routes[0].channels: expected at least one channel, e.g. "
                          "[databases.shop.collections.orders.documents]"));
  EXPECT_THAT(errors(std::string(kValid) + "  - {name: r, channels: [d], sinks: [k]}\n"),
              ElementsAre("t.yaml:9:12: routes[1].name: duplicate route name \"r\" (first used at "
                          "line 8)"));
  EXPECT_THAT(errors(with("sinks: [k]}", "sinks: [k, k]}")),
              ElementsAre("t.yaml:8:41: routes[0].sinks[1]: sink \"k\" is listed twice"));
  EXPECT_THAT(errors(with("channels: [c]", "channels: c")),
              ElementsAre("t.yaml:8:25: routes[0].channels: expected a list of channel names, got "
                          "a scalar"));
  EXPECT_THAT(errors(with("channels: [c]", "channels: [c], events: [a..b]")),
              ElementsAre("t.yaml:8:39: routes[0].events[0]: event pattern \"a..b\" has an empty "
                          "segment"));
  EXPECT_THAT(errors(with("routes:\n  - {name: r, channels: [c], sinks: [k]}", "routes: []")),
              ElementsAre("t.yaml:7:9: routes: expected at least one route"));
}

TEST(Loader, SinkNotUsedByAnyRouteIsFine) {
  auto r = load(with("sinks:\n", "sinks:\n  spare: {type: file, path: /tmp/x}\n"));
  EXPECT_TRUE(r.ok());
}

TEST(Loader, BadDurationsSizesAndEnums) {
  EXPECT_THAT(errors(with("  project: p", "  project: p\n  heartbeat: 20")),
              ElementsAre("t.yaml:4:14: appwrite.heartbeat: bad duration \"20\": a unit is "
                          "required: expected a duration such as 500ms, 20s, 5m or 1h (units: ms, "
                          "s, m, h, d)"));
  EXPECT_THAT(errors("buffer: {max_bytes: 10GB2}\n" + std::string(kValid)),
              ElementsAre(HasSubstr("t.yaml:1:21: buffer.max_bytes: bad size \"10GB2\": unknown "
                                    "unit \"GB2\"")));
  EXPECT_THAT(errors(with("  project: p", "  project: p\n  subscribe: always")),
              ElementsAre("t.yaml:4:14: appwrite.subscribe: unknown value \"always\" (expected "
                          "one of: url, message, auto)"));
  EXPECT_THAT(errors("log: {level: verbose, format: xml}\n" + std::string(kValid)),
              ElementsAre("t.yaml:1:14: log.level: unknown value \"verbose\" (expected one of: "
                          "debug, info, warn, error)",
                          "t.yaml:1:31: log.format: unknown value \"xml\" (expected one of: text, "
                          "json)"));
  EXPECT_THAT(errors(with("  project: p",
                          "  project: p\n  reconnect: {initial: 2s, max: 1s, "
                          "multiplier: 0.5}")),
              ElementsAre(HasSubstr("t.yaml:4:33: appwrite.reconnect.max: max must be at least "
                                    "initial"),
                          HasSubstr("t.yaml:4:49: appwrite.reconnect.multiplier: expected a "
                                    "number from 1 to 100, got \"0.5\"")));
}

TEST(Loader, Templates) {
  EXPECT_THAT(errors(with("topic: t}", "topic: \"a.{paylod.x}\"}")),
              ElementsAre("t.yaml:6:46: sinks.k.topic: bad template at character 3: unknown "
                          "variable {paylod.x} (expected one of: {event}, {channel}, {route}, "
                          "{project}, {timestamp}, {event_id}, {payload.FIELD})"));
  EXPECT_THAT(errors(with("topic: t}", "topic: \"a.{event\"}")),
              ElementsAre(HasSubstr("bad template at character 3: unclosed \"{\"")));
  EXPECT_THAT(errors(with("topic: t}", "topic: t-%Y}")),
              ElementsAre(HasSubstr("%Y is a strftime directive, allowed only in file paths")));
  auto r = load(with("sinks:\n", "sinks:\n  f: {type: file, path: \"/a/%Y/{route}.jsonl\"}\n"));
  EXPECT_TRUE(r.ok());
}

TEST(Loader, WhereConditions) {
  auto where = [](std::string conditions) {
    return with("channels: [c]", "channels: [c], where: " + conditions);
  };
  auto r = load(where(R"([{equal: [a, [1, "1", 1.5, true, "true", null, ~, x, 0x1f, -2e3]]}, )"
                      R"({isNull: b}, {isNull: [c]}, {and: [{notEqual: [d, 1]}, )"
                      R"({or: [{lessThanEqual: [e, 2]}, {greaterThanEqual: [f, 3]}]}]}])"));
  ASSERT_TRUE(r.ok()) << errors_of(r)[0];
  const auto& w = r.config->routes[0].where;
  ASSERT_EQ(w.size(), 4u);
  EXPECT_EQ(w[0].values, (std::vector<Query::Value>{std::int64_t{1}, std::string("1"), 1.5, true,
                                                    std::string("true"), nullptr, nullptr,
                                                    std::string("x"), std::int64_t{31}, -2000.0}));
  EXPECT_EQ(w[1].method, Query::Method::is_null);
  EXPECT_EQ(w[1].attribute, "b");
  EXPECT_EQ(w[2].attribute, "c");
  EXPECT_EQ(w[3].queries[1].queries[0].method, Query::Method::less_than_equal);
  EXPECT_EQ(w[3].queries[1].queries[1].method, Query::Method::greater_than_equal);

  EXPECT_THAT(
      errors(where("[{equals: [a, 1]}]")),
      ElementsAre(
          "t.yaml:8:39: routes[0].where[0].equals: unknown method \"equals\" "
          "(did you mean \"equal\"? expected one of: equal, notEqual, lessThan, lessThanEqual, "
          "greaterThan, greaterThanEqual, isNull, isNotNull, and, or)"));
  EXPECT_THAT(errors(where("[{select: ['*']}]")),
              ElementsAre(HasSubstr("routes[0].where[0].select: select is not allowed in routes")));
  EXPECT_THAT(errors(where("[{greaterThan: [a, 1, 2]}]")),
              ElementsAre("t.yaml:8:52: routes[0].where[0].greaterThan: greaterThan takes 2 "
                          "arguments, [attribute, value], got 3"));
  EXPECT_THAT(errors(where("[{lessThan: [a, [1, 2]]}]")),
              ElementsAre(HasSubstr("routes[0].where[0].lessThan[1]: lessThan compares with one "
                                    "value, got a list")));
  EXPECT_THAT(errors(where("[{isNull: [a, b]}]")),
              ElementsAre(HasSubstr("isNull takes 1 argument, [attribute], got 2")));
  EXPECT_THAT(errors(where("[{equal: a}]")),
              ElementsAre(HasSubstr("equal takes a list: [attribute, value or list of values], "
                                    "got a scalar")));
  EXPECT_THAT(errors(where("[{or: []}]")),
              ElementsAre(HasSubstr("or takes a non-empty list of conditions")));
  EXPECT_THAT(errors(where("[{equal: [a, 1], notEqual: [b, 2]}]")),
              ElementsAre(HasSubstr("expected a condition: a mapping with one method")));
  EXPECT_THAT(errors(where("{equal: [a, 1]}")),
              ElementsAre(HasSubstr("routes[0].where: expected a list of conditions")));
  EXPECT_THAT(errors(where("[{and: [{equal: [a]}]}]")),
              ElementsAre(HasSubstr("routes[0].where[0].and[0].equal: equal takes 2 arguments")));
}

TEST(Loader, AuthNeedsExactlyOneForm) {
  EXPECT_THAT(errors(with("{session: s}", "{session: s, jwt: j}")),
              ElementsAre("t.yaml:4:22: appwrite.auth: two authentication forms given (session "
                          "and jwt); expected exactly one of session, jwt, api_key with user_id, "
                          "or email with password"));
  EXPECT_THAT(errors(with("{session: s}", "{}")),
              ElementsAre("t.yaml:4:3: appwrite.auth: no authentication given (expected exactly "
                          "one of session, jwt, api_key with user_id, or email with password)"));
  EXPECT_THAT(errors(with("{session: s}", "{api_key: k}")),
              ElementsAre("t.yaml:4:3: appwrite.auth: missing required key \"user_id\" (api_key "
                          "needs user_id)"));
  EXPECT_THAT(errors(with("  auth: {session: s}\n", "")),
              ElementsAre(HasSubstr("appwrite: missing required key \"auth\"")));
  auto r = load(with("{session: s}", "{email: e@x, password: pw}"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config->appwrite.auth.kind, AuthConfig::Kind::email_password);
  EXPECT_EQ(r.config->appwrite.auth.password.reveal(), "pw");
  r = load(with("{session: s}", "{api_key: k, user_id: u}"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config->appwrite.auth.kind, AuthConfig::Kind::api_key);
  EXPECT_EQ(r.config->appwrite.auth.user_id, "u");
}

TEST(Loader, WebhookChecks) {
  auto hook = [](std::string body) {
    return with("sinks:\n", "sinks:\n  h: {type: webhook, " + body + "}\n");
  };
  EXPECT_THAT(errors(hook("url: ftp://x")),
              ElementsAre("t.yaml:6:27: sinks.h.url: expected an http:// or https:// URL, got "
                          "\"ftp://x\""));
  EXPECT_THAT(errors(hook("url: http://x, signing: {scheme: standard}")),
              ElementsAre("t.yaml:6:37: sinks.h.signing: missing required key \"secret\" "
                          "(signing scheme \"standard\" needs a secret)"));
  EXPECT_THAT(errors(hook("url: http://x, concurrency: 0")),
              ElementsAre(HasSubstr("sinks.h.concurrency: expected an integer from 1 to 1024")));
  EXPECT_THAT(errors(hook("url: http://x, headers: {\"bad name\": x}")),
              ElementsAre(HasSubstr("invalid header name \"bad name\"")));
  auto r =
      load(hook("url: http://x, signing: {scheme: appwrite, secret: k}, "
                "batch: {max_events: 10}, follow_redirects: true, "
                "headers: {X-A: \"{route}\"}"));
  ASSERT_TRUE(r.ok()) << errors_of(r)[0];
  const auto& h = r.config->find_sink("h")->settings_as<WebhookSinkConfig>();
  EXPECT_EQ(h.signing.scheme, WebhookSinkConfig::Signing::Scheme::appwrite);
  EXPECT_EQ(h.batch.max_events, 10u);
  EXPECT_TRUE(h.follow_redirects);
  EXPECT_EQ(h.headers.at("X-A").source(), "{route}");
  EXPECT_EQ(h.timeout, Duration(15000));
  EXPECT_EQ(h.concurrency, 8u);
}

TEST(Loader, KafkaPropertiesAreCheckedByLibrdkafka) {
  EXPECT_THAT(
      errors(with("topic: t}", "topic: t, properties: {linger.mss: 5, linger.ms: abc}}")),
      ElementsAre("t.yaml:6:62: sinks.k.properties[\"linger.mss\"]: librdkafka rejected property "
                  "\"linger.mss\": No such configuration property: \"linger.mss\"",
                  "t.yaml:6:88: sinks.k.properties[\"linger.ms\"]: librdkafka rejected property "
                  "\"linger.ms\": Invalid value for configuration property "
                  "\"queue.buffering.max.ms\""));
  auto r = load(with("topic: t}", "topic: t, properties: {linger.ms: 5, acks: all}}"));
  ASSERT_TRUE(r.ok());
}

TEST(Loader, FileInterpolationAndTlsFilesAreRelativeToTheConfig) {
  TempDir dir;
  dir.write("session.txt", "from-file\n");
  dir.write("ca.pem", "not really a certificate");
  const auto path = dir.write(
      "r.yaml",
      with("{session: s}", "{session: \"${file:session.txt}\"}\n  tls: {ca_file: ca.pem}"));
  auto r = load_file(path, sinks::sink_types());
  ASSERT_TRUE(r.ok()) << errors_of(r)[0];
  EXPECT_EQ(r.config->appwrite.auth.session.reveal(), "from-file");
  EXPECT_EQ(r.config->appwrite.tls.ca_file, dir.path() + "/ca.pem");

  const auto bad =
      dir.write("bad.yaml",
                with("{session: s}", "{session: \"${file:nope.txt}\"}\n  tls: {ca_file: no.pem}"));
  auto e = load_file(bad, sinks::sink_types());
  EXPECT_THAT(errors_of(e),
              ElementsAre(bad + ":4:19: appwrite.auth.session: cannot read the file of "
                                "${file:nope.txt}: No such file or directory",
                          bad + ":5:18: appwrite.tls.ca_file: cannot read \"no.pem\": No such "
                                "file or directory"));
}

TEST(Loader, InterpolatedValuesAreNeverPrinted) {
  ScopedEnv secret("SLUICE_TEST_SECRET", "TOPSECRET");
  auto lines = errors(with("  project: p",
                           "  project: p\n  heartbeat: ${env:SLUICE_TEST_SECRET}\n"
                           "  subscribe: ${env:SLUICE_TEST_SECRET}"));
  lines.push_back("--");
  auto more = errors(with("topic: t}",
                          "topic: t, compression: gzip, properties: "
                          "{compression.codec: \"${env:SLUICE_TEST_SECRET}\", "
                          "linger.ms: \"${env:SLUICE_TEST_SECRET}\"}}"));
  lines.insert(lines.end(), more.begin(), more.end());
  ASSERT_EQ(lines.size(), 5u);
  for (const auto& line : lines) {
    EXPECT_THAT(line, ::testing::Not(HasSubstr("TOPSECRET")));
  }
  EXPECT_THAT(lines[0], HasSubstr("bad duration \"${env:SLUICE_TEST_SECRET}\""));
  EXPECT_THAT(lines[1], HasSubstr("unknown value \"${env:SLUICE_TEST_SECRET}\""));
  EXPECT_THAT(lines[3], HasSubstr("Invalid value \"${env:SLUICE_TEST_SECRET}\""));

  std::ostringstream os;
  os << Secret("TOPSECRET");
  EXPECT_EQ(os.str(), "<secret>");
}

TEST(Loader, AdminSection) {
  auto r =
      load("admin: {listen: \"[::1]:0\", token: t, tls: {verify: false}}\n" + std::string(kValid));
  EXPECT_THAT(errors_of(r), ElementsAre("t.yaml:1:38: admin.tls: a TLS server needs cert_file "
                                        "and key_file"));
  r = load("admin: {listen: \"[::1]:0\", token: t}\n" + std::string(kValid));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config->admin.host, "::1");
  EXPECT_EQ(r.config->admin.port, 0);
  EXPECT_EQ(r.config->admin.token.reveal(), "t");
  EXPECT_THAT(errors("admin: {listen: 9477}\n" + std::string(kValid)),
              ElementsAre(HasSubstr("t.yaml:1:17: admin.listen: bad address \"9477\"")));
}

TEST(Loader, StateDirAndBackfill) {
  auto r = load(
      "state_dir: /srv/sluice/\n"
      "backfill: {enabled: false, max_window: 2h, margin: 0s, page_size: 5000, "
      "rate: 0.5}\n" +
      with("sinks: [k]}", "sinks: [k], backfill: false}"));
  ASSERT_TRUE(r.ok()) << errors_of(r)[0];
  EXPECT_EQ(r.config->state_dir, "/srv/sluice");
  EXPECT_FALSE(r.config->backfill.enabled);
  EXPECT_EQ(r.config->backfill.max_window, std::chrono::hours(2));
  EXPECT_EQ(r.config->backfill.margin, Duration(0));
  EXPECT_EQ(r.config->backfill.page_size, 5000u);
  EXPECT_EQ(r.config->backfill.rate, 0.5);
  EXPECT_FALSE(r.config->routes[0].backfill);
}

TEST(Loader, TheBufferDirDefaultsToTheStateDirsSpool) {
  auto r = load("state_dir: /srv/s\nbuffer: {type: disk}\n" + std::string(kValid));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config->buffer.dir, "/srv/s/spool");
  EXPECT_EQ(r.config->sinks[0].buffer.dir, "/srv/s/spool");
  // In any order in the file, and an explicit dir still wins.
  r = load("buffer: {dir: /b}\nstate_dir: /srv/s\n" + std::string(kValid));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config->buffer.dir, "/b");
  r = load("buffer: {max_events: 5}\nstate_dir: /srv/s\n" + std::string(kValid));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config->sinks[0].buffer.dir, "/srv/s/spool");
}

TEST(Loader, BackfillErrorsAreLocated) {
  EXPECT_THAT(errors("backfill: {page_size: 5001}\n" + std::string(kValid)),
              ElementsAre("t.yaml:1:23: backfill.page_size: expected an integer from 1 to 5000, "
                          "got \"5001\""));
  EXPECT_THAT(errors("backfill: {page_size: 0}\n" + std::string(kValid)),
              ElementsAre(HasSubstr("t.yaml:1:23: backfill.page_size: expected an integer")));
  EXPECT_THAT(errors("backfill: {rate: 0}\n" + std::string(kValid)),
              ElementsAre("t.yaml:1:18: backfill.rate: expected a rate greater than zero"));
  EXPECT_THAT(errors("backfill: {rate: -1}\n" + std::string(kValid)),
              ElementsAre(HasSubstr("t.yaml:1:18: backfill.rate: expected a number from 0 to")));
  EXPECT_THAT(errors("backfill: {max_window: 0s}\n" + std::string(kValid)),
              ElementsAre("t.yaml:1:24: backfill.max_window: expected a duration greater than "
                          "zero"));
  EXPECT_THAT(errors("backfill: {margin: 5 s}\n" + std::string(kValid)),
              ElementsAre(HasSubstr("t.yaml:1:20: backfill.margin: bad duration \"5 s\"")));
  EXPECT_THAT(
      errors("backfill: {enable: false}\n" + std::string(kValid)),
      ElementsAre(HasSubstr("t.yaml:1:12: backfill.enable: unknown key \"enable\" (did you mean "
                            "\"enabled\"?")));
  EXPECT_THAT(errors("backfill: false\n" + std::string(kValid)),
              ElementsAre(HasSubstr("t.yaml:1:11: backfill: expected a mapping, got")));
  EXPECT_THAT(errors("state_dir: \"\"\n" + std::string(kValid)),
              ElementsAre(HasSubstr("t.yaml:1:12: state_dir: expected a non-empty string")));
  EXPECT_THAT(errors("state_dirr: /x\n" + std::string(kValid)),
              ElementsAre(HasSubstr("unknown key \"state_dirr\" (did you mean \"state_dir\"?")));
  EXPECT_THAT(errors(with("sinks: [k]}", "sinks: [k], backfill: no-thanks}")),
              ElementsAre(HasSubstr(
                  "t.yaml:8:52: routes[0].backfill: expected true or false, got \"no-thanks\"")));
  EXPECT_THAT(
      errors(with("sinks: [k]}", "sinks: [k], backfil: false}")),
      ElementsAre(HasSubstr("t.yaml:8:42: routes[0].backfil: unknown key \"backfil\" (did you mean "
                            "\"backfill\"?")));
}

TEST(Loader, SyntaxErrorsAreLocated) {
  EXPECT_THAT(errors("appwrite: [1, 2\nsinks: {}\n"),
              ElementsAre("t.yaml:2:6: YAML syntax error: end of sequence flow not found"));
}

TEST(Loader, WrongTypes) {
  EXPECT_THAT(errors(with("  project: p", "  project: [p]")),
              ElementsAre("t.yaml:3:12: appwrite.project: expected a string, got a list"));
  EXPECT_THAT(errors(with("  project: p", "  project:")),
              ElementsAre("t.yaml:3:3: appwrite.project: expected a string, got nothing"));
  EXPECT_THAT(errors(with("{session: s}", "[s]")),
              ElementsAre("t.yaml:4:9: appwrite.auth: expected a mapping, got a list"));
}

TEST(Loader, ReportsEveryErrorInFileOrder) {
  auto lines = errors(R"(appwrite:
  endpoint: https://a/v1
  project: p
  auth: {}
  heartbeat: 5x
sinks:
  k: {type: kafka, brokers: [b], topic: "{x}"}
  f: {type: fyle}
routes:
  - {name: r, channels: [], sinks: [k, z]}
)");
  EXPECT_EQ(lines.size(), 6u);
  EXPECT_THAT(lines[0], HasSubstr("t.yaml:4:3: appwrite.auth: no authentication"));
  EXPECT_THAT(lines[1], HasSubstr("t.yaml:5:14: appwrite.heartbeat: bad duration"));
  EXPECT_THAT(lines[2], HasSubstr("t.yaml:7:41: sinks.k.topic: bad template"));
  EXPECT_THAT(lines[3], HasSubstr("t.yaml:8:13: sinks.f.type: unknown value \"fyle\""));
  EXPECT_THAT(lines[4], HasSubstr("t.yaml:10:25: routes[0].channels: expected at least one"));
  // A sink that failed validation still counts as declared: only `z` is unknown.
  EXPECT_THAT(lines[5], HasSubstr("t.yaml:10:40: routes[0].sinks[1]: unknown sink \"z\" (known: "
                                  "f, k)"));
}

TEST(Loader, UrlsAreCheckedCompletelyWithoutPrintingASecret) {
  // A space passes a scheme-and-host check but no URL parser: refused at load, quoted by source.
  ScopedEnv hook("SLUICE_TEST_HOOK", "https://hooks.example/T0/se cret-TOPSECRET");
  auto hook_sink = [](std::string url) {
    return with("sinks:\n", "sinks:\n  h: {type: webhook, url: " + url + "}\n");
  };
  const auto space = errors(hook_sink("\"${env:SLUICE_TEST_HOOK}\""));
  ASSERT_EQ(space.size(), 1u);
  EXPECT_THAT(space[0], HasSubstr("t.yaml:6:27: sinks.h.url: expected an http:// or https:// URL, "
                                  "got \"${env:SLUICE_TEST_HOOK}\": not a valid URL"));
  EXPECT_THAT(space[0], ::testing::Not(HasSubstr("TOPSECRET")));
  EXPECT_THAT(errors(hook_sink("\"http://x:0/\"")), ElementsAre(HasSubstr("port must be")));
  EXPECT_THAT(errors(hook_sink("\"http://x:99999/\"")), ElementsAre(HasSubstr("port must be")));
  EXPECT_THAT(errors(hook_sink("\"http:///path\"")), ElementsAre(HasSubstr("no host")));
  // User info in a webhook URL would never be sent: refused rather than dropped.
  EXPECT_THAT(errors(hook_sink("\"https://u:p@hooks.example/\"")),
              ElementsAre(HasSubstr("user info (user:password@) is not supported here")));
  // The scheme is case-insensitive and stored in lower case, as the sink expects it.
  auto upper = load(hook_sink("\"HTTPS://hooks.example/x\""));
  ASSERT_TRUE(upper.ok()) << errors_of(upper)[0];
  EXPECT_EQ(upper.config->find_sink("h")->settings_as<WebhookSinkConfig>().url,
            "https://hooks.example/x");
}

TEST(Loader, TheShownRealtimeEndpointHidesUserInfoAndASecretsPath) {
  auto plain = load(with("https://a.example/v1", "https://u:pw@a.example:8443/v1?x=1"));
  ASSERT_TRUE(plain.ok()) << errors_of(plain)[0];
  EXPECT_EQ(plain.config->appwrite.realtime_endpoint, "wss://u:pw@a.example:8443/v1?x=1/realtime");
  EXPECT_EQ(plain.config->appwrite.realtime_endpoint_shown,
            "wss://***@a.example:8443/v1?x=1/realtime");
  ScopedEnv endpoint("SLUICE_TEST_ENDPOINT", "http://bridge:TOPSECRET@a.example/v1/k-TOPSECRET");
  auto secret = load(with("https://a.example/v1", "${env:SLUICE_TEST_ENDPOINT}"));
  ASSERT_TRUE(secret.ok()) << errors_of(secret)[0];
  EXPECT_EQ(secret.config->appwrite.realtime_endpoint_shown, "ws://***@a.example/…");
  auto given = load(with("https://a.example/v1",
                         "https://a.example/v1\n  realtime_endpoint: ${env:SLUICE_TEST_ENDPOINT}"));
  EXPECT_FALSE(given.ok());  // http is not a realtime scheme; the message quotes the source
  EXPECT_THAT(errors_of(given), ElementsAre(HasSubstr("got \"${env:SLUICE_TEST_ENDPOINT}\"")));
}

// Routes whose `where` is an alias bomb: each level is a list of ten `or`s of the level below,
// so `levels` levels stand for 10^levels conditions in a file of a few lines.
std::string alias_bomb(int levels) {
  std::string where = "      - or: &l0 [{equal: [s, 1]}";
  for (int i = 1; i < 10; ++i)
    where += ", {equal: [s, 1]}";
  where += "]\n";
  for (int level = 1; level < levels; ++level) {
    const std::string below = "{or: *l" + std::to_string(level - 1) + "}";
    where += "      - or: &l" + std::to_string(level) + " [" + below;
    for (int i = 1; i < 10; ++i)
      where += ", " + below;
    where += "]\n";
  }
  return with("  - {name: r, channels: [c], sinks: [k]}\n",
              "  - name: r\n    channels: [c]\n    sinks: [k]\n    where:\n" + where);
}

TEST(Loader, AliasBombsAreRefusedQuicklyWithALocatedError) {
  for (int levels : {6, 9}) {
    const auto start = std::chrono::steady_clock::now();
    const auto lines = errors(alias_bomb(levels));
    const auto took = std::chrono::steady_clock::now() - start;
    ASSERT_EQ(lines.size(), 1u) << levels;
    EXPECT_THAT(lines[0], ::testing::MatchesRegex("t\\.yaml:[0-9]+:[0-9]+: the configuration "
                                                  "expands to more than 200000 values .*"));
    // Bounded, not fast: the walk stops at the budget whatever the bomb multiplies to.
    EXPECT_LT(took, std::chrono::seconds(10)) << levels;
  }
  // Aliases within the budget are fine: three levels are a thousand conditions.
  auto small = load(alias_bomb(3));
  ASSERT_TRUE(small.ok()) << errors_of(small)[0];
}

TEST(Loader, DeepNestingIsRefused) {
  std::string deep = "[";
  for (int i = 0; i < 100; ++i)
    deep += "[";
  deep += std::string(101, ']');
  EXPECT_THAT(errors(with("routes:", "deep: " + deep + "\nroutes:")),
              ElementsAre(HasSubstr("nesting deeper than 64 mappings and lists")));
}

TEST(Loader, AFileOverTheSizeLimitIsRefused) {
  TempDir dir;
  std::string big = kValid;
  big += "# " + std::string(kMaxFileBytes, 'x') + "\n";
  const auto path = dir.write("big.yaml", big);
  EXPECT_THAT(errors_of(load_file(path, sinks::sink_types())),
              ElementsAre(path + ": the configuration file is larger than 8 MiB"));
  // A device that never ends is read only to one byte past the limit.
  EXPECT_THAT(errors_of(load_file("/dev/zero", sinks::sink_types())),
              ElementsAre("/dev/zero: the configuration file is larger than 8 MiB"));
}

TEST(Loader, FileInterpolationIsBounded) {
  EXPECT_THAT(errors(with("auth: {session: s}", "auth: {session: \"${file:/dev/zero}\"}")),
              ElementsAre("t.yaml:4:19: appwrite.auth.session: cannot read the file of "
                          "${file:/dev/zero}: larger than 1024 KiB"));
}

TEST(Loader, MissingFile) {
  auto r = load_file("/nonexistent/sluice.yaml", sinks::sink_types());
  EXPECT_THAT(errors_of(r), ElementsAre("/nonexistent/sluice.yaml: cannot read the configuration "
                                        "file: No such file or directory"));
}

}  // namespace
}  // namespace sluice::config
