#pragma once

#include "config/config.hpp"
#include "daemon/cli.hpp"

namespace sluice {

// Runs the daemon until SIGTERM/SIGINT (exit code kExitOk after draining) or a fatal error
// (kExitRuntime). `config` has passed validation; the command-line overrides are applied.
int run_daemon(const Options& options, config::Config config);

}  // namespace sluice
