#pragma once

#include <string>

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

}  // namespace sluice::config
