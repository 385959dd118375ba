#pragma once

#include <vector>

#include "config/config.hpp"
#include "config/error.hpp"

// The warnings of `--check-config`: a configuration that loads but is probably wrong (README,
// "Warnings"). Each is located like a configuration error and its message starts with
// "warning: ". Reads the file again for the locations and looks at the file system (paths that
// cannot be written); opens no network connection. Called once by main() on its thread.
namespace sluice::tools {

std::vector<config::Error> lint(const config::Config& config);

}  // namespace sluice::tools
