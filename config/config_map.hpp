#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/reader.hpp"

// The keys of one mapping of routes.yaml, declared once (in the spirit of Fluent Bit's
// flb_config_map): each key's name, how its value is read (one of the `as::` value types, a
// nested map, or a function), where it is stored and what it is for. The same declaration gives
// the unknown-key check ("unknown key … (expected one of: …)") and the reading, so the two cannot
// drift apart. A key's default is its member's initializer in the settings struct: the map reads
// into a struct that already holds the defaults and only overwrites the keys that are given.
//
// Maps are immutable after construction and read on the loader's thread; the loader, and the
// sink folders for their own settings (sinks/*/…_config.cpp), declare them.
namespace sluice::config {

template <class T>
struct ConfigKey {
  using Read = std::function<void(Reader&, const Field&, T&)>;
  std::string name;
  // What the key holds; for a required key, also what "missing required key" says is expected.
  std::string help;
  bool required = false;
  Read read;  // empty: declared here, read by the caller (a sink's `type`)
};

template <class T>
class ConfigMap {
 public:
  // Runs after the keys are read: checks between keys ("max must be at least initial").
  using Check = std::function<void(Reader&, const MapView&, T&)>;
  // Runs before any key is read; false: the mapping is wrong as a whole and no key is read.
  using Gate = std::function<bool(Reader&, const MapView&, T&)>;

  explicit ConfigMap(std::vector<ConfigKey<T>> keys, Check after = {}, Gate before = {})
      : keys_(std::move(keys)), after_(std::move(after)), before_(std::move(before)) {}

  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& key : keys_)
      out.push_back(key.name);
    return out;
  }

  // Reports every key of `map` that is neither declared here nor in `also`.
  void check_keys(const MapView& map, const std::vector<std::string>& also = {}) const {
    auto allowed = names();
    allowed.insert(allowed.end(), also.begin(), also.end());
    map.check_keys(std::move(allowed));
  }

  // Reads the declared keys that `map` has into `out`, in declaration order, and reports the
  // required ones it lacks.
  void read_keys(Reader& reader, const MapView& map, T& out) const {
    if (before_ && !before_(reader, map, out))
      return;
    for (const auto& key : keys_) {
      const Field* field = key.required ? map.require(key.name, key.help) : map.get(key.name);
      if (field && key.read)
        key.read(reader, *field, out);
    }
    if (after_)
      after_(reader, map, out);
  }

  // check_keys() and read_keys(); false when `map` is not a mapping.
  bool read(Reader& reader, const MapView& map, T& out) const {
    if (!map.ok())
      return false;
    check_keys(map);
    read_keys(reader, map, out);
    return true;
  }

  // The same for the mapping under `f`.
  bool read(Reader& reader, const Field& f, T& out) const {
    const MapView map(reader, f.value, f.key.Mark(), f.path);
    return read(reader, map, out);
  }

 private:
  std::vector<ConfigKey<T>> keys_;
  Check after_;
  Gate before_;
};

// Value types: each reads one field and returns nullopt (with the error recorded) on failure.
namespace as {

inline auto string(bool non_empty = true) {
  return [=](Reader& r, const Field& f) { return r.string(f, non_empty); };
}
inline auto secret() {
  return [](Reader& r, const Field& f) { return r.secret(f); };
}
inline auto boolean() {
  return [](Reader& r, const Field& f) { return r.boolean(f); };
}
inline auto duration(bool allow_zero = false) {
  return [=](Reader& r, const Field& f) { return r.duration(f, allow_zero); };
}
inline auto size(bool allow_zero = false) {
  return [=](Reader& r, const Field& f) { return r.size(f, allow_zero); };
}
inline auto integer(std::uint64_t min, std::uint64_t max) {
  return [=](Reader& r, const Field& f) { return r.integer(f, min, max); };
}
inline auto number(double min, double max) {
  return [=](Reader& r, const Field& f) { return r.number(f, min, max); };
}
inline auto url(std::initializer_list<std::string_view> schemes, std::string expected) {
  return [schemes = std::vector<std::string_view>(schemes), expected](Reader& r, const Field& f) {
    return r.url(f, schemes, expected);
  };
}
template <class E>
auto enumeration(std::vector<std::pair<std::string_view, E>> values) {
  return [values = std::move(values)](Reader& r, const Field& f) {
    return r.enumeration<E>(f, values);
  };
}
inline auto string_list(std::string what) {
  return [what = std::move(what)](Reader& r, const Field& f) { return r.string_list(f, what); };
}
inline auto template_(bool allow_strftime = false) {
  return [=](Reader& r, const Field& f) { return r.template_(f, allow_strftime); };
}
inline auto headers() {
  return [](Reader& r, const Field& f) {
    return std::optional<std::map<std::string, Template>>(r.header_templates(f));
  };
}
inline auto tls(bool server = false) {
  return [=](Reader& r, const Field& f) { return r.tls(f, server); };
}

}  // namespace as

// An optional key read by `parse` (an `as::` value type) into `member`, which keeps its
// default when the key is absent or its value is wrong.
template <class T, class M, class Parse>
ConfigKey<T> key(std::string name, M T::*member, Parse parse, std::string help) {
  return {std::move(name), std::move(help), false,
          [member, parse = std::move(parse)](Reader& r, const Field& f, T& out) {
            if (auto v = parse(r, f))
              out.*member = static_cast<M>(std::move(*v));
          }};
}

// An optional nested mapping read by its own map into `member`.
template <class T, class M>
ConfigKey<T> key(std::string name, M T::*member, ConfigMap<M> map, std::string help) {
  return {std::move(name), std::move(help), false,
          [member, map = std::move(map)](Reader& r, const Field& f, T& out) {
            map.read(r, f, out.*member);
          }};
}

// A key that must be given; `help` says what is expected when it is missing.
template <class T, class M, class Parse>
ConfigKey<T> required_key(std::string name, M T::*member, Parse parse, std::string help) {
  auto k = key(std::move(name), member, std::move(parse), std::move(help));
  k.required = true;
  return k;
}

// A key read by a function of its own, for values that depend on other state.
template <class T>
ConfigKey<T> custom_key(std::string name, typename ConfigKey<T>::Read read, std::string help,
                        bool required = false) {
  return {std::move(name), std::move(help), required, std::move(read)};
}

}  // namespace sluice::config
