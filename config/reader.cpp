#include "config/reader.hpp"

#include <boost/url/parse.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "config/config_map.hpp"
#include "config/units.hpp"

namespace sluice::config {

namespace {

bool readable(const std::string& path, std::string& reason) {
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    reason = errno != 0 ? std::strerror(errno) : "cannot open";
    return false;
  }
  return true;
}

}  // namespace

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

std::string join(const std::vector<std::string>& items, std::string_view separator) {
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

std::string did_you_mean(std::string_view given, const std::vector<std::string>& candidates) {
  const auto lower = [](std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
  };
  const std::string a = lower(given);
  // Edit distance with adjacent transpositions (optimal string alignment): a swapped pair is
  // one typo, as people make them. Names are short, so the full table is cheap.
  const auto distance = [&](const std::string& b) {
    const std::size_t n = a.size();
    const std::size_t m = b.size();
    std::vector<std::vector<std::size_t>> d(n + 1, std::vector<std::size_t>(m + 1));
    for (std::size_t i = 0; i <= n; ++i)
      d[i][0] = i;
    for (std::size_t j = 0; j <= m; ++j)
      d[0][j] = j;
    for (std::size_t i = 1; i <= n; ++i) {
      for (std::size_t j = 1; j <= m; ++j) {
        const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
        d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
        if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
          d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
    return d[n][m];
  };
  const std::string* best = nullptr;
  std::size_t best_distance = 0;
  for (const auto& candidate : candidates) {
    const std::size_t d = distance(lower(candidate));
    // About one typo per four letters: "topik" finds "topic", "sometimes" finds nothing.
    const std::size_t allowed = std::max<std::size_t>(1, (candidate.size() + 2) / 4);
    // A name that would have to be rewritten whole ("z" for "f") is no typo of it.
    if (d > allowed || d >= candidate.size())
      continue;
    if (best == nullptr || d < best_distance) {
      best = &candidate;
      best_distance = d;
    }
  }
  return best == nullptr ? std::string() : "did you mean " + quote(*best) + "? ";
}

std::string redacted_url(std::string_view url, bool secret) {
  const auto parsed = boost::urls::parse_uri(url);
  if (!parsed)
    return "<invalid URL>";
  std::string out = std::string(parsed->scheme()) + "://";
  if (parsed->has_userinfo())
    out += "***@";
  out += parsed->encoded_host_and_port();
  const bool rest =
      !parsed->encoded_path().empty() || parsed->has_query() || parsed->has_fragment();
  if (secret) {
    if (rest)
      out += "/…";
    return out;
  }
  out += parsed->encoded_path();
  if (parsed->has_query())
    out += "?" + std::string(parsed->encoded_query());
  if (parsed->has_fragment())
    out += "#" + std::string(parsed->encoded_fragment());
  return out;
}

std::string quote(std::string_view text) {
  return "\"" + std::string(text) + "\"";
}

// ---------------------------------------------------------------------------------------------

void Reader::error(const YAML::Mark& mark, std::string path, std::string message) {
  Location location{file_, mark.line >= 0 ? mark.line + 1 : 1,
                    mark.column >= 0 ? mark.column + 1 : 1};
  errors_.push_back({std::move(location), std::move(path), std::move(message)});
}

std::vector<Error> Reader::take_errors() {
  std::stable_sort(errors_.begin(), errors_.end(), [](const Error& a, const Error& b) {
    return std::pair(a.location.line, a.location.column) <
           std::pair(b.location.line, b.location.column);
  });
  return std::move(errors_);
}

std::optional<Scalar> Reader::scalar(const Field& f, std::string_view expected) {
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

std::optional<std::string> Reader::string(const Field& f, bool non_empty) {
  auto s = scalar(f, "a string");
  if (!s)
    return std::nullopt;
  if (non_empty && s->value.empty()) {
    error(f.mark(), f.path, "expected a non-empty string");
    return std::nullopt;
  }
  return std::move(s->value);
}

std::optional<Secret> Reader::secret(const Field& f) {
  auto s = string(f);
  if (!s)
    return std::nullopt;
  return Secret(std::move(*s));
}

std::optional<bool> Reader::boolean(const Field& f) {
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

std::optional<Duration> Reader::duration(const Field& f, bool allow_zero) {
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

std::optional<std::uint64_t> Reader::size(const Field& f, bool allow_zero) {
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

std::optional<std::uint64_t> Reader::integer(const Field& f, std::uint64_t min, std::uint64_t max) {
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

std::optional<double> Reader::number(const Field& f, double min, double max) {
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

std::optional<Scalar> Reader::checked_url(const Field& f,
                                          const std::vector<std::string_view>& schemes,
                                          std::string_view expected, bool user_info) {
  auto s = scalar(f, "a URL");
  if (!s)
    return std::nullopt;
  const auto bad = [&](std::string_view why) {
    error(f.mark(), f.path,
          "expected " + std::string(expected) + ", got " + quote(s->display) +
              (why.empty() ? "" : ": " + std::string(why)));
    return std::nullopt;
  };
  const auto parsed = boost::urls::parse_uri(s->value);
  if (!parsed && s->value.find("://") == std::string::npos)
    return bad("");  // not even SCHEME://: the expected form says it all
  if (!parsed)
    return bad("not a valid URL (spaces and other special characters must be percent-encoded)");
  std::string scheme(parsed->scheme());
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (std::find(schemes.begin(), schemes.end(), scheme) == schemes.end())
    return bad("");
  if (!parsed->has_authority() || parsed->encoded_host().empty())
    return bad("no host");
  if (parsed->has_port()) {
    // port_number() wraps numbers past 65535; a port that does not fit fails at connect.
    const auto port = parsed->port();
    const auto n = port.size() <= 5 ? std::strtoul(std::string(port).c_str(), nullptr, 10) : 0;
    if (port.empty() || n == 0 || n > 65535)
      return bad("the port must be a number from 1 to 65535");
  }
  if (parsed->has_userinfo() && !user_info) {
    return bad(
        "user info (user:password@) is not supported here; send credentials in headers, e.g. "
        "Authorization");
  }
  s->value.replace(0, scheme.size(), scheme);
  return s;
}

std::optional<std::string> Reader::url(const Field& f, const std::vector<std::string_view>& schemes,
                                       std::string_view expected) {
  auto s = checked_url(f, schemes, expected, false);
  if (!s)
    return std::nullopt;
  return std::move(s->value);
}

std::optional<std::vector<std::string>> Reader::string_list(const Field& f, std::string_view what) {
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

std::optional<Template> Reader::template_(const Field& f, bool allow_strftime) {
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

std::map<std::string, Template> Reader::header_templates(const Field& f) {
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

std::optional<TlsConfig> Reader::tls(const Field& f, bool server) {
  using T = TlsConfig;
  // A file the daemon will read: it must be readable now. Relative paths mean "next to the
  // configuration file", like ${file:…}.
  auto file = [](std::string T::*member) {
    return [member](Reader& r, const Field& x, T& out) {
      auto s = r.scalar(x, "a file path");
      if (!s)
        return;
      if (s->value.empty()) {
        r.error(x.mark(), x.path, "expected a file path, got an empty string");
        return;
      }
      const auto path = r.resolve_relative(s->value);
      std::string reason;
      if (!readable(path, reason)) {
        r.error(x.mark(), x.path, "cannot read " + quote(s->display) + ": " + reason);
        return;
      }
      out.*member = path;
    };
  };
  auto pair = [](bool needs_cert) {
    return [needs_cert](Reader& r, const MapView& map, T&) {
      const bool has_cert = map.get("cert_file") != nullptr;
      const bool has_key = map.get("key_file") != nullptr;
      if (has_cert != has_key) {
        r.error(map.anchor(), map.path(),
                std::string("cert_file and key_file go together: ") +
                    (has_cert ? "key_file" : "cert_file") + " is missing");
      } else if (needs_cert && !has_cert) {
        r.error(map.anchor(), map.path(), "a TLS server needs cert_file and key_file");
      }
    };
  };
  auto keys = [&] {
    return std::vector<ConfigKey<T>>{
        custom_key<T>("ca_file", file(&T::ca_file), "CA certificates; absent: the system store"),
        key("verify", &T::verify, as::boolean(), "false turns certificate checks off"),
        custom_key<T>("cert_file", file(&T::cert_file), "a certificate to present, with key_file"),
        custom_key<T>("key_file", file(&T::key_file), "the certificate's private key"),
    };
  };
  static const ConfigMap<T> client_map(keys(), pair(false));
  static const ConfigMap<T> server_map(keys(), pair(true));
  const auto& map = server ? server_map : client_map;

  const MapView view(*this, f.value, f.key.Mark(), f.path);
  if (!view.ok())
    return std::nullopt;
  map.check_keys(view);
  // Any problem inside makes the whole block unusable: half a TLS setting is not a safe one.
  const auto errors_before = error_count();
  TlsConfig out;
  map.read_keys(*this, view, out);
  if (error_count() != errors_before)
    return std::nullopt;
  return out;
}

std::string Reader::resolve_relative(const std::string& path) const {
  if (path.empty() || path.front() == '/' || env_.base_dir.empty() || env_.base_dir == ".") {
    return path;
  }
  return env_.base_dir + "/" + path;
}

// ---------------------------------------------------------------------------------------------

MapView::MapView(Reader& reader, const YAML::Node& node, const YAML::Mark& anchor, std::string path)
    : reader_(reader), anchor_(anchor), path_(std::move(path)) {
  if (!node.IsMap()) {
    const auto mark = node.IsNull() || node.Mark().line < 0 ? anchor : node.Mark();
    reader_.error(mark, path_, "expected a mapping, got " + kind_of(node));
    return;
  }
  ok_ = true;
  for (auto it = node.begin(); it != node.end(); ++it) {
    const YAML::Node key = it->first;
    if (!key.IsScalar()) {
      reader_.error(key.Mark(), path_, "expected a plain key, got " + kind_of(key));
      continue;
    }
    const auto& name = key.Scalar();
    const auto first = std::find_if(fields_.begin(), fields_.end(),
                                    [&](const Field& f) { return f.key.Scalar() == name; });
    if (first != fields_.end()) {
      reader_.error(key.Mark(), child_path(path_, name),
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

void MapView::check_keys(std::vector<std::string> allowed) const {
  std::sort(allowed.begin(), allowed.end());
  for (const auto& f : fields_) {
    const auto& name = f.key.Scalar();
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      reader_.error(f.key.Mark(), f.path,
                    "unknown key " + quote(name) + " (" + did_you_mean(name, allowed) +
                        "expected one of: " + join(allowed) + ")");
    }
  }
}

const Field* MapView::require(std::string_view key, std::string_view what) const {
  if (const auto* f = get(key))
    return f;
  if (ok_) {
    reader_.error(anchor_, path_,
                  "missing required key " + quote(key) + " (" + std::string(what) + ")");
  }
  return nullptr;
}

}  // namespace sluice::config
