#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "core/log.hpp"
#include "core/query.hpp"

// The typed form of routes.yaml (config/routes.example.yaml documents every key). Produced by
// config::load() with every default filled in and every value validated, so the rest of the daemon
// never re-checks it. Plain values: a reload builds a new Config and the daemon swaps it in whole.
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
  // realtime_endpoint as /status and logs show it: see redacted_url() (config/reader.hpp).
  std::string realtime_endpoint_shown;
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

// Gap recovery (the top-level `backfill:` mapping): after a gap, what changed is listed from
// Appwrite's REST API and delivered through the routes.
struct BackfillConfig {
  bool enabled = true;
  Duration max_window{24 * 60 * 60 * 1000};  // older parts of a gap are reported, not fetched
  Duration margin{5000};                     // clock-skew margin subtracted from every checkpoint
  std::uint32_t page_size = 500;             // 1..5000: Appwrite's limit() maximum
  double rate = 10.0;                        // list requests per second, > 0
  bool operator==(const BackfillConfig&) const = default;
};

struct RetryConfig {
  Duration initial{500};
  Duration max{30000};
  Duration max_elapsed{15 * 60 * 1000};
  bool operator==(const RetryConfig&) const = default;
};

// The settings of one sink type (`sinks.NAME` in routes.yaml), declared and parsed by the sink's
// folder (sinks/kafka/, sinks/webhook/, sinks/file/): config/ knows them only through this
// interface, so adding a sink type does not touch the loader. Immutable once loaded; shared by
// the configurations of a reload.
class SinkSettings {
 public:
  virtual ~SinkSettings() = default;
  virtual std::string_view type_name() const = 0;  // the `type:` value, e.g. "kafka"
  virtual bool equals(const SinkSettings& other) const = 0;
};

// SinkSettings over a plain struct `T` that has `static constexpr std::string_view kType` and
// `operator==`.
template <class T>
class SinkSettingsOf final : public SinkSettings {
 public:
  explicit SinkSettingsOf(T value) : value_(std::move(value)) {}
  std::string_view type_name() const override { return T::kType; }
  bool equals(const SinkSettings& other) const override {
    const auto* same_type = dynamic_cast<const SinkSettingsOf*>(&other);
    return same_type != nullptr && same_type->value_ == value_;
  }
  const T& value() const { return value_; }

 private:
  T value_;
};

template <class T>
std::shared_ptr<const SinkSettings> make_settings(T value) {
  return std::make_shared<const SinkSettingsOf<T>>(std::move(value));
}

struct SinkConfig {
  std::string name;
  std::shared_ptr<const SinkSettings> settings;  // never null once loaded
  BufferConfig buffer;  // the top-level `buffer` with this sink's overrides applied
  RetryConfig retry;
  std::string dead_letter;  // empty: failed records are only logged and counted
  // Write a marker record after every upstream gap (a window in which events may be missing).
  bool gap_marker = false;
  Location location;  // where the sink was declared

  std::string_view type_name() const;  // "kafka", "webhook", "file"
  // The settings of type `T`; throws std::bad_cast when the sink is of another type.
  template <class T>
  const T& settings_as() const {
    return dynamic_cast<const SinkSettingsOf<T>&>(*settings).value();
  }
  // Same delivery settings: a reload keeps this sink's worker, queue and connections. The
  // location is not compared, so moving a sink within the file does not restart it.
  bool same_settings(const SinkConfig& other) const;
};

struct RouteConfig {
  std::string name;
  std::vector<std::string> channels;  // exact channel names, never empty
  std::vector<std::string> events;    // patterns, `*` is one segment; empty: every event
  std::vector<Query> where;           // all must hold on the payload
  std::vector<std::string> sinks;     // names of sinks in Config::sinks
  bool backfill = true;               // `backfill: false`: this route's channels are not recovered
  Location location;
};

struct Config {
  std::string path;  // the file it was loaded from
  AppwriteConfig appwrite;
  AdminConfig admin;
  LogConfig log;
  // Checkpoints for gap recovery, and the disk buffer's default directory (<state_dir>/spool).
  std::string state_dir = "/var/lib/sluice";
  BackfillConfig backfill;
  BufferConfig buffer;
  std::uint64_t dedup_window = 65536;  // recent event ids whose repeats are dropped; 0: off
  std::vector<SinkConfig> sinks;       // in file order
  std::vector<RouteConfig> routes;

  const SinkConfig* find_sink(std::string_view name) const;
};

}  // namespace sluice::config
