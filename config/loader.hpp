#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "config/error.hpp"

namespace sluice::config {

// What a configuration may expand to, so a hostile or mistaken file (a YAML alias bomb, a huge
// file) is refused quickly with a located error instead of filling memory or time.
inline constexpr std::size_t kMaxFileBytes = 8u << 20;  // the file as read
// Nodes after alias expansion: an alias counts every node it stands for each time it is used.
// Routes and `where` conditions are nodes, so this bounds them too.
inline constexpr std::size_t kMaxNodes = 200000;
inline constexpr std::size_t kMaxDepth = 64;  // nesting of mappings and lists

class SinkTypes;  // config/sink_type.hpp; the daemon passes sinks::sink_types()

struct LoadResult {
  std::optional<Config> config;  // set only when errors is empty
  std::vector<Error> errors;     // every problem, in file order
  bool ok() const { return errors.empty(); }
};

// Reads, interpolates (${env:…} ${file:…} ${credential:…}) and validates a routes file; a
// sink's own keys are read by its type in `types`. Opens no network connection. Never throws.
LoadResult load_file(const std::string& path, const SinkTypes& types);
// The same for text already in memory; `name` is used in locations.
LoadResult load_string(std::string_view text, const std::string& name, const SinkTypes& types);

}  // namespace sluice::config
