#include "config/route_reader.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <iterator>
#include <limits>
#include <map>
#include <set>
#include <utility>

#include "config/config_map.hpp"

namespace sluice::config {

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

namespace {

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

std::optional<Query::Value> query_value(Reader& r, const Field& f) {
  if (f.value.IsNull())
    return Query::Value(nullptr);
  auto s = r.scalar(f, "a value (string, number, boolean or null)");
  if (!s)
    return std::nullopt;
  // yaml-cpp tags a plain scalar "?" and a quoted one "!": only plain ones are typed, and a
  // value that came from ${…} stays a string.
  if (f.value.Tag() == "?" && !s->secret)
    return plain_value(s->value);
  return Query::Value(std::move(s->value));
}

std::optional<Query> condition(Reader& r, const YAML::Node& node, const YAML::Mark& fallback,
                               const std::string& path) {
  std::vector<std::string> names;
  for (const auto& m : kMethods)
    names.emplace_back(m.name);
  const std::string methods = join(names);
  if (!node.IsMap() || node.size() != 1) {
    r.error(node.IsNull() ? fallback : node.Mark(), path,
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
    r.error(key.Mark(), here, "select is not allowed in routes (expected one of: " + methods + ")");
    return std::nullopt;
  }
  const auto* found = std::find_if(std::begin(kMethods), std::end(kMethods),
                                   [&](const MethodName& m) { return m.name == name; });
  if (found == std::end(kMethods)) {
    r.error(key.Mark(), here,
            "unknown method " + quote(name) + " (" + did_you_mean(name, names) +
                "expected one of: " + methods + ")");
    return std::nullopt;
  }
  Query q;
  q.method = found->method;
  using M = Query::Method;
  switch (q.method) {
    case M::and_:
    case M::or_: {
      if (!args.IsSequence() || args.size() == 0) {
        r.error(field.mark(), here,
                name + " takes a non-empty list of conditions, e.g. " + name +
                    ": [{equal: [a, 1]}, {lessThan: [b, 2]}]");
        return std::nullopt;
      }
      bool ok = true;
      for (std::size_t i = 0; i < args.size(); ++i) {
        auto child = condition(r, args[i], field.mark(), index_path(here, i));
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
          r.error(field.mark(), here,
                  name + " takes 1 argument, [attribute], got " + std::to_string(args.size()));
          return std::nullopt;
        }
        attribute = {args[0], args[0], index_path(here, 0)};
      }
      auto a = r.string(attribute);
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
    r.error(field.mark(), here, name + " takes a list: " + form + ", got " + kind_of(args));
    return std::nullopt;
  }
  if (args.size() != 2) {
    r.error(field.mark(), here,
            name + " takes 2 arguments, " + form + ", got " + std::to_string(args.size()));
    return std::nullopt;
  }
  auto a = r.string({args[0], args[0], index_path(here, 0)});
  const YAML::Node& values = args[1];
  const Field values_field{values, values, index_path(here, 1)};
  bool ok = a.has_value();
  if (values.IsSequence()) {
    if (ordering) {
      r.error(values.Mark(), values_field.path, name + " compares with one value, got a list");
      return std::nullopt;
    }
    if (values.size() == 0) {
      r.error(values.Mark(), values_field.path, "expected at least one value");
      return std::nullopt;
    }
    for (std::size_t i = 0; i < values.size(); ++i) {
      auto v = query_value(r, {values[i], values[i], index_path(values_field.path, i)});
      if (v) {
        q.values.push_back(std::move(*v));
      } else {
        ok = false;
      }
    }
  } else if (values.IsMap()) {
    r.error(values.Mark(), values_field.path,
            "expected a value or a list of values, got a mapping");
    ok = false;
  } else {
    Field v_field = values_field;
    if (values.IsNull())
      v_field.key = args;  // point at the list when the value is empty
    auto v = query_value(r, v_field);
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

}  // namespace

void read_routes(Reader& reader, const Field& f, std::vector<std::string> sink_names,
                 std::vector<RouteConfig>& out) {
  if (!f.value.IsSequence()) {
    reader.error(f.mark(), f.path, "expected a list of routes, got " + kind_of(f.value));
    return;
  }
  if (f.value.size() == 0) {
    reader.error(f.mark(), f.path, "expected at least one route");
    return;
  }
  std::sort(sink_names.begin(), sink_names.end());
  const auto& known = sink_names;
  std::map<std::string, int> names;  // route name → line of first use
  using R = RouteConfig;
  const ConfigMap<R> route_map({
      custom_key<R>(
          "name",
          [&](Reader& r, const Field& n, R& route) {
            if (auto s = r.string(n)) {
              const auto [it, inserted] = names.emplace(*s, n.mark().line + 1);
              if (!inserted) {
                r.error(n.mark(), n.path,
                        "duplicate route name " + quote(*s) + " (first used at line " +
                            std::to_string(it->second) + ")");
              }
              route.name = *s;
            }
          },
          "a unique route name", true),
      custom_key<R>(
          "channels",
          [](Reader& r, const Field& c, R& route) {
            if (auto list = r.string_list(c, "channel names")) {
              if (list->empty()) {
                r.error(c.mark(), c.path,
                        "expected at least one channel, e.g. "
                        "[databases.shop.collections.orders.documents]");
              }
              route.channels = std::move(*list);
            }
          },
          "a list of realtime channels", true),
      custom_key<R>(
          "events",
          [](Reader& r, const Field& e, R& route) {
            if (auto list = r.string_list(e, "event patterns")) {
              for (std::size_t j = 0; j < list->size(); ++j) {
                const auto& pattern = (*list)[j];
                if (pattern.front() == '.' || pattern.back() == '.' ||
                    pattern.find("..") != std::string::npos) {
                  r.error(e.value[j].Mark(), index_path(e.path, j),
                          "event pattern " + quote(pattern) + " has an empty segment");
                }
              }
              route.events = std::move(*list);
            }
          },
          "event patterns, `*` is one segment; absent: every event"),
      custom_key<R>(
          "where",
          [](Reader& r, const Field& w, R& route) {
            if (!w.value.IsSequence()) {
              r.error(w.mark(), w.path,
                      "expected a list of conditions, e.g. [{equal: [status, paid]}], got " +
                          kind_of(w.value));
              return;
            }
            for (std::size_t j = 0; j < w.value.size(); ++j) {
              if (auto q = condition(r, w.value[j], w.mark(), index_path(w.path, j)))
                route.where.push_back(std::move(*q));
            }
          },
          "conditions on the payload, all of which must hold"),
      custom_key<R>(
          "sinks",
          [&](Reader& r, const Field& s, R& route) {
            if (auto list = r.string_list(s, "sink names")) {
              if (list->empty())
                r.error(s.mark(), s.path, "expected at least one sink");
              std::set<std::string> seen;
              for (std::size_t j = 0; j < list->size(); ++j) {
                const auto& name = (*list)[j];
                const auto item_path = index_path(s.path, j);
                if (std::find(known.begin(), known.end(), name) == known.end()) {
                  r.error(s.value[j].Mark(), item_path,
                          "unknown sink " + quote(name) + " (" + did_you_mean(name, known) +
                              "known: " + (known.empty() ? std::string("none") : join(known)) +
                              ")");
                } else if (!seen.insert(name).second) {
                  r.error(s.value[j].Mark(), item_path, "sink " + quote(name) + " is listed twice");
                }
              }
              route.sinks = std::move(*list);
            }
          },
          "a list of sink names", true),
      key("backfill", &R::backfill, as::boolean(),
          "false: this route's channels are not recovered after a gap"),
  });
  for (std::size_t i = 0; i < f.value.size(); ++i) {
    const YAML::Node& node = f.value[i];
    const auto errors_before = reader.error_count();
    const MapView map(reader, node, node.IsNull() ? f.key.Mark() : node.Mark(),
                      index_path(f.path, i));
    RouteConfig route;
    route.location = {reader.file(), node.Mark().line + 1, node.Mark().column + 1};
    if (!route_map.read(reader, map, route))
      continue;
    if (reader.error_count() == errors_before)
      out.push_back(std::move(route));
  }
}

}  // namespace sluice::config
