// The sluice executable: command line, configuration, then the daemon (daemon/app.cpp).
#include <malloc.h>

#include <csignal>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "config/loader.hpp"
#include "core/log.hpp"
#include "daemon/app.hpp"
#include "daemon/cli.hpp"
#include "daemon/version.hpp"
#include "sinks/sink_types.hpp"

namespace {

int run(int argc, char** argv) {
  using namespace sluice;
  const std::vector<std::string> args(argv + 1, argv + argc);
  const auto parsed = parse_command_line(args);
  if (!parsed.options) {
    std::cerr << "sluice: " << parsed.error << "\nTry 'sluice --help' for more information.\n";
    return kExitUsage;
  }
  const Options& options = *parsed.options;
  if (options.help) {
    std::cout << usage_text();
    return kExitOk;
  }
  if (options.version) {
    std::cout << version_text();
    return kExitOk;
  }

  auto loaded = config::load_file(options.config_path, sinks::sink_types());
  if (!loaded.ok()) {
    for (const auto& error : loaded.errors)
      std::cerr << error.format() << '\n';
    std::cerr.flush();
    return kExitInvalidConfig;
  }
  if (options.check_config) {
    std::cout << options.config_path << ": configuration is valid\n";
    return kExitOk;
  }
  log::detect_journal();
  config::Config config = std::move(*loaded.config);
  apply_overrides(options, config);
  log::configure(config.log.level, config.log.format);
  return run_daemon(options, std::move(config));
}

}  // namespace

int main(int argc, char** argv) {
  // A file that reaches RLIMIT_FSIZE raises SIGXFSZ, whose default action kills the process:
  // ignored, the write fails with EFBIG instead, and the disk buffer and file sinks report it
  // (and keep running) like any other full disk.
  std::signal(SIGXFSZ, SIG_IGN);
  // Writing to a pipe or socket whose reader is gone raises SIGPIPE, whose default action kills
  // the process: a restarted log collector on stderr would lose every queued event. Ignored
  // here, before any thread exists, such writes fail with EPIPE instead: the log record is
  // dropped, a socket sees an error like any other broken connection (Asio also sends with
  // MSG_NOSIGNAL, but OpenSSL's socket writes under librdkafka's TLS do not).
  std::signal(SIGPIPE, SIG_IGN);
  // glibc raises its mmap threshold to the size of the largest block freed (up to 32 MiB);
  // blocks below it then come from the heap, which keeps them resident once freed: after one
  // 14 MB frame sluice stayed ~14 MB above its idle footprint for good. Freezing the threshold
  // (and the trim threshold beside it, as glibc would set them) at 4 MiB keeps every larger
  // block mapped on its own, so freeing it gives it back; nothing on the steady path allocates
  // blocks that large. Sanitizers ignore it.
#ifdef __GLIBC__
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
  mallopt(M_TRIM_THRESHOLD, 8 << 20);
#endif
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "sluice: fatal: " << e.what() << '\n';
    return sluice::kExitRuntime;
  }
}
