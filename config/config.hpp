#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <variant>
#include <vector>

#include "core/log.hpp"
#include "core/query.hpp"
#include "core/template.hpp"

// The typed form of routes.yaml (DESIGN.md §3). Produced by config::load() with every default
// filled in and every value validated, so the rest of the daemon never re-checks it. Plain
// values: a reload builds a new Config and the daemon swaps it in whole.
namespace sluice::config {

using Duration = std::chrono::milliseconds;

// A value that must never reach a log line, /status or an error message. Streaming it prints
// a placeholder; the value is only reachable through reveal().
class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string value) : value_(std::move(value)) {}
  const std::string& reveal() const { return value_; }
  bool empty() const { return value_.empty(); }
  friend std::ostream& operator<<(std::ostream& os, const Secret&) { return os << "<secret>"; }
  bool operator==(const Secret&) const = default;

 private:
  std::string value_;
};

// Where a value was written, for messages that refer back to the file.
struct Location {
  std::string file;
  int line = 0;    // 1-based
  int column = 0;  // 1-based
  bool operator==(const Location&) const = default;
};

struct TlsConfig {
  std::string ca_file;    // empty: the system store
  bool verify = true;     // false only when the file says so
  std::string cert_file;  // client certificate (mTLS), optional
  std::string key_file;
  bool operator==(const TlsConfig&) const = default;
};

struct AuthConfig {
  enum class Kind { session, jwt, api_key, email_password };
  Kind kind = Kind::session;
  Secret session;  // kind == session
  Secret jwt;      // kind == jwt
  Secret api_key;  // kind == api_key, with user_id
  std::string user_id;
  std::string email;  // kind == email_password, with password
  Secret password;
  bool operator==(const AuthConfig&) const = default;
};

struct ReconnectConfig {
  Duration initial{1000};
  Duration max{60000};
  double multiplier = 2.0;
  bool operator==(const ReconnectConfig&) const = default;
};

struct AppwriteConfig {
  enum class Subscribe { url, message, auto_ };
  std::string endpoint;           // REST endpoint, e.g. https://host/v1
  std::string realtime_endpoint;  // always set after loading: derived from endpoint if absent
  std::string project;
  AuthConfig auth;
  TlsConfig tls;
  Subscribe subscribe = Subscribe::auto_;
  Duration heartbeat{20000};
  ReconnectConfig reconnect;
  bool operator==(const AppwriteConfig&) const = default;
};

struct AdminConfig {
  std::string host = "127.0.0.1";
  std::uint16_t port = 9477;
  Secret token;                  // optional bearer token for /metrics and /status
  std::optional<TlsConfig> tls;  // optional TLS for the admin server
  bool operator==(const AdminConfig&) const = default;
};

struct LogConfig {
  log::Level level = log::Level::info;
  log::Format format = log::Format::text;
  bool operator==(const LogConfig&) const = default;
};

struct BufferConfig {
  enum class Type { memory, disk };
  enum class WhenFull { block, drop_newest, drop_oldest };
  Type type = Type::memory;
  std::string dir = "/var/lib/sluice/spool";
  std::uint64_t max_bytes = 64ull << 20;
  std::uint64_t max_events = 100000;
  WhenFull when_full = WhenFull::block;
  bool operator==(const BufferConfig&) const = default;
};

struct RetryConfig {
  Duration initial{500};
  Duration max{30000};
  Duration max_elapsed{15 * 60 * 1000};
  bool operator==(const RetryConfig&) const = default;
};

struct KafkaSinkConfig {
  enum class Compression { none, gzip, snappy, lz4, zstd };
  std::vector<std::string> brokers;
  Template topic;
  std::optional<Template> key;
  Compression compression = Compression::none;
  std::map<std::string, std::string> properties;  // passed to librdkafka
  std::map<std::string, Template> headers;        // extra headers
  bool operator==(const KafkaSinkConfig&) const = default;
};

struct WebhookSinkConfig {
  struct Signing {
    enum class Scheme { none, standard, appwrite };
    Scheme scheme = Scheme::none;
    Secret secret;
    bool operator==(const Signing&) const = default;
  };
  struct Batch {
    std::uint32_t max_events = 0;  // 0: batching off
    std::uint64_t max_bytes = 1ull << 20;
    Duration max_wait{100};
    bool operator==(const Batch&) const = default;
  };
  std::string url;
  Signing signing;
  Duration timeout{15000};
  std::uint32_t concurrency = 8;
  std::map<std::string, Template> headers;
  Batch batch;
  TlsConfig tls;
  bool follow_redirects = false;
  bool operator==(const WebhookSinkConfig&) const = default;
};

struct FileSinkConfig {
  enum class Fsync { always, batch, never };
  Template path;                      // strftime allowed
  std::uint64_t rotate_max_size = 0;  // 0: no size rotation
  Duration rotate_max_age{0};         // 0: no age rotation
  Fsync fsync = Fsync::batch;
  bool operator==(const FileSinkConfig&) const = default;
};

struct SinkConfig {
  std::string name;
  std::variant<KafkaSinkConfig, WebhookSinkConfig, FileSinkConfig> settings;
  BufferConfig buffer;  // the top-level `buffer` with this sink's overrides applied
  RetryConfig retry;
  std::string dead_letter;  // empty: failed records are only logged and counted
  // Write a marker record after every upstream gap (a window in which events may be missing).
  bool gap_marker = false;
  Location location;  // where the sink was declared

  std::string_view type_name() const;  // "kafka", "webhook", "file"
  // Same delivery settings: a reload keeps this sink's worker, queue and connections. The
  // location is not compared, so moving a sink within the file does not restart it.
  bool same_settings(const SinkConfig& other) const {
    return name == other.name && settings == other.settings && buffer == other.buffer &&
           retry == other.retry && dead_letter == other.dead_letter &&
           gap_marker == other.gap_marker;
  }
};

struct RouteConfig {
  std::string name;
  std::vector<std::string> channels;  // exact channel names, never empty
  std::vector<std::string> events;    // patterns, `*` is one segment; empty: every event
  std::vector<Query> where;           // all must hold on the payload
  std::vector<std::string> sinks;     // names of sinks in Config::sinks
  Location location;
};

struct Config {
  std::string path;  // the file it was loaded from
  AppwriteConfig appwrite;
  AdminConfig admin;
  LogConfig log;
  BufferConfig buffer;
  std::vector<SinkConfig> sinks;  // in file order
  std::vector<RouteConfig> routes;

  const SinkConfig* find_sink(std::string_view name) const;
};

}  // namespace sluice::config
