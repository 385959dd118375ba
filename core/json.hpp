#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace sluice {

// A value read out of a JSON document by a dotted path (`a.b.0.c`), for `where` conditions and
// templates. `text` holds the unescaped string for strings and the raw JSON token otherwise
// (numbers keep their written form, objects and arrays their raw bytes).
struct JsonValue {
  enum class Type { missing, null, boolean, number, string, object, array };
  Type type = Type::missing;
  bool boolean = false;
  double number = 0;
  std::string text;

  bool present() const { return type != Type::missing; }
};

// A view of JSON bytes that may be read up to `capacity` bytes from `data` (simdjson padding).
// Pass capacity == size when the bytes are not padded: the lookup then copies them first.
struct JsonBytes {
  const char* data = nullptr;
  std::size_t size = 0;
  std::size_t capacity = 0;
};

// Looks up `path` (segments separated by '.', a numeric segment indexes an array) in the JSON
// object `json`. An empty path returns the whole document. Never throws: a malformed document
// or a missing key gives Type::missing.
JsonValue json_lookup(JsonBytes json, std::string_view path);

// Appends `text` to `out` as a JSON string literal, quotes included.
void append_json_string(std::string& out, std::string_view text);

}  // namespace sluice
