#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace sluice::config {

// One problem found in a configuration file. format() gives the contract's line:
// `FILE:LINE:COLUMN: PATH: MESSAGE`, e.g.
// `routes.yaml:14:7: routes[2].sinks[0]: unknown sink "archiv" (known: archive, orders)`.
struct Error {
  Location location;
  std::string path;  // the key's path, e.g. `sinks.orders.topic` or `routes[2].sinks[0]`
  std::string message;
  std::string format() const;
};

struct LoadResult {
  std::optional<Config> config;  // set only when errors is empty
  std::vector<Error> errors;     // every problem, in file order
  bool ok() const { return errors.empty(); }
};

// Reads, interpolates (${env:…} ${file:…} ${credential:…}) and validates a routes file.
// Opens no network connection. Never throws.
LoadResult load_file(const std::string& path);
// The same for text already in memory; `name` is used in locations.
LoadResult load_string(std::string_view text, const std::string& name);

}  // namespace sluice::config
