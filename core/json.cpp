#include "core/json.hpp"

#include <charconv>
#include <cstdio>

#include <simdjson.h>

#include "core/event.hpp"

namespace sluice {
namespace {

static_assert(kJsonPadding >= simdjson::SIMDJSON_PADDING, "padding must satisfy simdjson");

namespace od = simdjson::ondemand;

// Reads the value `v` (positioned at the end of the path) into `out`.
void read_value(od::value v, JsonValue& out) {
  od::json_type type;
  if (v.type().get(type) != simdjson::SUCCESS)
    return;
  switch (type) {
    case od::json_type::null:
      if (v.is_null())
        out.type = JsonValue::Type::null;
      return;
    case od::json_type::boolean: {
      bool b = false;
      if (v.get_bool().get(b) != simdjson::SUCCESS)
        return;
      out.type = JsonValue::Type::boolean;
      out.boolean = b;
      out.text = b ? "true" : "false";
      return;
    }
    case od::json_type::number: {
      std::string_view raw = v.raw_json_token();
      while (!raw.empty() && (raw.back() == ' ' || raw.back() == '\n' || raw.back() == '\r' ||
                              raw.back() == '\t')) {
        raw.remove_suffix(1);
      }
      double d = 0;
      if (v.get_double().get(d) != simdjson::SUCCESS)
        return;
      out.type = JsonValue::Type::number;
      out.number = d;
      out.text = std::string(raw);
      return;
    }
    case od::json_type::string: {
      std::string_view s;
      if (v.get_string().get(s) != simdjson::SUCCESS)
        return;
      out.type = JsonValue::Type::string;
      out.text = std::string(s);
      return;
    }
    case od::json_type::object: {
      od::object o;
      std::string_view raw;
      if (v.get_object().get(o) != simdjson::SUCCESS || o.raw_json().get(raw))
        return;
      out.type = JsonValue::Type::object;
      out.text = std::string(raw);
      return;
    }
    case od::json_type::array: {
      od::array a;
      std::string_view raw;
      if (v.get_array().get(a) != simdjson::SUCCESS || a.raw_json().get(raw))
        return;
      out.type = JsonValue::Type::array;
      out.text = std::string(raw);
      return;
    }
  }
}

// A parser keeps the buffers of the largest document it has read (about 4 bytes per JSON token):
// documents above this size get a parser of their own, so one huge payload does not raise the
// footprint for the rest of the run.
constexpr std::size_t kReusedParserBytes = 1u << 20;

JsonValue lookup_padded(JsonBytes json, std::string_view path) {
  thread_local od::parser reused;
  od::parser one_off;
  od::parser& parser = json.size > kReusedParserBytes ? one_off : reused;
  JsonValue out;
  od::document doc;
  if (parser.iterate(json.data, json.size, json.capacity).get(doc) != simdjson::SUCCESS) {
    return out;
  }
  od::value current;
  if (doc.get_value().get(current) != simdjson::SUCCESS)
    return out;
  while (!path.empty()) {
    const auto dot = path.find('.');
    const std::string_view segment = path.substr(0, dot);
    path = dot == std::string_view::npos ? std::string_view{} : path.substr(dot + 1);

    od::json_type type;
    if (current.type().get(type) != simdjson::SUCCESS)
      return out;
    od::value next;
    if (type == od::json_type::object) {
      od::object o;
      if (current.get_object().get(o) != simdjson::SUCCESS)
        return out;
      // find_field_unordered: Appwrite does not promise key order.
      if (o.find_field_unordered(segment).get(next) != simdjson::SUCCESS)
        return out;
    } else if (type == od::json_type::array) {
      std::size_t index = 0;
      const auto [ptr, ec] =
          std::from_chars(segment.data(), segment.data() + segment.size(), index);
      if (ec != std::errc{} || ptr != segment.data() + segment.size())
        return out;
      od::array a;
      if (current.get_array().get(a) != simdjson::SUCCESS)
        return out;
      if (a.at(index).get(next) != simdjson::SUCCESS)
        return out;
    } else {
      return out;
    }
    current = next;
  }
  read_value(current, out);
  return out;
}

}  // namespace

JsonValue json_lookup(JsonBytes json, std::string_view path) {
  if (json.capacity >= json.size + simdjson::SIMDJSON_PADDING)
    return lookup_padded(json, path);
  const simdjson::padded_string copy(json.data, json.size);
  return lookup_padded({copy.data(), copy.size(), copy.size() + simdjson::SIMDJSON_PADDING}, path);
}

void append_json_string(std::string& out, std::string_view text) {
  out.push_back('"');
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

}  // namespace sluice
