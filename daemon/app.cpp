#include "daemon/app.hpp"

#include "core/log.hpp"

namespace sluice {

int run_daemon(const Options& /*options*/, config::Config /*config*/) {
  log::error("app", "the daemon loop is not wired yet");
  return kExitRuntime;
}

}  // namespace sluice
