#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "config/error.hpp"
#include "config/interpolate.hpp"
#include "core/template.hpp"

// The YAML reading layer of the loader, shared with the sink folders that declare their own
// settings (sinks/*/…_config.cpp): typed readers that record every problem with its location
// and go on, so one run of --check-config reports everything. The loader walks the tree by
// hand instead of using yaml-cpp's as<T>() for that reason. Values that came from
// `${…}` are secrets: messages about them quote the `${…}` source, never the resolved text.
namespace sluice::config {

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

std::string join(const std::vector<std::string>& items, std::string_view separator = ", ");
std::string quote(std::string_view text);
std::string child_path(const std::string& parent, const std::string& key);
std::string index_path(const std::string& parent, std::size_t i);
std::string kind_of(const YAML::Node& node);  // "a mapping", "a list", …
// The candidate closest to a mistyped `given` (a letter missing, added, changed or two swapped,
// in any case), as `did you mean "channels"? ` for the start of a message's parenthesis; empty
// when none is close enough to be the likely intent.
std::string did_you_mean(std::string_view given, const std::vector<std::string>& candidates);
// A URL as /status and logs may show it: user info becomes `***`, and for a `secret` (a value
// from `${…}`) everything after the host and port becomes `/…`.
std::string redacted_url(std::string_view url, bool secret);

// One read of a configuration file: owns the error list and the interpolation environment.
// Lives for one call of load_string()/load_file() on the caller's thread. Each typed reader
// reports its own errors and returns nullopt on failure.
class Reader {
 public:
  Reader(std::string file, InterpolationEnv env) : file_(std::move(file)), env_(std::move(env)) {}

  void error(const YAML::Mark& mark, std::string path, std::string message);
  std::size_t error_count() const { return errors_.size(); }
  // The errors so far, in file order; the reader is left empty.
  std::vector<Error> take_errors();
  const std::string& file() const { return file_; }

  std::optional<Scalar> scalar(const Field& f, std::string_view expected);
  std::optional<std::string> string(const Field& f, bool non_empty = true);
  std::optional<Secret> secret(const Field& f);
  std::optional<bool> boolean(const Field& f);
  std::optional<Duration> duration(const Field& f, bool allow_zero = false);
  std::optional<std::uint64_t> size(const Field& f, bool allow_zero = false);
  std::optional<std::uint64_t> integer(const Field& f, std::uint64_t min, std::uint64_t max);
  std::optional<double> number(const Field& f, double min, double max);
  // A URL with one of `schemes` (any case; stored in lower case) that passes every check the
  // code using it makes later (net::parse_endpoint, the webhook's request target): it parses as
  // a URI, has a host and, if given, a port from 1 to 65535. User info (`user:pass@`) is
  // refused unless `user_info`: nothing would send it. `expected` names the schemes, e.g. "an
  // http:// or https:// URL". Messages quote the `${…}` source of a secret, never the URL.
  std::optional<Scalar> checked_url(const Field& f, const std::vector<std::string_view>& schemes,
                                    std::string_view expected, bool user_info);
  std::optional<std::string> url(const Field& f, const std::vector<std::string_view>& schemes,
                                 std::string_view expected);

  template <class E>
  std::optional<E> enumeration(const Field& f,
                               const std::vector<std::pair<std::string_view, E>>& values) {
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
    // A secret's value is never compared: a suggestion would reveal how close it came.
    const auto hint = s->secret ? std::string() : did_you_mean(s->value, names);
    error(f.mark(), f.path,
          "unknown value " + quote(s->display) + " (" + hint + "expected one of: " + join(names) +
              ")");
    return std::nullopt;
  }

  // A list of non-empty strings. A single string is not accepted: channels and brokers are
  // lists, and `channels: x` is more often a typo for `[x]` than intended.
  std::optional<std::vector<std::string>> string_list(const Field& f, std::string_view what);
  std::optional<Template> template_(const Field& f, bool allow_strftime);
  // A mapping of HTTP header names to templates (webhook and Kafka `headers`).
  std::map<std::string, Template> header_templates(const Field& f);
  // `server`: the admin server's TLS, which needs a certificate and key.
  std::optional<TlsConfig> tls(const Field& f, bool server);

 private:
  std::string resolve_relative(const std::string& path) const;

  std::string file_;
  InterpolationEnv env_;
  std::vector<Error> errors_;
};

// The entries of one YAML mapping. Reports a non-mapping, non-scalar keys and duplicate keys
// on construction (yaml-cpp 0.7 keeps duplicates silently); unknown keys on check_keys().
// Lives on the stack of the reader that walks the mapping.
class MapView {
 public:
  // `anchor` is where "missing key" messages point: the key that holds this mapping.
  MapView(Reader& reader, const YAML::Node& node, const YAML::Mark& anchor, std::string path);

  bool ok() const { return ok_; }
  const Field* get(std::string_view key) const;
  const std::vector<Field>& fields() const { return fields_; }
  const std::string& path() const { return path_; }
  const YAML::Mark& anchor() const { return anchor_; }

  void check_keys(std::vector<std::string> allowed) const;
  // Reports a missing key; returns the field when present.
  const Field* require(std::string_view key, std::string_view what) const;

 private:
  Reader& reader_;
  YAML::Mark anchor_;
  std::string path_;
  bool ok_ = false;
  std::vector<Field> fields_;
};

}  // namespace sluice::config
