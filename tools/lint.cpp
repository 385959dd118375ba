#include "tools/lint.hpp"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <filesystem>
#include <set>
#include <string_view>
#include <system_error>
#include <variant>

#include "config/reader.hpp"
#include "core/text.hpp"
#include "emulator/fanout/fanout.hpp"
#include "sinks/file/file_config.hpp"
#include "sinks/kafka/kafka_config.hpp"

namespace sluice::tools {

namespace {

namespace fs = std::filesystem;

// One step of a path into the YAML tree: a mapping key or a list index.
using Step = std::variant<std::string, std::size_t>;

// The warnings of one lint run, with the file's tree to locate them in. Lives for one call of
// lint().
class Linter {
 public:
  explicit Linter(const config::Config& config) : config_(config) {
    try {
      root_ = YAML::LoadFile(config.path);
    } catch (const YAML::Exception&) {
      // The loader read it a moment ago; without the tree, warnings point at the file's start.
    }
  }

  std::vector<config::Error> run();

 private:
  // The node at `steps` (the deepest that exists), and whether all of them exist.
  std::pair<YAML::Node, bool> node_at(const std::vector<Step>& steps) const;
  bool has(const std::vector<Step>& steps) const { return node_at(steps).second; }
  // Whether the value at `steps` came from `${…}`: messages then quote that source, never what
  // it resolved to (config/reader.hpp).
  bool secret(const std::vector<Step>& steps) const;
  std::string source(const std::vector<Step>& steps) const {
    return config::quote(node_at(steps).first.Scalar());
  }
  // `value` quoted as a message may show it: by its `${…}` source when it came from one.
  std::string shown(const std::vector<Step>& steps, const std::string& value) const {
    return secret(steps) ? source(steps) : config::quote(value);
  }
  void warn(const std::vector<Step>& steps, std::string message);

  void kafka_durability(const config::SinkConfig& sink);
  void paths(const config::SinkConfig& sink);
  void path(const std::vector<Step>& at, const std::string& written, const std::string& directory,
            std::string_view what);
  void admin();
  void unused_sinks();
  void channels(std::size_t route_index, const config::RouteConfig& route);
  void where(std::size_t route_index, const config::RouteConfig& route);

  const config::Config& config_;
  YAML::Node root_;
  std::vector<config::Error> warnings_;
};

std::string path_text(const std::vector<Step>& steps) {
  std::string out;
  for (const auto& step : steps) {
    if (const auto* key = std::get_if<std::string>(&step)) {
      out = config::child_path(out, *key);
    } else {
      out = config::index_path(out, std::get<std::size_t>(step));
    }
  }
  return out;
}

std::pair<YAML::Node, bool> Linter::node_at(const std::vector<Step>& steps) const {
  // Nodes are rebound with reset(): yaml-cpp's operator= would copy into the tree instead.
  YAML::Node node;
  node.reset(root_);
  for (const auto& step : steps) {
    YAML::Node next;
    bool found = false;
    if (const auto* key = std::get_if<std::string>(&step)) {
      for (auto it = node.IsMap() ? node.begin() : node.end(); it != node.end(); ++it) {
        if (it->first.IsScalar() && it->first.Scalar() == *key) {
          next.reset(it->second.IsNull() ? it->first : it->second);
          found = true;
        }
      }
    } else if (const auto i = std::get<std::size_t>(step); node.IsSequence() && i < node.size()) {
      next.reset(node[i]);
      found = true;
    }
    if (!found)
      return {node, false};
    node.reset(next);
  }
  return {node, true};
}

bool Linter::secret(const std::vector<Step>& steps) const {
  const auto [node, found] = node_at(steps);
  return found && node.IsScalar() && node.Scalar().find("${") != std::string::npos;
}

void Linter::warn(const std::vector<Step>& steps, std::string message) {
  const auto mark = node_at(steps).first.Mark();
  warnings_.push_back(
      {{config_.path, mark.line >= 0 ? mark.line + 1 : 1, mark.column >= 0 ? mark.column + 1 : 1},
       path_text(steps),
       "warning: " + std::move(message)});
}

void Linter::kafka_durability(const config::SinkConfig& sink) {
  if (sink.type_name() != sinks::KafkaSinkConfig::kType)
    return;
  for (const auto& [name, value] : sink.settings_as<sinks::KafkaSinkConfig>().properties) {
    const std::vector<Step> at = {"sinks", sink.name, "properties", name};
    // Each property alone, read as librdkafka reads it ("ALL", "-1", "F", "0", …).
    const auto durability = sinks::kafka_durability({{name, value}});
    const auto set = name + "=" + (secret(at) ? node_at(at).first.Scalar() : value);
    if (!durability.acks_all) {
      warn(at, set +
                   " overrides acks=all: a record the broker acknowledged can be lost when its "
                   "leader fails, after sluice counted it as delivered");
    }
    if (!durability.idempotence)
      warn(at, set + ": a retried batch can be written twice or out of order");
  }
}

// A directory sluice writes into: relative (to the working directory, not to this file), not a
// directory, not writable, or missing under a parent it cannot create it in.
void Linter::path(const std::vector<Step>& at, const std::string& written,
                  const std::string& directory, std::string_view what) {
  if (!written.starts_with('/')) {
    warn(at, "relative " + std::string(what) + " " +
                 (secret(at) ? source(at) : config::quote(written)) +
                 ": it is resolved against the working directory of the process, not against "
                 "this file");
    return;
  }
  std::error_code ec;
  fs::path dir(directory);
  const auto shown =
      secret(at) ? "the directory of " + source(at) : "directory " + config::quote(dir.string());
  if (fs::exists(dir, ec)) {
    if (!fs::is_directory(dir, ec)) {
      warn(at, (secret(at) ? shown : config::quote(dir.string())) + " is not a directory");
    } else if (::access(dir.c_str(), W_OK | X_OK) != 0) {
      warn(at, shown + " is not writable");
    }
    return;
  }
  fs::path parent = dir.parent_path();
  while (!parent.empty() && parent != parent.parent_path() && !fs::exists(parent, ec))
    parent = parent.parent_path();
  if (parent.empty() || !fs::is_directory(parent, ec) ||
      ::access(parent.c_str(), W_OK | X_OK) != 0) {
    warn(at, shown + " does not exist and cannot be created" +
                 (secret(at)
                      ? std::string()
                      : " (" + config::quote(parent.string()) + " is not a writable directory)"));
  }
}

void Linter::paths(const config::SinkConfig& sink) {
  if (sink.type_name() == sinks::FileSinkConfig::kType) {
    const auto& source = sink.settings_as<sinks::FileSinkConfig>().path.source();
    // The directory that holds every file: the path up to its first placeholder or strftime
    // directive, then up to the last '/'.
    const auto fixed = source.substr(0, source.find_first_of("{%"));
    const auto slash = fixed.rfind('/');
    const auto directory = slash == std::string::npos ? std::string(".")
                           : slash == 0               ? std::string("/")
                                                      : fixed.substr(0, slash);
    path({"sinks", sink.name, "path"}, source, directory, "path");
  }
  if (!sink.dead_letter.empty()) {
    const auto directory = fs::path(sink.dead_letter).parent_path().string();
    path({"sinks", sink.name, "dead_letter"}, sink.dead_letter, directory.empty() ? "." : directory,
         "dead-letter path");
  }
  if (sink.buffer.type == config::BufferConfig::Type::disk) {
    // Located where the directory was given: this sink's buffer, or the top-level one.
    std::vector<Step> at = {"sinks", sink.name, "buffer", "dir"};
    if (!has(at))
      at = has({"buffer", "dir"}) ? std::vector<Step>{"buffer", "dir"}
                                  : std::vector<Step>{"sinks", sink.name, "buffer"};
    path(at, sink.buffer.dir, sink.buffer.dir, "buffer directory");
  }
}

// Whether `host` reaches only this machine: localhost, 127.0.0.0/8, ::1, or 127.x mapped into
// IPv6 (::ffff:127.0.0.1).
bool loopback_host(const std::string& host) {
  if (host == "localhost")
    return true;
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(host, ec);
  if (ec)
    return false;
  if (address.is_v6() && address.to_v6().is_v4_mapped())
    address = boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, address.to_v6());
  return address.is_loopback();
}

void Linter::admin() {
  const auto& host = config_.admin.host;
  if (loopback_host(host) || !config_.admin.token.empty())
    return;
  const std::vector<Step> at = {"admin", "listen"};
  warn(at, "the admin server listens on " + shown(at, host) +
               " without a token: anyone who can reach it reads /metrics and /status (set "
               "admin.token, or listen on 127.0.0.1)");
}

void Linter::unused_sinks() {
  for (const auto& sink : config_.sinks) {
    const bool used = std::any_of(config_.routes.begin(), config_.routes.end(), [&](const auto& r) {
      return std::find(r.sinks.begin(), r.sinks.end(), sink.name) != r.sinks.end();
    });
    if (!used)
      warn({"sinks", sink.name}, "no route sends events to sink " + config::quote(sink.name));
  }
}

bool is_action(std::string_view s) {
  return s == "create" || s == "update" || s == "upsert" || s == "delete";
}

// The kind of resource a channel carries (its payloads' model), or "" when Appwrite never
// publishes on it: what the fan-out of any Appwrite version sluice knows gives on that channel.
std::string channel_kind(std::string_view channel) {
  for (const auto profile :
       {emulator::Profile::v1_8, emulator::Profile::v1_9, emulator::Profile::main}) {
    if (auto family = emulator::channel_family(profile, channel); !family.empty())
      return family;
  }
  return "";
}

// The channel with one mistyped structural word corrected (`…orders.row` → `…orders.rows`),
// when that gives a channel Appwrite publishes on; empty otherwise.
std::string corrected_channel(std::string_view channel) {
  static const std::vector<std::string> words = {
      "account", "buckets",   "collections", "databases", "documents", "documentsdb", "executions",
      "files",   "functions", "memberships", "presences", "rows",      "tables",      "tablesdb",
      "teams",   "vectorsdb", "create",      "update",    "upsert",    "delete"};
  const auto segments = split(channel, '.');
  for (std::size_t i = 0; i < segments.size(); ++i) {
    const auto hint = config::did_you_mean(segments[i], words);
    if (hint.empty())
      continue;
    // did_you_mean() gives `did you mean "WORD"? `: the word is between the quotes.
    const auto open = hint.find('"');
    const auto word = hint.substr(open + 1, hint.find('"', open + 1) - open - 1);
    std::string candidate;
    for (std::size_t j = 0; j < segments.size(); ++j) {
      if (j > 0)
        candidate += '.';
      candidate += j == i ? std::string_view(word) : segments[j];
    }
    if (!channel_kind(candidate).empty())
      return candidate;
  }
  return "";
}

void Linter::channels(std::size_t route_index, const config::RouteConfig& route) {
  const bool subscribes_account =
      std::any_of(config_.routes.begin(), config_.routes.end(), [](const config::RouteConfig& r) {
        return std::find(r.channels.begin(), r.channels.end(), "account") != r.channels.end();
      });
  const auto& auth = config_.appwrite.auth;
  for (std::size_t j = 0; j < route.channels.size(); ++j) {
    const auto& channel = route.channels[j];
    const std::vector<Step> at = {"routes", route_index, "channels", j};
    const auto s = split(channel, '.');
    if (channel == "console" || s[0] == "projects") {
      warn(at, "Appwrite publishes on " + shown(at, channel) +
                   " only to the console project, never to a project's connections");
      continue;
    }
    const auto kind = channel_kind(channel);
    if (kind.empty()) {
      const auto fixed = secret(at) ? std::string() : corrected_channel(channel);
      warn(at, "Appwrite never publishes on channel " + shown(at, channel) + " (" +
                   (fixed.empty() ? "" : "did you mean " + config::quote(fixed) + "? ") +
                   "channels are exact names such as tablesdb.DB.tables.TABLE.rows, "
                   "buckets.BUCKET.files, account; no wildcards)");
      continue;
    }
    if (kind == "account" && s.size() >= 2 && !is_action(s[1])) {
      const auto& id = s[1];
      if (auth.kind == config::AuthConfig::Kind::api_key && id != auth.user_id) {
        warn(at,
             "account events reach only the user they belong to, and these credentials act "
             "for " +
                 shown({"appwrite", "auth", "user_id"}, auth.user_id) + ", not " +
                 shown(at, std::string(id)));
      } else if (!subscribes_account) {
        warn(at, "Appwrite drops a subscription to " + shown(at, channel) +
                     "; add `account` to a route's channels (the user's own events carry "
                     "account.<id> among their channels)");
      }
    }
  }
}

// The `$` attributes each kind of payload has: Appwrite's models. Other attributes depend on
// the project's own schema and are not checked.
const std::vector<std::string>& system_attributes(const std::string& kind) {
  static const std::vector<std::string> documents = {"$id",        "$sequence",   "$collectionId",
                                                     "$tableId",   "$databaseId", "$createdAt",
                                                     "$updatedAt", "$permissions"};
  static const std::vector<std::string> files = {"$id", "$createdAt", "$updatedAt", "$permissions"};
  static const std::vector<std::string> others = {"$id", "$createdAt", "$updatedAt"};
  if (kind == "documents")
    return documents;
  if (kind == "files" || kind == "executions" || kind == "presences")
    return files;
  return others;
}

void collect_attributes(const Query& q, std::vector<std::string>& out) {
  if (!q.attribute.empty())
    out.push_back(q.attribute);
  for (const auto& child : q.queries)
    collect_attributes(child, out);
}

void Linter::where(std::size_t route_index, const config::RouteConfig& route) {
  std::vector<std::string> allowed;
  for (const auto& channel : route.channels) {
    const auto kind = channel_kind(channel);
    if (kind.empty())
      return;  // already warned; nothing is known about its payloads
    const auto& attributes = system_attributes(kind);
    allowed.insert(allowed.end(), attributes.begin(), attributes.end());
  }
  for (std::size_t k = 0; k < route.where.size(); ++k) {
    std::vector<std::string> attributes;
    collect_attributes(route.where[k], attributes);
    for (const auto& attribute : attributes) {
      const auto first = attribute.substr(0, attribute.find('.'));
      if (!first.starts_with('$') ||
          std::find(allowed.begin(), allowed.end(), first) != allowed.end()) {
        continue;
      }
      std::vector<std::string> unique(allowed.begin(), allowed.end());
      std::sort(unique.begin(), unique.end());
      unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
      warn({"routes", route_index, "where", k},
           "the payloads of this route's channels have no attribute " + config::quote(first) +
               " (" + config::did_you_mean(first, unique) + "they have " + config::join(unique) +
               " and the project's own attributes)");
    }
  }
}

std::vector<config::Error> Linter::run() {
  for (const auto& sink : config_.sinks) {
    kafka_durability(sink);
    paths(sink);
  }
  // Only when written: the default is the service manager's (systemd's StateDirectory, the
  // chart's volume), created for the daemon as it starts; the daemon reports it if unusable.
  if (config_.backfill.enabled && has({"state_dir"}))
    path({"state_dir"}, config_.state_dir, config_.state_dir, "state directory");
  admin();
  unused_sinks();
  for (std::size_t i = 0; i < config_.routes.size(); ++i) {
    channels(i, config_.routes[i]);
    where(i, config_.routes[i]);
  }
  std::stable_sort(warnings_.begin(), warnings_.end(),
                   [](const config::Error& a, const config::Error& b) {
                     return std::pair(a.location.line, a.location.column) <
                            std::pair(b.location.line, b.location.column);
                   });
  return std::move(warnings_);
}

}  // namespace

std::vector<config::Error> lint(const config::Config& config) {
  return Linter(config).run();
}

}  // namespace sluice::tools
