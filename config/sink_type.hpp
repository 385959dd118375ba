#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config_map.hpp"

// The sink types the loader knows, as it sees them: a name and how to read a sink's own keys.
// config/ names no sink type; sinks/ provides the list (sinks::sink_types()) and whoever loads a
// file passes it in, so a sink type lives in its own folder. Built once, then read-only.
namespace sluice::config {

struct SinkType {
  using Parse = std::function<std::shared_ptr<const SinkSettings>(Reader&, const MapView&)>;
  std::string name;               // the `type:` value
  std::vector<std::string> keys;  // the type's own keys, besides the ones every sink has
  // Reads the type's keys from the sink's mapping; the loader checks for unknown keys.
  Parse parse;
};

// A sink type whose settings struct `T` (with `T::kType`) is read by `map`.
template <class T>
SinkType sink_type(ConfigMap<T> map) {
  auto keys = map.names();
  return {std::string(T::kType), std::move(keys),
          [map = std::move(map)](Reader& reader, const MapView& view) {
            T settings;
            map.read_keys(reader, view, settings);
            return make_settings(std::move(settings));
          }};
}

class SinkTypes {
 public:
  SinkTypes() = default;
  explicit SinkTypes(std::vector<SinkType> types) : types_(std::move(types)) {}

  const SinkType* find(std::string_view name) const {
    for (const auto& type : types_) {
      if (type.name == name)
        return &type;
    }
    return nullptr;
  }
  const std::vector<SinkType>& all() const { return types_; }

 private:
  std::vector<SinkType> types_;
};

}  // namespace sluice::config
