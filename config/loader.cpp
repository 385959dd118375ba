#include "config/loader.hpp"

#include <librdkafka/rdkafka.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <utility>

#include "config/interpolate.hpp"
#include "config/units.hpp"

// The loader walks the YAML tree once, by hand, instead of using yaml-cpp's as<T>(): that way
// every problem is recorded with its own location and the walk goes on, so one run of
// --check-config reports everything (DESIGN.md §2). Values that came from `${…}` are secrets:
// messages about them quote the `${…}` source, never the resolved text.
namespace sluice::config {

std::string Error::format() const {
  std::string out = location.file;
  if (location.line > 0) {
    out += ':' + std::to_string(location.line) + ':' + std::to_string(location.column);
  }
  out += ": ";
  if (!path.empty())
    out += path + ": ";
  out += message;
  return out;
}

namespace {

constexpr std::string_view kAuthForms =
    "session, jwt, api_key with user_id, or email with password";

// A key and its value inside a mapping, with the value's dotted path.
struct Field {
  YAML::Node key;
  YAML::Node value;
  std::string path;
  // Where a message about the value points: the value itself, or its key when the value is
  // empty (yaml-cpp gives an empty value the mark of whatever token follows it).
  YAML::Mark mark() const {
    if (value.IsNull() || value.Mark().line < 0)
      return key.Mark();
    return value.Mark();
  }
};

// A scalar after interpolation. `display` is what messages may quote: the source text when it
// contained `${…}`, the value otherwise.
struct Scalar {
  std::string value;
  std::string display;
  bool secret = false;
};

std::string join(const std::vector<std::string>& items, std::string_view separator = ", ") {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty())
      out += separator;
    out += item;
  }
  return out;
}

std::string child_path(const std::string& parent, const std::string& key) {
  const bool plain = !key.empty() && key.find_first_of(".[]\" ") == std::string::npos;
  if (!plain)
    return parent + "[\"" + key + "\"]";
  return parent.empty() ? key : parent + "." + key;
}

std::string index_path(const std::string& parent, std::size_t i) {
  return parent + "[" + std::to_string(i) + "]";
}

std::string kind_of(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return "a scalar";
    default:
      return "nothing";
  }
}

std::string quote(std::string_view text) {
  return "\"" + std::string(text) + "\"";
}

// YAML 1.2 core schema resolution of a plain (unquoted) scalar, for `where` values.
Query::Value plain_value(const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL")
    return nullptr;
  if (s == "true" || s == "True" || s == "TRUE")
    return true;
  if (s == "false" || s == "False" || s == "FALSE")
    return false;
  const char* begin = s.c_str();
  char* end = nullptr;
  const bool digits_only =
      s.find_first_not_of("0123456789", (s[0] == '-' || s[0] == '+') ? 1 : 0) ==
          std::string::npos &&
      s.size() > ((s[0] == '-' || s[0] == '+') ? 1u : 0u);
  if (digits_only) {
    errno = 0;
    const long long v = std::strtoll(begin, &end, 10);
    if (errno == 0 && *end == '\0')
      return static_cast<std::int64_t>(v);
    return std::strtod(begin, nullptr);  // out of int64 range: keep the magnitude
  }
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
    errno = 0;
    const long long v = std::strtoll(begin + 2, &end, s[1] == 'x' ? 16 : 8);
    if (errno == 0 && *end == '\0')
      return static_cast<std::int64_t>(v);
    return s;
  }
  if (s == ".inf" || s == ".Inf" || s == ".INF" || s == "+.inf" || s == "+.Inf" || s == "+.INF") {
    return std::numeric_limits<double>::infinity();
  }
  if (s == "-.inf" || s == "-.Inf" || s == "-.INF")
    return -std::numeric_limits<double>::infinity();
  if (s == ".nan" || s == ".NaN" || s == ".NAN")
    return std::numeric_limits<double>::quiet_NaN();
  // [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
  std::size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  std::size_t int_digits = 0, frac_digits = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])))
    ++i, ++int_digits;
  bool dot = false;
  if (i < s.size() && s[i] == '.') {
    dot = true;
    ++i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])))
      ++i, ++frac_digits;
  }
  bool exponent_ok = true, exponent = false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    exponent = true;
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+'))
      ++i;
    std::size_t exp_digits = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])))
      ++i, ++exp_digits;
    exponent_ok = exp_digits > 0;
  }
  const bool mantissa_ok = int_digits > 0 || (dot && frac_digits > 0);
  if (i == s.size() && mantissa_ok && exponent_ok && (dot || exponent)) {
    return std::strtod(begin, nullptr);
  }
  return s;
}

bool readable(const std::string& path, std::string& reason) {
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    reason = errno != 0 ? std::strerror(errno) : "cannot open";
    return false;
  }
  return true;
}

struct MethodName {
  std::string_view name;
  Query::Method method;
};
constexpr MethodName kMethods[] = {
    {"equal", Query::Method::equal},
    {"notEqual", Query::Method::not_equal},
    {"lessThan", Query::Method::less_than},
    {"lessThanEqual", Query::Method::less_than_equal},
    {"greaterThan", Query::Method::greater_than},
    {"greaterThanEqual", Query::Method::greater_than_equal},
    {"isNull", Query::Method::is_null},
    {"isNotNull", Query::Method::is_not_null},
    {"and", Query::Method::and_},
    {"or", Query::Method::or_},
};

class Loader;

// The entries of one YAML mapping. Reports a non-mapping, non-scalar keys and duplicate keys
// on construction (yaml-cpp 0.7 keeps duplicates silently); unknown keys on check_keys().
class MapView {
 public:
  // `anchor` is where "missing key" messages point: the key that holds this mapping.
  MapView(Loader& loader, const YAML::Node& node, const YAML::Mark& anchor, std::string path);

  bool ok() const { return ok_; }
  const Field* get(std::string_view key) const;
  const std::vector<Field>& fields() const { return fields_; }
  const std::string& path() const { return path_; }
  const YAML::Mark& anchor() const { return anchor_; }

  void check_keys(std::initializer_list<std::string_view> allowed) const;
  // Reports a missing key; returns the field when present.
  const Field* require(std::string_view key, std::string_view what) const;

 private:
  Loader& loader_;
  YAML::Mark anchor_;
  std::string path_;
  bool ok_ = false;
  std::vector<Field> fields_;
};

// One load: owns the error list and the interpolation environment. Lives for one call of
// load_string()/load_file() on the caller's thread.
class Loader {
 public:
  Loader(std::string file, InterpolationEnv env) : file_(std::move(file)), env_(std::move(env)) {}

  LoadResult run(std::string_view text);

  void error(const YAML::Mark& mark, std::string path, std::string message) {
    Location location{file_, mark.line >= 0 ? mark.line + 1 : 1,
                      mark.column >= 0 ? mark.column + 1 : 1};
    errors_.push_back({std::move(location), std::move(path), std::move(message)});
  }

  // ---- typed readers: each reports its own errors and returns nullopt on failure ----

  std::optional<Scalar> scalar(const Field& f, std::string_view expected) {
    if (!f.value.IsScalar()) {
      error(f.mark(), f.path, "expected " + std::string(expected) + ", got " + kind_of(f.value));
      return std::nullopt;
    }
    Scalar s;
    const std::string& source = f.value.Scalar();
    Interpolated result;
    std::string message;
    if (!interpolate(source, env_, result, message)) {
      error(f.mark(), f.path, message);
      return std::nullopt;
    }
    s.value = std::move(result.value);
    s.secret = result.substituted;
    s.display = s.secret ? source : s.value;
    return s;
  }

  std::optional<std::string> string(const Field& f, bool non_empty = true) {
    auto s = scalar(f, "a string");
    if (!s)
      return std::nullopt;
    if (non_empty && s->value.empty()) {
      error(f.mark(), f.path, "expected a non-empty string");
      return std::nullopt;
    }
    return std::move(s->value);
  }

  std::optional<Secret> secret(const Field& f) {
    auto s = string(f);
    if (!s)
      return std::nullopt;
    return Secret(std::move(*s));
  }

  std::optional<bool> boolean(const Field& f) {
    auto s = scalar(f, "true or false");
    if (!s)
      return std::nullopt;
    const auto& v = s->value;
    if (v == "true" || v == "True" || v == "TRUE")
      return true;
    if (v == "false" || v == "False" || v == "FALSE")
      return false;
    error(f.mark(), f.path, "expected true or false, got " + quote(s->display));
    return std::nullopt;
  }

  std::optional<Duration> duration(const Field& f, bool allow_zero = false) {
    auto s = scalar(f, "a duration such as 500ms, 20s, 5m or 1h");
    if (!s)
      return std::nullopt;
    std::string message;
    auto d = parse_duration(s->value, message);
    if (!d) {
      error(f.mark(), f.path, "bad duration " + quote(s->display) + ": " + message);
      return std::nullopt;
    }
    if (!allow_zero && d->count() == 0) {
      error(f.mark(), f.path, "expected a duration greater than zero");
      return std::nullopt;
    }
    return *d;
  }

  std::optional<std::uint64_t> size(const Field& f, bool allow_zero = false) {
    auto s = scalar(f, "a size such as 64KiB, 100MiB or 1GiB");
    if (!s)
      return std::nullopt;
    std::string message;
    auto v = parse_size(s->value, message);
    if (!v) {
      error(f.mark(), f.path, "bad size " + quote(s->display) + ": " + message);
      return std::nullopt;
    }
    if (!allow_zero && *v == 0) {
      error(f.mark(), f.path, "expected a size greater than zero");
      return std::nullopt;
    }
    return *v;
  }

  std::optional<std::uint64_t> integer(const Field& f, std::uint64_t min, std::uint64_t max) {
    const std::string expected =
        "an integer from " + std::to_string(min) + " to " + std::to_string(max);
    auto s = scalar(f, expected);
    if (!s)
      return std::nullopt;
    const auto& v = s->value;
    errno = 0;
    char* end = nullptr;
    const auto n = v.empty() || v[0] == '-' ? 0ull : std::strtoull(v.c_str(), &end, 10);
    if (v.empty() || v[0] == '-' || end == nullptr || *end != '\0' || errno != 0 || n < min ||
        n > max) {
      error(f.mark(), f.path, "expected " + expected + ", got " + quote(s->display));
      return std::nullopt;
    }
    return n;
  }

  std::optional<double> number(const Field& f, double min, double max) {
    std::ostringstream expected;
    expected << "a number from " << min << " to " << max;
    auto s = scalar(f, expected.str());
    if (!s)
      return std::nullopt;
    char* end = nullptr;
    const double n = std::strtod(s->value.c_str(), &end);
    if (s->value.empty() || *end != '\0' || !std::isfinite(n) || n < min || n > max) {
      error(f.mark(), f.path, "expected " + expected.str() + ", got " + quote(s->display));
      return std::nullopt;
    }
    return n;
  }

  template <class E>
  std::optional<E> enumeration(const Field& f,
                               std::initializer_list<std::pair<std::string_view, E>> values) {
    std::vector<std::string> names;
    for (const auto& [name, value] : values)
      names.emplace_back(name);
    auto s = scalar(f, "one of: " + join(names));
    if (!s)
      return std::nullopt;
    for (const auto& [name, value] : values) {
      if (s->value == name)
        return value;
    }
    error(f.mark(), f.path,
          "unknown value " + quote(s->display) + " (expected one of: " + join(names) + ")");
    return std::nullopt;
  }

  // A list of non-empty strings. A single string is not accepted: channels and brokers are
  // lists, and `channels: x` is more often a typo for `[x]` than intended.
  std::optional<std::vector<std::string>> string_list(const Field& f, std::string_view what) {
    if (!f.value.IsSequence()) {
      error(f.mark(), f.path,
            "expected a list of " + std::string(what) + ", got " + kind_of(f.value));
      return std::nullopt;
    }
    std::vector<std::string> out;
    bool ok = true;
    for (std::size_t i = 0; i < f.value.size(); ++i) {
      Field item{f.value[i], f.value[i], index_path(f.path, i)};
      auto s = string(item);
      if (s) {
        out.push_back(std::move(*s));
      } else {
        ok = false;
      }
    }
    if (!ok)
      return std::nullopt;
    return out;
  }

  std::optional<Template> template_(const Field& f, bool allow_strftime) {
    auto s = scalar(f, "a template string");
    if (!s)
      return std::nullopt;
    if (s->value.empty()) {
      error(f.mark(), f.path, "expected a non-empty template");
      return std::nullopt;
    }
    Template t;
    Template::Error e;
    if (!Template::parse(s->value, allow_strftime, t, e)) {
      // The offset is into the resolved text: only quote it when that text is not a secret.
      std::string at = s->secret ? "" : " at character " + std::to_string(e.offset + 1);
      error(f.mark(), f.path, "bad template" + at + ": " + e.message);
      return std::nullopt;
    }
    return t;
  }

  std::map<std::string, Template> header_templates(const Field& f) {
    std::map<std::string, Template> out;
    MapView map(*this, f.value, f.key.Mark(), f.path);
    if (!map.ok())
      return out;
    for (const auto& h : map.fields()) {
      const auto& name = h.key.Scalar();
      const bool token = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) ||
               std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
      });
      if (!token) {
        error(h.key.Mark(), h.path, "invalid header name " + quote(name));
        continue;
      }
      if (auto t = template_(h, false))
        out.emplace(name, std::move(*t));
    }
    return out;
  }

  // ---- sections ----
  void appwrite(const Field& f, AppwriteConfig& out);
  void auth(const Field& f, AuthConfig& out);
  std::optional<TlsConfig> tls(const Field& f, bool server);
  void admin(const Field& f, AdminConfig& out);
  void log_section(const Field& f, LogConfig& out);
  BufferConfig buffer(const Field& f, BufferConfig base);
  RetryConfig retry(const Field& f);
  void sinks(const Field& f, const BufferConfig& buffer_defaults, Config& out);
  std::optional<SinkConfig> sink(const Field& f, const BufferConfig& buffer_defaults);
  void kafka(const MapView& map, KafkaSinkConfig& out);
  void webhook(const MapView& map, WebhookSinkConfig& out);
  void file_sink(const MapView& map, FileSinkConfig& out);
  void routes(const Field& f, Config& out);
  std::optional<Query> condition(const YAML::Node& node, const YAML::Mark& fallback,
                                 const std::string& path);
  std::optional<Query::Value> query_value(const Field& f);

  const std::string& file() const { return file_; }

 private:
  std::string resolve_relative(const std::string& path) const {
    if (path.empty() || path.front() == '/' || env_.base_dir.empty() || env_.base_dir == ".") {
      return path;
    }
    return env_.base_dir + "/" + path;
  }

  std::string file_;
  InterpolationEnv env_;
  std::vector<Error> errors_;
  // Every sink name declared, valid or not, so a route naming a broken sink is not reported
  // a second time as naming a missing one.
  std::vector<std::string> sink_names_;
};

MapView::MapView(Loader& loader, const YAML::Node& node, const YAML::Mark& anchor, std::string path)
    : loader_(loader), anchor_(anchor), path_(std::move(path)) {
  if (!node.IsMap()) {
    const auto mark = node.IsNull() || node.Mark().line < 0 ? anchor : node.Mark();
    loader_.error(mark, path_, "expected a mapping, got " + kind_of(node));
    return;
  }
  ok_ = true;
  for (auto it = node.begin(); it != node.end(); ++it) {
    const YAML::Node key = it->first;
    if (!key.IsScalar()) {
      loader_.error(key.Mark(), path_, "expected a plain key, got " + kind_of(key));
      continue;
    }
    const auto& name = key.Scalar();
    const auto first = std::find_if(fields_.begin(), fields_.end(),
                                    [&](const Field& f) { return f.key.Scalar() == name; });
    if (first != fields_.end()) {
      loader_.error(key.Mark(), child_path(path_, name),
                    "duplicate key " + quote(name) + " (first given at line " +
                        std::to_string(first->key.Mark().line + 1) + ")");
      continue;
    }
    fields_.push_back({key, it->second, child_path(path_, name)});
  }
}

const Field* MapView::get(std::string_view key) const {
  for (const auto& f : fields_) {
    if (f.key.Scalar() == key)
      return &f;
  }
  return nullptr;
}

void MapView::check_keys(std::initializer_list<std::string_view> allowed) const {
  std::vector<std::string> sorted(allowed.begin(), allowed.end());
  std::sort(sorted.begin(), sorted.end());
  for (const auto& f : fields_) {
    const auto& name = f.key.Scalar();
    if (std::find(sorted.begin(), sorted.end(), name) == sorted.end()) {
      loader_.error(f.key.Mark(), f.path,
                    "unknown key " + quote(name) + " (expected one of: " + join(sorted) + ")");
    }
  }
}

const Field* MapView::require(std::string_view key, std::string_view what) const {
  if (const auto* f = get(key))
    return f;
  if (ok_) {
    loader_.error(anchor_, path_,
                  "missing required key " + quote(key) + " (" + std::string(what) + ")");
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------

std::string derive_realtime(const std::string& endpoint) {
  std::string base = endpoint;
  while (!base.empty() && base.back() == '/')
    base.pop_back();
  if (base.starts_with("https://"))
    return "wss://" + base.substr(8) + "/realtime";
  return "ws://" + base.substr(7) + "/realtime";
}

// Whether `url` is SCHEME://HOST… with one of `schemes` and a non-empty host.
bool has_scheme_and_host(const std::string& url, std::initializer_list<std::string_view> schemes) {
  for (auto scheme : schemes) {
    const std::string prefix = std::string(scheme) + "://";
    if (url.size() < prefix.size())
      continue;
    bool same = true;
    for (std::size_t i = 0; i < prefix.size(); ++i) {
      same = same && std::tolower(static_cast<unsigned char>(url[i])) == prefix[i];
    }
    if (!same)
      continue;
    const auto rest = std::string_view(url).substr(prefix.size());
    const auto host_end = rest.find_first_of("/?#");
    return !rest.substr(0, host_end).empty();
  }
  return false;
}

void Loader::appwrite(const Field& f, AppwriteConfig& out) {
  MapView map(*this, f.value, f.key.Mark(), f.path);
  if (!map.ok())
    return;
  map.check_keys({"endpoint", "realtime_endpoint", "project", "auth", "tls", "subscribe",
                  "heartbeat", "reconnect"});
  if (const auto* e = map.require("endpoint", "the REST endpoint, e.g. https://host/v1")) {
    if (auto s = scalar(*e, "a URL")) {
      if (has_scheme_and_host(s->value, {"http", "https"})) {
        out.endpoint = s->value;
      } else {
        error(e->mark(), e->path, "expected an http:// or https:// URL, got " + quote(s->display));
      }
    }
  }
  if (const auto* r = map.get("realtime_endpoint")) {
    if (auto s = scalar(*r, "a URL")) {
      if (has_scheme_and_host(s->value, {"ws", "wss"})) {
        out.realtime_endpoint = s->value;
      } else {
        error(r->mark(), r->path, "expected a ws:// or wss:// URL, got " + quote(s->display));
      }
    }
  } else if (!out.endpoint.empty()) {
    out.realtime_endpoint = derive_realtime(out.endpoint);
  }
  if (const auto* p = map.require("project", "the Appwrite project ID")) {
    if (auto s = string(*p))
      out.project = *s;
  }
  if (const auto* a = map.require("auth", "exactly one of " + std::string(kAuthForms))) {
    auth(*a, out.auth);
  }
  if (const auto* t = map.get("tls")) {
    if (auto tls_config = tls(*t, false))
      out.tls = *tls_config;
  }
  if (const auto* s = map.get("subscribe")) {
    using S = AppwriteConfig::Subscribe;
    if (auto v = enumeration<S>(*s, {{"url", S::url}, {"message", S::message}, {"auto", S::auto_}}))
      out.subscribe = *v;
  }
  if (const auto* h = map.get("heartbeat")) {
    if (auto d = duration(*h))
      out.heartbeat = *d;
  }
  if (const auto* r = map.get("reconnect")) {
    MapView rm(*this, r->value, r->key.Mark(), r->path);
    if (rm.ok()) {
      rm.check_keys({"initial", "max", "multiplier"});
      if (const auto* x = rm.get("initial")) {
        if (auto d = duration(*x))
          out.reconnect.initial = *d;
      }
      if (const auto* x = rm.get("max")) {
        if (auto d = duration(*x))
          out.reconnect.max = *d;
      }
      if (const auto* x = rm.get("multiplier")) {
        if (auto d = number(*x, 1.0, 100.0))
          out.reconnect.multiplier = *d;
      }
      if (out.reconnect.max < out.reconnect.initial) {
        const auto* at = rm.get("max") ? rm.get("max") : rm.get("initial");
        error(at ? at->mark() : r->key.Mark(), at ? at->path : r->path,
              "max must be at least initial");
      }
    }
  }
}

void Loader::auth(const Field& f, AuthConfig& out) {
  MapView map(*this, f.value, f.key.Mark(), f.path);
  if (!map.ok())
    return;
  map.check_keys({"session", "jwt", "api_key", "user_id", "email", "password"});
  // The forms given, in file order, each with the key that introduced it.
  struct Form {
    AuthConfig::Kind kind;
    std::string name;
    const Field* field;
  };
  std::vector<Form> forms;
  auto add = [&](AuthConfig::Kind kind, std::string name, const Field* field) {
    for (const auto& form : forms) {
      if (form.kind == kind)
        return;
    }
    forms.push_back({kind, std::move(name), field});
  };
  for (const auto& field : map.fields()) {
    const auto& key = field.key.Scalar();
    if (key == "session")
      add(AuthConfig::Kind::session, "session", &field);
    if (key == "jwt")
      add(AuthConfig::Kind::jwt, "jwt", &field);
    if (key == "api_key" || key == "user_id") {
      add(AuthConfig::Kind::api_key, "api_key with user_id", &field);
    }
    if (key == "email" || key == "password") {
      add(AuthConfig::Kind::email_password, "email with password", &field);
    }
  }
  if (forms.empty()) {
    error(f.key.Mark(), f.path,
          "no authentication given (expected exactly one of " + std::string(kAuthForms) + ")");
    return;
  }
  if (forms.size() > 1) {
    error(forms[1].field->key.Mark(), f.path,
          "two authentication forms given (" + forms[0].name + " and " + forms[1].name +
              "); expected exactly one of " + std::string(kAuthForms));
    return;
  }
  out.kind = forms[0].kind;
  auto pair = [&](std::string_view a, std::string_view b) {
    if (!map.get(a)) {
      error(f.key.Mark(), f.path,
            "missing required key " + quote(a) + " (" + std::string(b) + " needs " +
                std::string(a) + ")");
    }
  };
  switch (out.kind) {
    case AuthConfig::Kind::session:
      if (auto s = secret(*map.get("session")))
        out.session = *s;
      break;
    case AuthConfig::Kind::jwt:
      if (auto s = secret(*map.get("jwt")))
        out.jwt = *s;
      break;
    case AuthConfig::Kind::api_key:
      pair("api_key", "user_id");
      pair("user_id", "api_key");
      if (const auto* k = map.get("api_key")) {
        if (auto s = secret(*k))
          out.api_key = *s;
      }
      if (const auto* u = map.get("user_id")) {
        if (auto s = string(*u))
          out.user_id = *s;
      }
      break;
    case AuthConfig::Kind::email_password:
      pair("email", "password");
      pair("password", "email");
      if (const auto* e = map.get("email")) {
        if (auto s = string(*e))
          out.email = *s;
      }
      if (const auto* p = map.get("password")) {
        if (auto s = secret(*p))
          out.password = *s;
      }
      break;
  }
}

std::optional<TlsConfig> Loader::tls(const Field& f, bool server) {
  MapView map(*this, f.value, f.key.Mark(), f.path);
  if (!map.ok())
    return std::nullopt;
  map.check_keys({"ca_file", "verify", "cert_file", "key_file"});
  TlsConfig out;
  bool ok = true;
  auto file = [&](std::string_view key, std::string& target) {
    const auto* x = map.get(key);
    if (!x)
      return;
    auto s = scalar(*x, "a file path");
    if (!s || s->value.empty()) {
      if (s)
        error(x->mark(), x->path, "expected a file path, got an empty string");
      ok = false;
      return;
    }
    // Relative paths mean "next to the configuration file", like ${file:…}.
    const auto path = resolve_relative(s->value);
    std::string reason;
    if (!readable(path, reason)) {
      error(x->mark(), x->path, "cannot read " + quote(s->display) + ": " + reason);
      ok = false;
      return;
    }
    target = path;
  };
  file("ca_file", out.ca_file);
  file("cert_file", out.cert_file);
  file("key_file", out.key_file);
  if (const auto* v = map.get("verify")) {
    if (auto b = boolean(*v)) {
      out.verify = *b;
    } else {
      ok = false;
    }
  }
  const bool has_cert = map.get("cert_file") != nullptr;
  const bool has_key = map.get("key_file") != nullptr;
  if (has_cert != has_key) {
    error(f.key.Mark(), f.path,
          std::string("cert_file and key_file go together: ") +
              (has_cert ? "key_file" : "cert_file") + " is missing");
    ok = false;
  } else if (server && !has_cert) {
    error(f.key.Mark(), f.path, "a TLS server needs cert_file and key_file");
    ok = false;
  }
  if (!ok)
    return std::nullopt;
  return out;
}

void Loader::admin(const Field& f, AdminConfig& out) {
  MapView map(*this, f.value, f.key.Mark(), f.path);
  if (!map.ok())
    return;
  map.check_keys({"listen", "token", "tls"});
  if (const auto* l = map.get("listen")) {
    if (auto s = scalar(*l, "HOST:PORT")) {
      std::string message;
      if (auto hp = parse_host_port(s->value, message)) {
        out.host = hp->host;
        out.port = hp->port;
      } else {
        error(l->mark(), l->path, "bad address " + quote(s->display) + ": " + message);
      }
    }
  }
  if (const auto* t = map.get("token")) {
    if (auto s = secret(*t))
      out.token = *s;
  }
  if (const auto* t = map.get("tls"))
    out.tls = tls(*t, true);
}

void Loader::log_section(const Field& f, LogConfig& out) {
  MapView map(*this, f.value, f.key.Mark(), f.path);
  if (!map.ok())
    return;
  map.check_keys({"level", "format"});
  if (const auto* l = map.get("level")) {
    using L = log::Level;
    if (auto v = enumeration<L>(
            *l, {{"debug", L::debug}, {"info", L::info}, {"warn", L::warn}, {"error", L::error}}))
      out.level = *v;
  }
  if (const auto* x = map.get("format")) {
    using F = log::Format;
    if (auto v = enumeration<F>(*x, {{"text", F::text}, {"json", F::json}}))
      out.format = *v;
  }
}

BufferConfig Loader::buffer(const Field& f, BufferConfig out) {
  MapView map(*this, f.value, f.key.Mark(), f.path);
  if (!map.ok())
    return out;
  map.check_keys({"type", "dir", "max_bytes", "max_events", "when_full"});
  if (const auto* t = map.get("type")) {
    using T = BufferConfig::Type;
    if (auto v = enumeration<T>(*t, {{"memory", T::memory}, {"disk", T::disk}}))
      out.type = *v;
  }
  if (const auto* d = map.get("dir")) {
    if (auto s = string(*d))
      out.dir = *s;
  }
  if (const auto* m = map.get("max_bytes")) {
    if (auto v = size(*m))
      out.max_bytes = *v;
  }
  if (const auto* m = map.get("max_events")) {
    if (auto v = integer(*m, 1, std::numeric_limits<std::uint32_t>::max()))
      out.max_events = *v;
  }
  if (const auto* w = map.get("when_full")) {
    using W = BufferConfig::WhenFull;
    if (auto v = enumeration<W>(*w, {{"block", W::block},
                                     {"drop_newest", W::drop_newest},
                                     {"drop_oldest", W::drop_oldest}}))
      out.when_full = *v;
  }
  return out;
}

RetryConfig Loader::retry(const Field& f) {
  RetryConfig out;
  MapView map(*this, f.value, f.key.Mark(), f.path);
  if (!map.ok())
    return out;
  map.check_keys({"initial", "max", "max_elapsed"});
  if (const auto* x = map.get("initial")) {
    if (auto d = duration(*x))
      out.initial = *d;
  }
  if (const auto* x = map.get("max")) {
    if (auto d = duration(*x))
      out.max = *d;
  }
  if (const auto* x = map.get("max_elapsed")) {
    if (auto d = duration(*x))
      out.max_elapsed = *d;
  }
  if (out.max < out.initial) {
    const auto* at = map.get("max") ? map.get("max") : map.get("initial");
    error(at ? at->mark() : f.key.Mark(), at ? at->path : f.path, "max must be at least initial");
  }
  return out;
}

void Loader::sinks(const Field& f, const BufferConfig& buffer_defaults, Config& out) {
  MapView map(*this, f.value, f.key.Mark(), f.path);
  if (!map.ok())
    return;
  if (map.fields().empty()) {
    error(f.key.Mark(), f.path, "expected at least one sink");
    return;
  }
  for (const auto& s : map.fields()) {
    sink_names_.push_back(s.key.Scalar());
    if (auto sink_config = sink(s, buffer_defaults))
      out.sinks.push_back(std::move(*sink_config));
  }
}

std::optional<SinkConfig> Loader::sink(const Field& f, const BufferConfig& buffer_defaults) {
  const std::size_t errors_before = errors_.size();
  SinkConfig out;
  out.name = f.key.Scalar();
  out.location = {file_, f.key.Mark().line + 1, f.key.Mark().column + 1};
  out.buffer = buffer_defaults;
  const bool good_name =
      !out.name.empty() && std::all_of(out.name.begin(), out.name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
      });
  if (!good_name) {
    error(f.key.Mark(), f.path,
          "bad sink name " + quote(out.name) + " (use letters, digits, '_', '-' and '.')");
  }
  MapView map(*this, f.value, f.key.Mark(), f.path);
  if (!map.ok())
    return std::nullopt;
  const auto* type = map.require("type", "one of: file, kafka, webhook");
  if (!type)
    return std::nullopt;
  enum class Type { kafka, webhook, file };
  const auto kind = enumeration<Type>(
      *type, {{"file", Type::file}, {"kafka", Type::kafka}, {"webhook", Type::webhook}});
  if (!kind)
    return std::nullopt;  // the other keys cannot be checked without a type
  switch (*kind) {
    case Type::kafka: {
      map.check_keys({"type", "buffer", "retry", "dead_letter", "gap_marker", "brokers", "topic",
                      "key", "compression", "properties", "headers"});
      KafkaSinkConfig k;
      kafka(map, k);
      out.settings = std::move(k);
      break;
    }
    case Type::webhook: {
      map.check_keys({"type", "buffer", "retry", "dead_letter", "gap_marker", "url", "signing",
                      "timeout", "concurrency", "headers", "batch", "tls", "follow_redirects"});
      WebhookSinkConfig w;
      webhook(map, w);
      out.settings = std::move(w);
      break;
    }
    case Type::file: {
      map.check_keys(
          {"type", "buffer", "retry", "dead_letter", "gap_marker", "path", "rotate", "fsync"});
      FileSinkConfig fs;
      file_sink(map, fs);
      out.settings = std::move(fs);
      break;
    }
  }
  if (const auto* b = map.get("buffer"))
    out.buffer = buffer(*b, buffer_defaults);
  if (const auto* r = map.get("retry"))
    out.retry = retry(*r);
  if (const auto* d = map.get("dead_letter")) {
    if (auto s = string(*d))
      out.dead_letter = *s;
  }
  if (const auto* g = map.get("gap_marker")) {
    if (auto v = boolean(*g))
      out.gap_marker = *v;
  }
  if (errors_.size() != errors_before)
    return std::nullopt;
  return out;
}

void Loader::kafka(const MapView& map, KafkaSinkConfig& out) {
  // librdkafka validates its own properties: names, types and ranges, without connecting.
  std::unique_ptr<rd_kafka_conf_t, decltype(&rd_kafka_conf_destroy)> conf(rd_kafka_conf_new(),
                                                                          rd_kafka_conf_destroy);
  char errstr[512];
  if (const auto* b = map.require("brokers", "a list of HOST:PORT bootstrap brokers")) {
    if (auto list = string_list(*b, "HOST:PORT brokers")) {
      if (list->empty()) {
        error(b->mark(), b->path, "expected at least one broker");
      } else {
        out.brokers = std::move(*list);
      }
    }
  }
  if (const auto* t = map.require("topic", "a topic name template")) {
    if (auto tt = template_(*t, false))
      out.topic = std::move(*tt);
  }
  if (const auto* k = map.get("key"))
    out.key = template_(*k, false);
  if (const auto* c = map.get("compression")) {
    using C = KafkaSinkConfig::Compression;
    if (auto v = enumeration<C>(*c, {{"none", C::none},
                                     {"gzip", C::gzip},
                                     {"snappy", C::snappy},
                                     {"lz4", C::lz4},
                                     {"zstd", C::zstd}})) {
      static constexpr const char* kNames[] = {"none", "gzip", "snappy", "lz4", "zstd"};
      const std::string name = kNames[static_cast<int>(*v)];
      if (rd_kafka_conf_set(conf.get(), "compression.codec", name.c_str(), errstr, sizeof errstr) !=
          RD_KAFKA_CONF_OK) {
        error(c->mark(), c->path,
              "librdkafka rejected compression " + quote(name) + ": " + std::string(errstr));
      } else {
        out.compression = *v;
      }
    }
  }
  if (const auto* p = map.get("properties")) {
    MapView props(*this, p->value, p->key.Mark(), p->path);
    for (const auto& prop : props.fields()) {
      auto s = scalar(prop, "a property value (string, number or boolean)");
      if (!s)
        continue;
      const auto& name = prop.key.Scalar();
      if (rd_kafka_conf_set(conf.get(), name.c_str(), s->value.c_str(), errstr, sizeof errstr) !=
          RD_KAFKA_CONF_OK) {
        std::string reason = errstr;
        if (s->secret && !s->value.empty()) {
          // librdkafka may quote the value it rejected: show the ${…} source instead.
          for (auto pos = reason.find(s->value); pos != std::string::npos;
               pos = reason.find(s->value, pos + s->display.size())) {
            reason.replace(pos, s->value.size(), s->display);
          }
        }
        const bool unknown = reason.starts_with("No such configuration property");
        error(unknown ? prop.key.Mark() : prop.mark(), prop.path,
              "librdkafka rejected property " + quote(name) + ": " + reason);
        continue;
      }
      out.properties.emplace(name, std::move(s->value));
    }
  }
  if (const auto* h = map.get("headers"))
    out.headers = header_templates(*h);
}

void Loader::webhook(const MapView& map, WebhookSinkConfig& out) {
  if (const auto* u = map.require("url", "the http:// or https:// URL to POST to")) {
    if (auto s = scalar(*u, "a URL")) {
      if (has_scheme_and_host(s->value, {"http", "https"})) {
        out.url = s->value;
      } else {
        error(u->mark(), u->path, "expected an http:// or https:// URL, got " + quote(s->display));
      }
    }
  }
  if (const auto* sg = map.get("signing")) {
    MapView sm(*this, sg->value, sg->key.Mark(), sg->path);
    if (sm.ok()) {
      sm.check_keys({"scheme", "secret"});
      using S = WebhookSinkConfig::Signing::Scheme;
      std::optional<S> scheme;
      if (const auto* sc = sm.require("scheme", "one of: none, standard, appwrite")) {
        scheme = enumeration<S>(
            *sc, {{"none", S::none}, {"standard", S::standard}, {"appwrite", S::appwrite}});
      }
      if (const auto* se = sm.get("secret")) {
        if (auto s = secret(*se))
          out.signing.secret = *s;
      } else if (scheme && *scheme != S::none) {
        error(sg->key.Mark(), sg->path,
              "missing required key \"secret\" (signing scheme " +
                  quote(sm.get("scheme")->value.Scalar()) + " needs a secret)");
      }
      if (scheme)
        out.signing.scheme = *scheme;
    }
  }
  if (const auto* t = map.get("timeout")) {
    if (auto d = duration(*t))
      out.timeout = *d;
  }
  if (const auto* c = map.get("concurrency")) {
    if (auto v = integer(*c, 1, 1024))
      out.concurrency = static_cast<std::uint32_t>(*v);
  }
  if (const auto* h = map.get("headers"))
    out.headers = header_templates(*h);
  if (const auto* b = map.get("batch")) {
    MapView bm(*this, b->value, b->key.Mark(), b->path);
    if (bm.ok()) {
      bm.check_keys({"max_events", "max_bytes", "max_wait"});
      if (const auto* x = bm.get("max_events")) {
        if (auto v = integer(*x, 0, 100000))
          out.batch.max_events = static_cast<std::uint32_t>(*v);
      }
      if (const auto* x = bm.get("max_bytes")) {
        if (auto v = size(*x))
          out.batch.max_bytes = *v;
      }
      if (const auto* x = bm.get("max_wait")) {
        if (auto d = duration(*x, true))
          out.batch.max_wait = *d;
      }
    }
  }
  if (const auto* t = map.get("tls")) {
    if (auto v = tls(*t, false))
      out.tls = *v;
  }
  if (const auto* r = map.get("follow_redirects")) {
    if (auto v = boolean(*r))
      out.follow_redirects = *v;
  }
}

void Loader::file_sink(const MapView& map, FileSinkConfig& out) {
  if (const auto* p = map.require("path", "a file path template")) {
    if (auto t = template_(*p, true))
      out.path = std::move(*t);
  }
  if (const auto* r = map.get("rotate")) {
    MapView rm(*this, r->value, r->key.Mark(), r->path);
    if (rm.ok()) {
      rm.check_keys({"max_size", "max_age"});
      if (const auto* x = rm.get("max_size")) {
        if (auto v = size(*x))
          out.rotate_max_size = *v;
      }
      if (const auto* x = rm.get("max_age")) {
        if (auto d = duration(*x))
          out.rotate_max_age = *d;
      }
    }
  }
  if (const auto* x = map.get("fsync")) {
    using F = FileSinkConfig::Fsync;
    if (auto v =
            enumeration<F>(*x, {{"always", F::always}, {"batch", F::batch}, {"never", F::never}}))
      out.fsync = *v;
  }
}

std::optional<Query::Value> Loader::query_value(const Field& f) {
  if (f.value.IsNull())
    return Query::Value(nullptr);
  auto s = scalar(f, "a value (string, number, boolean or null)");
  if (!s)
    return std::nullopt;
  // yaml-cpp tags a plain scalar "?" and a quoted one "!": only plain ones are typed, and a
  // value that came from ${…} stays a string.
  if (f.value.Tag() == "?" && !s->secret)
    return plain_value(s->value);
  return Query::Value(std::move(s->value));
}

std::optional<Query> Loader::condition(const YAML::Node& node, const YAML::Mark& fallback,
                                       const std::string& path) {
  std::vector<std::string> names;
  for (const auto& m : kMethods)
    names.emplace_back(m.name);
  const std::string methods = join(names);
  if (!node.IsMap() || node.size() != 1) {
    error(node.IsNull() ? fallback : node.Mark(), path,
          "expected a condition: a mapping with one method, e.g. {equal: [status, paid]} "
          "(methods: " +
              methods + ")");
    return std::nullopt;
  }
  const auto it = node.begin();
  const YAML::Node key = it->first;
  const YAML::Node args = it->second;
  const std::string name = key.IsScalar() ? key.Scalar() : "";
  const std::string here = child_path(path, name);
  const Field field{key, args, here};
  if (name == "select") {
    error(key.Mark(), here, "select is not allowed in routes (expected one of: " + methods + ")");
    return std::nullopt;
  }
  const auto* found = std::find_if(std::begin(kMethods), std::end(kMethods),
                                   [&](const MethodName& m) { return m.name == name; });
  if (found == std::end(kMethods)) {
    error(key.Mark(), here,
          "unknown method " + quote(name) + " (expected one of: " + methods + ")");
    return std::nullopt;
  }
  Query q;
  q.method = found->method;
  using M = Query::Method;
  switch (q.method) {
    case M::and_:
    case M::or_: {
      if (!args.IsSequence() || args.size() == 0) {
        error(field.mark(), here,
              name + " takes a non-empty list of conditions, e.g. " + name +
                  ": [{equal: [a, 1]}, {lessThan: [b, 2]}]");
        return std::nullopt;
      }
      bool ok = true;
      for (std::size_t i = 0; i < args.size(); ++i) {
        auto child = condition(args[i], field.mark(), index_path(here, i));
        if (child) {
          q.queries.push_back(std::move(*child));
        } else {
          ok = false;
        }
      }
      if (!ok)
        return std::nullopt;
      return q;
    }
    case M::is_null:
    case M::is_not_null: {
      Field attribute = field;
      if (args.IsSequence()) {
        if (args.size() != 1) {
          error(field.mark(), here,
                name + " takes 1 argument, [attribute], got " + std::to_string(args.size()));
          return std::nullopt;
        }
        attribute = {args[0], args[0], index_path(here, 0)};
      }
      auto a = string(attribute);
      if (!a)
        return std::nullopt;
      q.attribute = std::move(*a);
      return q;
    }
    default:
      break;
  }
  const bool ordering = q.method != M::equal && q.method != M::not_equal;
  const std::string form = ordering ? "[attribute, value]" : "[attribute, value or list of values]";
  if (!args.IsSequence()) {
    error(field.mark(), here, name + " takes a list: " + form + ", got " + kind_of(args));
    return std::nullopt;
  }
  if (args.size() != 2) {
    error(field.mark(), here,
          name + " takes 2 arguments, " + form + ", got " + std::to_string(args.size()));
    return std::nullopt;
  }
  auto a = string({args[0], args[0], index_path(here, 0)});
  const YAML::Node& values = args[1];
  const Field values_field{values, values, index_path(here, 1)};
  bool ok = a.has_value();
  if (values.IsSequence()) {
    if (ordering) {
      error(values.Mark(), values_field.path, name + " compares with one value, got a list");
      return std::nullopt;
    }
    if (values.size() == 0) {
      error(values.Mark(), values_field.path, "expected at least one value");
      return std::nullopt;
    }
    for (std::size_t i = 0; i < values.size(); ++i) {
      auto v = query_value({values[i], values[i], index_path(values_field.path, i)});
      if (v) {
        q.values.push_back(std::move(*v));
      } else {
        ok = false;
      }
    }
  } else if (values.IsMap()) {
    error(values.Mark(), values_field.path, "expected a value or a list of values, got a mapping");
    ok = false;
  } else {
    Field v_field = values_field;
    if (values.IsNull())
      v_field.key = args;  // point at the list when the value is empty
    auto v = query_value(v_field);
    if (v) {
      q.values.push_back(std::move(*v));
    } else {
      ok = false;
    }
  }
  if (!ok)
    return std::nullopt;
  q.attribute = std::move(*a);
  return q;
}

void Loader::routes(const Field& f, Config& out) {
  if (!f.value.IsSequence()) {
    error(f.mark(), f.path, "expected a list of routes, got " + kind_of(f.value));
    return;
  }
  if (f.value.size() == 0) {
    error(f.mark(), f.path, "expected at least one route");
    return;
  }
  std::vector<std::string> known = sink_names_;
  std::sort(known.begin(), known.end());
  std::map<std::string, int> names;  // route name → line of first use
  for (std::size_t i = 0; i < f.value.size(); ++i) {
    const YAML::Node& node = f.value[i];
    const std::string path = index_path(f.path, i);
    const auto errors_before = errors_.size();
    MapView map(*this, node, node.IsNull() ? f.key.Mark() : node.Mark(), path);
    if (!map.ok())
      continue;
    map.check_keys({"name", "channels", "events", "where", "sinks"});
    RouteConfig route;
    route.location = {file_, node.Mark().line + 1, node.Mark().column + 1};
    if (const auto* n = map.require("name", "a unique route name")) {
      if (auto s = string(*n)) {
        const auto [it, inserted] = names.emplace(*s, n->mark().line + 1);
        if (!inserted) {
          error(n->mark(), n->path,
                "duplicate route name " + quote(*s) + " (first used at line " +
                    std::to_string(it->second) + ")");
        }
        route.name = *s;
      }
    }
    if (const auto* c = map.require("channels", "a list of realtime channels")) {
      if (auto list = string_list(*c, "channel names")) {
        if (list->empty()) {
          error(
              c->mark(), c->path,
              "expected at least one channel, e.g. [databases.shop.collections.orders.documents]");
        }
        route.channels = std::move(*list);
      }
    }
    if (const auto* e = map.get("events")) {
      if (auto list = string_list(*e, "event patterns")) {
        for (std::size_t j = 0; j < list->size(); ++j) {
          const auto& pattern = (*list)[j];
          if (pattern.front() == '.' || pattern.back() == '.' ||
              pattern.find("..") != std::string::npos) {
            error(e->value[j].Mark(), index_path(e->path, j),
                  "event pattern " + quote(pattern) + " has an empty segment");
          }
        }
        route.events = std::move(*list);
      }
    }
    if (const auto* w = map.get("where")) {
      if (!w->value.IsSequence()) {
        error(w->mark(), w->path,
              "expected a list of conditions, e.g. [{equal: [status, paid]}], got " +
                  kind_of(w->value));
      } else {
        for (std::size_t j = 0; j < w->value.size(); ++j) {
          if (auto q = condition(w->value[j], w->mark(), index_path(w->path, j))) {
            route.where.push_back(std::move(*q));
          }
        }
      }
    }
    if (const auto* s = map.require("sinks", "a list of sink names")) {
      if (auto list = string_list(*s, "sink names")) {
        if (list->empty())
          error(s->mark(), s->path, "expected at least one sink");
        std::set<std::string> seen;
        for (std::size_t j = 0; j < list->size(); ++j) {
          const auto& name = (*list)[j];
          const auto item_path = index_path(s->path, j);
          if (std::find(known.begin(), known.end(), name) == known.end()) {
            error(s->value[j].Mark(), item_path,
                  "unknown sink " + quote(name) +
                      " (known: " + (known.empty() ? std::string("none") : join(known)) + ")");
          } else if (!seen.insert(name).second) {
            error(s->value[j].Mark(), item_path, "sink " + quote(name) + " is listed twice");
          }
        }
        route.sinks = std::move(*list);
      }
    }
    if (errors_.size() == errors_before)
      out.routes.push_back(std::move(route));
  }
}

LoadResult Loader::run(std::string_view text) {
  LoadResult result;
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    error(e.mark, "", "YAML syntax error: " + e.msg);
    result.errors = std::move(errors_);
    return result;
  }
  const YAML::Mark top{};  // line 0, column 0: the start of the file
  if (root.IsNull()) {
    error(top, "", "the file is empty (expected a mapping with appwrite, sinks and routes)");
    result.errors = std::move(errors_);
    return result;
  }
  Config config;
  config.path = file_;
  try {
    MapView map(*this, root, top, "");
    if (map.ok()) {
      map.check_keys({"appwrite", "admin", "log", "buffer", "sinks", "routes"});
      if (const auto* a = map.require("appwrite", "the Appwrite endpoint, project and auth")) {
        appwrite(*a, config.appwrite);
      }
      if (const auto* a = map.get("admin"))
        admin(*a, config.admin);
      if (const auto* l = map.get("log"))
        log_section(*l, config.log);
      if (const auto* b = map.get("buffer"))
        config.buffer = buffer(*b, config.buffer);
      if (const auto* s = map.require("sinks", "a mapping of sink names to sinks")) {
        sinks(*s, config.buffer, config);
      }
      if (const auto* r = map.require("routes", "a list of routes"))
        routes(*r, config);
    }
  } catch (const std::exception& e) {
    // yaml-cpp throws on a few malformed trees (e.g. a bad alias) that Load() accepted.
    error(top, "", std::string("cannot read the configuration: ") + e.what());
  }
  std::stable_sort(errors_.begin(), errors_.end(), [](const Error& a, const Error& b) {
    return std::pair(a.location.line, a.location.column) <
           std::pair(b.location.line, b.location.column);
  });
  result.errors = std::move(errors_);
  if (result.errors.empty())
    result.config = std::move(config);
  return result;
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

LoadResult load_string(std::string_view text, const std::string& name) {
  try {
    InterpolationEnv env;
    env.base_dir = directory_of(name);
    return Loader(name, std::move(env)).run(text);
  } catch (const std::exception& e) {
    LoadResult result;
    result.errors.push_back({{name, 0, 0}, "", std::string("cannot load: ") + e.what()});
    return result;
  }
}

LoadResult load_file(const std::string& path) {
  std::string text;
  std::string reason;
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    LoadResult result;
    reason = errno != 0 ? std::strerror(errno) : "cannot open";
    result.errors.push_back({{path, 0, 0}, "", "cannot read the configuration file: " + reason});
    return result;
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return load_string(buffer.str(), path);
}

}  // namespace sluice::config
