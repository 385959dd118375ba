#include "config/loader.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <utility>

#include "config/config_map.hpp"
#include "config/route_reader.hpp"
#include "config/sink_type.hpp"
#include "config/units.hpp"

// The sections of routes.yaml, each declared once as a ConfigMap (config/config_map.hpp); the
// keys of a sink's own type come from that type (config/sink_type.hpp).
namespace sluice::config {

namespace {

constexpr std::string_view kAuthForms =
    "session, jwt, api_key with user_id, or email with password";

std::string derive_realtime(const std::string& endpoint) {
  std::string base = endpoint;
  while (!base.empty() && base.back() == '/')
    base.pop_back();
  if (base.starts_with("https://"))
    return "wss://" + base.substr(8) + "/realtime";
  return "ws://" + base.substr(7) + "/realtime";
}

// For the backoffs (appwrite.reconnect, a sink's retry).
template <class T>
void check_max_at_least_initial(Reader& r, const MapView& map, T& out) {
  if (out.max < out.initial) {
    const auto* at = map.get("max") ? map.get("max") : map.get("initial");
    r.error(at ? at->mark() : map.anchor(), at ? at->path : map.path(),
            "max must be at least initial");
  }
}

const ConfigMap<ReconnectConfig>& reconnect_map() {
  using R = ReconnectConfig;
  static const ConfigMap<R> table(
      {
          key("initial", &R::initial, as::duration(), "the first delay before reconnecting"),
          key("max", &R::max, as::duration(), "the longest delay"),
          key("multiplier", &R::multiplier, as::number(1.0, 100.0), "growth of the delay"),
      },
      check_max_at_least_initial<R>);
  return table;
}

// Exactly one form: the forms given are found before any key is read, so two forms are one
// error, not one per key.
const ConfigMap<AuthConfig>& auth_map() {
  using A = AuthConfig;
  using Kind = A::Kind;
  static const ConfigMap<A> table(
      {
          key("session", &A::session, as::secret(), "an Appwrite session secret"),
          key("jwt", &A::jwt, as::secret(), "a JWT"),
          key("api_key", &A::api_key, as::secret(), "an API key, with user_id"),
          key("user_id", &A::user_id, as::string(), "the user the API key acts for"),
          key("email", &A::email, as::string(), "an account's email, with password"),
          key("password", &A::password, as::secret(), "the account's password"),
      },
      [](Reader& r, const MapView& map, A& out) {
        auto pair = [&](std::string_view a, std::string_view b) {
          if (!map.get(a)) {
            r.error(map.anchor(), map.path(),
                    "missing required key " + quote(a) + " (" + std::string(b) + " needs " +
                        std::string(a) + ")");
          }
        };
        if (out.kind == Kind::api_key) {
          pair("api_key", "user_id");
          pair("user_id", "api_key");
        } else if (out.kind == Kind::email_password) {
          pair("email", "password");
          pair("password", "email");
        }
      },
      [](Reader& r, const MapView& map, A& out) {
        // The forms given, in file order, each with the key that introduced it.
        struct Form {
          Kind kind;
          std::string name;
          const Field* field;
        };
        std::vector<Form> forms;
        auto add = [&](Kind kind, std::string name, const Field* field) {
          for (const auto& form : forms) {
            if (form.kind == kind)
              return;
          }
          forms.push_back({kind, std::move(name), field});
        };
        for (const auto& field : map.fields()) {
          const auto& given = field.key.Scalar();
          if (given == "session")
            add(Kind::session, "session", &field);
          if (given == "jwt")
            add(Kind::jwt, "jwt", &field);
          if (given == "api_key" || given == "user_id")
            add(Kind::api_key, "api_key with user_id", &field);
          if (given == "email" || given == "password")
            add(Kind::email_password, "email with password", &field);
        }
        if (forms.empty()) {
          r.error(
              map.anchor(), map.path(),
              "no authentication given (expected exactly one of " + std::string(kAuthForms) + ")");
          return false;
        }
        if (forms.size() > 1) {
          r.error(forms[1].field->key.Mark(), map.path(),
                  "two authentication forms given (" + forms[0].name + " and " + forms[1].name +
                      "); expected exactly one of " + std::string(kAuthForms));
          return false;
        }
        out.kind = forms[0].kind;
        return true;
      });
  return table;
}

const ConfigMap<AppwriteConfig>& appwrite_map() {
  using A = AppwriteConfig;
  using S = A::Subscribe;
  static const ConfigMap<A> table(
      {
          custom_key<A>(
              "endpoint",
              [](Reader& r, const Field& f, A& out) {
                if (auto url =
                        r.checked_url(f, {"http", "https"}, "an http:// or https:// URL", true)) {
                  out.endpoint = std::move(url->value);
                  out.realtime_endpoint_shown =
                      redacted_url(derive_realtime(out.endpoint), url->secret);
                }
              },
              "the REST endpoint, e.g. https://host/v1", true),
          custom_key<A>(
              "realtime_endpoint",
              [](Reader& r, const Field& f, A& out) {
                if (auto url = r.checked_url(f, {"ws", "wss"}, "a ws:// or wss:// URL", true)) {
                  out.realtime_endpoint = std::move(url->value);
                  out.realtime_endpoint_shown = redacted_url(out.realtime_endpoint, url->secret);
                }
              },
              "the realtime endpoint; derived from endpoint when absent"),
          required_key("project", &A::project, as::string(), "the Appwrite project ID"),
          required_key("auth", &A::auth, auth_map(), "exactly one of " + std::string(kAuthForms)),
          key("tls", &A::tls, as::tls(), "CA and client certificate for the upstream"),
          key("subscribe", &A::subscribe,
              as::enumeration<S>({{"url", S::url}, {"message", S::message}, {"auto", S::auto_}}),
              "how channels are subscribed"),
          key("heartbeat", &A::heartbeat, as::duration(), "the ping interval"),
          key("reconnect", &A::reconnect, reconnect_map(), "the reconnect backoff"),
      },
      [](Reader&, const MapView& map, A& out) {
        if (!map.get("realtime_endpoint") && !out.endpoint.empty())
          out.realtime_endpoint = derive_realtime(out.endpoint);
      });
  return table;
}

const ConfigMap<AdminConfig>& admin_map() {
  using A = AdminConfig;
  static const ConfigMap<A> table({
      custom_key<A>(
          "listen",
          [](Reader& r, const Field& f, A& out) {
            auto s = r.scalar(f, "HOST:PORT");
            if (!s)
              return;
            std::string message;
            if (auto hp = parse_host_port(s->value, message)) {
              out.host = hp->host;
              out.port = hp->port;
            } else {
              r.error(f.mark(), f.path, "bad address " + quote(s->display) + ": " + message);
            }
          },
          "HOST:PORT of /metrics, /healthz, /readyz and /status"),
      key("token", &A::token, as::secret(), "bearer token for /metrics and /status"),
      key("tls", &A::tls, as::tls(true), "the admin server's certificate and key"),
  });
  return table;
}

const ConfigMap<LogConfig>& log_map() {
  using L = LogConfig;
  using Level = log::Level;
  using Format = log::Format;
  static const ConfigMap<L> table({
      key("level", &L::level,
          as::enumeration<Level>({{"debug", Level::debug},
                                  {"info", Level::info},
                                  {"warn", Level::warn},
                                  {"error", Level::error}}),
          "the lowest level logged"),
      key("format", &L::format,
          as::enumeration<Format>({{"text", Format::text}, {"json", Format::json}}),
          "text for people, json for machines"),
  });
  return table;
}

const ConfigMap<BufferConfig>& buffer_map() {
  using B = BufferConfig;
  using T = B::Type;
  using W = B::WhenFull;
  static const ConfigMap<B> table({
      key("type", &B::type, as::enumeration<T>({{"memory", T::memory}, {"disk", T::disk}}),
          "where queued events wait"),
      key("dir", &B::dir, as::string(), "the disk buffer's directory"),
      key("max_bytes", &B::max_bytes, as::size(), "bytes queued at most"),
      key("max_events", &B::max_events, as::integer(1, std::numeric_limits<std::uint32_t>::max()),
          "events queued at most"),
      key("when_full", &B::when_full,
          as::enumeration<W>({{"block", W::block},
                              {"drop_newest", W::drop_newest},
                              {"drop_oldest", W::drop_oldest}}),
          "what a full buffer does"),
  });
  return table;
}

const ConfigMap<BackfillConfig>& backfill_map() {
  using B = BackfillConfig;
  static const ConfigMap<B> table({
      key("enabled", &B::enabled, as::boolean(), "whether gaps are recovered at all"),
      key("max_window", &B::max_window, as::duration(),
          "how far back a gap is fetched; older parts are reported, not fetched"),
      key("margin", &B::margin, as::duration(true),
          "clock-skew margin subtracted from every checkpoint"),
      key("page_size", &B::page_size, as::integer(1, 5000), "rows listed per request"),
      custom_key<B>(
          "rate",
          [](Reader& r, const Field& f, B& out) {
            auto n = r.number(f, 0, 1000);
            if (n && *n <= 0) {
              r.error(f.mark(), f.path, "expected a rate greater than zero");
              return;
            }
            if (n)
              out.rate = *n;
          },
          "list requests per second"),
  });
  return table;
}

const ConfigMap<RetryConfig>& retry_map() {
  using R = RetryConfig;
  static const ConfigMap<R> table(
      {
          key("initial", &R::initial, as::duration(), "the first delay between attempts"),
          key("max", &R::max, as::duration(), "the longest delay"),
          key("max_elapsed", &R::max_elapsed, as::duration(), "how long a record is retried"),
      },
      check_max_at_least_initial<R>);
  return table;
}

// The keys every sink has, whatever its type. `type` is read first, by the loader, since the
// other keys depend on it.
const ConfigMap<SinkConfig>& sink_map() {
  using S = SinkConfig;
  static const ConfigMap<S> table({
      custom_key<S>("type", {}, "the sink type"),
      key("buffer", &S::buffer, buffer_map(), "overrides of the top-level buffer"),
      key("retry", &S::retry, retry_map(), "the retry backoff"),
      key("dead_letter", &S::dead_letter, as::string(), "the file failed records go to"),
      key("gap_marker", &S::gap_marker, as::boolean(), "write a marker after an upstream gap"),
  });
  return table;
}

// Walks the tree as the loader will, aliases expanded, and stops at the first node past
// kMaxNodes or kMaxDepth; false when it stopped. Stopping early keeps the walk itself bounded
// whatever the aliases multiply to.
bool within_bounds(Reader& r, const YAML::Node& node, std::size_t depth, std::size_t& nodes) {
  if (++nodes > kMaxNodes) {
    r.error(node.Mark(), "",
            "the configuration expands to more than " + std::to_string(kMaxNodes) +
                " values (a YAML alias counts each value it stands for every time it is used)");
    return false;
  }
  if (!node.IsMap() && !node.IsSequence())
    return true;
  if (depth >= kMaxDepth) {
    r.error(node.Mark(), "",
            "nesting deeper than " + std::to_string(kMaxDepth) + " mappings and lists");
    return false;
  }
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (node.IsMap()) {
      if (!within_bounds(r, it->first, depth + 1, nodes) ||
          !within_bounds(r, it->second, depth + 1, nodes)) {
        return false;
      }
    } else if (!within_bounds(r, *it, depth + 1, nodes)) {
      return false;
    }
  }
  return true;
}

// One load: the reader and what the sections need from each other. Lives for one call of
// load_string()/load_file() on the caller's thread.
class Loader {
 public:
  Loader(std::string file, InterpolationEnv env, const SinkTypes& types,
         std::string default_state_dir)
      : reader_(std::move(file), std::move(env)),
        types_(types),
        default_state_dir_(std::move(default_state_dir)) {}

  LoadResult run(std::string_view text);

 private:
  void sinks(const Field& f, Config& out);
  std::optional<SinkConfig> sink(const Field& f, const BufferConfig& buffer_defaults);

  Reader reader_;
  const SinkTypes& types_;
  std::string default_state_dir_;
  // Every sink name declared, valid or not, so a route naming a broken sink is not reported
  // a second time as naming a missing one.
  std::vector<std::string> sink_names_;
};

void Loader::sinks(const Field& f, Config& out) {
  MapView map(reader_, f.value, f.key.Mark(), f.path);
  if (!map.ok())
    return;
  if (map.fields().empty()) {
    reader_.error(f.key.Mark(), f.path, "expected at least one sink");
    return;
  }
  for (const auto& s : map.fields()) {
    sink_names_.push_back(s.key.Scalar());
    if (auto sink_config = sink(s, out.buffer))
      out.sinks.push_back(std::move(*sink_config));
  }
}

std::optional<SinkConfig> Loader::sink(const Field& f, const BufferConfig& buffer_defaults) {
  const std::size_t errors_before = reader_.error_count();
  SinkConfig out;
  out.name = f.key.Scalar();
  out.location = {reader_.file(), f.key.Mark().line + 1, f.key.Mark().column + 1};
  out.buffer = buffer_defaults;
  // The name is also a directory under buffer.dir (the disk buffer): "." and ".." would put
  // it in, or above, the directory every other sink's buffer lives in.
  const bool good_name =
      !out.name.empty() && out.name != "." && out.name != ".." &&
      std::all_of(out.name.begin(), out.name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
      });
  if (!good_name) {
    reader_.error(f.key.Mark(), f.path,
                  "bad sink name " + quote(out.name) +
                      " (use letters, digits, '_', '-' and '.'; not \".\" or \"..\")");
  }
  MapView map(reader_, f.value, f.key.Mark(), f.path);
  if (!map.ok())
    return std::nullopt;
  std::vector<std::pair<std::string_view, const SinkType*>> types;
  std::vector<std::string> type_names;
  for (const auto& type : types_.all())
    types.emplace_back(type.name, &type);
  std::sort(types.begin(), types.end());
  for (const auto& [name, type] : types)
    type_names.emplace_back(name);
  const auto* type_field = map.require("type", "one of: " + join(type_names));
  if (!type_field)
    return std::nullopt;
  const auto type = reader_.enumeration<const SinkType*>(*type_field, types);
  if (!type)
    return std::nullopt;  // the other keys cannot be checked without a type
  sink_map().check_keys(map, (*type)->keys);
  out.settings = (*type)->parse(reader_, map);
  sink_map().read_keys(reader_, map, out);
  if (reader_.error_count() != errors_before)
    return std::nullopt;
  return out;
}

LoadResult Loader::run(std::string_view text) {
  LoadResult result;
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    reader_.error(e.mark, "", "YAML syntax error: " + e.msg);
    result.errors = reader_.take_errors();
    return result;
  }
  const YAML::Mark top{};  // line 0, column 0: the start of the file
  if (root.IsNull()) {
    reader_.error(top, "",
                  "the file is empty (expected a mapping with appwrite, sinks and routes)");
    result.errors = reader_.take_errors();
    return result;
  }
  if (std::size_t nodes = 0; !within_bounds(reader_, root, 0, nodes)) {
    result.errors = reader_.take_errors();
    return result;
  }
  // About 40 bytes per id: 16 Mi ids take some 640 MiB.
  constexpr std::uint64_t kMaxDedupWindow = 1u << 24;
  Config config;
  config.path = reader_.file();
  config.state_dir = default_state_dir_;
  config.buffer.dir = config.state_dir + "/spool";
  // Sections in dependency order: a sink's buffer starts from the top-level one, and routes
  // refer to sinks.
  using C = Config;
  const ConfigMap<C> root_map({
      required_key("appwrite", &C::appwrite, appwrite_map(),
                   "the Appwrite endpoint, project and auth"),
      key("admin", &C::admin, admin_map(), "the admin server"),
      key("log", &C::log, log_map(), "logging"),
      // Before `buffer`: the buffer's directory defaults to <state_dir>/spool, and `buffer`
      // (read next) overrides it when it names a dir.
      custom_key<C>(
          "state_dir",
          [](Reader& r, const Field& f, C& out) {
            if (auto dir = r.string(f)) {
              out.state_dir = std::move(*dir);
              while (out.state_dir.size() > 1 && out.state_dir.back() == '/')
                out.state_dir.pop_back();
              out.buffer.dir = out.state_dir + "/spool";
            }
          },
          "the directory of the recovery checkpoints (and of the disk buffer by default)"),
      key("backfill", &C::backfill, backfill_map(), "gap recovery"),
      key("buffer", &C::buffer, buffer_map(), "every sink's queue, unless it overrides it"),
      key("dedup_window", &C::dedup_window, as::integer(0, kMaxDedupWindow),
          "how many recent event ids to drop repeats of; 0 turns it off"),
      custom_key<C>(
          "sinks", [this](Reader&, const Field& f, C& out) { sinks(f, out); },
          "a mapping of sink names to sinks", true),
      custom_key<C>(
          "routes",
          [this](Reader& r, const Field& f, C& out) { read_routes(r, f, sink_names_, out.routes); },
          "a list of routes", true),
      // The cases are read by `sluice test` (tools/route_test.cpp); the daemon ignores them.
      custom_key<C>(
          "tests",
          [](Reader& r, const Field& f, C&) {
            if (!f.value.IsSequence() && !f.value.IsScalar()) {
              r.error(f.mark(), f.path,
                      "expected a list of test cases or the name of a file holding them, got " +
                          kind_of(f.value));
            }
          },
          "route test cases, or the file that holds them"),
  });
  try {
    root_map.read(reader_, MapView(reader_, root, top, ""), config);
  } catch (const std::exception& e) {
    // yaml-cpp throws on a few malformed trees (e.g. a bad alias) that Load() accepted.
    reader_.error(top, "", std::string("cannot read the configuration: ") + e.what());
  }
  result.errors = reader_.take_errors();
  if (result.errors.empty())
    result.config = std::move(config);
  return result;
}

// systemd's StateDirectory= tells a service where its state lives ($STATE_DIRECTORY, several
// separated by ':'): the state_dir when the file names none.
std::string default_state_dir() {
  const char* given = std::getenv("STATE_DIRECTORY");
  std::string dir = given ? std::string(given).substr(0, std::string(given).find(':')) : "";
  while (dir.size() > 1 && dir.back() == '/')
    dir.pop_back();
  return dir.empty() ? Config{}.state_dir : dir;
}

std::string directory_of(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos)
    return ".";
  if (slash == 0)
    return "/";
  return path.substr(0, slash);
}

}  // namespace

LoadResult load_string(std::string_view text, const std::string& name, const SinkTypes& types) {
  if (text.size() > kMaxFileBytes) {
    LoadResult result;
    result.errors.push_back(
        {{name, 0, 0},
         "",
         "the configuration file is larger than " + std::to_string(kMaxFileBytes >> 20) + " MiB"});
    return result;
  }
  try {
    InterpolationEnv env;
    env.base_dir = directory_of(name);
    return Loader(name, std::move(env), types, default_state_dir()).run(text);
  } catch (const std::exception& e) {
    LoadResult result;
    result.errors.push_back({{name, 0, 0}, "", std::string("cannot load: ") + e.what()});
    return result;
  }
}

LoadResult load_file(const std::string& path, const SinkTypes& types) {
  const auto failed = [&](const std::string& message) {
    LoadResult result;
    result.errors.push_back({{path, 0, 0}, "", message});
    return result;
  };
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return failed(std::string("cannot read the configuration file: ") +
                  (errno != 0 ? std::strerror(errno) : "cannot open"));
  }
  // One byte past the limit lets load_string() tell a file that is too large from one that
  // fits, and an endless device such as /dev/zero costs no more.
  std::string text(kMaxFileBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad())
    return failed("cannot read the configuration file: read error");
  text.resize(static_cast<std::size_t>(in.gcount()));
  return load_string(text, path, types);
}

}  // namespace sluice::config
