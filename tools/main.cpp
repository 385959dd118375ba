// The sluice executable: command line, configuration, then the daemon (daemon/app.cpp).
#include <malloc.h>
#include <unistd.h>

#include <charconv>
#include <csignal>
#include <exception>
#include <fstream>
#include <iostream>
#include <string>
#include <tuple>
#include <vector>

#include "config/loader.hpp"
#include "config/reader.hpp"
#include "core/log.hpp"
#include "daemon/app.hpp"
#include "daemon/cli.hpp"
#include "daemon/recovery/backfill_plan.hpp"
#include "daemon/version.hpp"
#include "sinks/sink_types.hpp"
#include "tools/lint.hpp"
#include "tools/replay.hpp"
#include "tools/route_test.hpp"

namespace {

// `sluice test`: the configuration is valid here.
int run_test(const sluice::Options& options, const sluice::config::Config& config) {
  using namespace sluice;
  if (options.capture) {
    std::ifstream in(*options.capture, std::ios::binary);
    if (!in) {
      std::cerr << "sluice: cannot read " << *options.capture << '\n';
      return kExitUsage;
    }
    std::string error;
    const auto cases = tools::capture_cases(config, in, *options.capture, error);
    if (!cases) {
      std::cerr << error << '\n';
      return kExitInvalidConfig;
    }
    std::cout << *cases;
    return kExitOk;
  }
  const auto run = tools::run_tests(config);
  for (const auto& error : run.errors)
    std::cerr << error.format() << '\n';
  std::cerr.flush();
  if (!run.found) {
    std::cerr << "sluice: " << options.config_path
              << " has no tests section (see README, \"Testing routes before deploying\")\n";
    return kExitUsage;
  }
  std::cout << tools::format_report(run);
  return run.errors.empty() && run.failed() == 0 ? kExitOk : kExitInvalidConfig;
}

// `sluice replay`: the configuration is valid here.
int run_replay(const sluice::Options& options, const sluice::config::Config& config) {
  using namespace sluice;
  tools::ReplayOptions replay;
  replay.file = options.replay_file;
  replay.reason = options.replay_reason;
  replay.dry_run = options.dry_run;
  replay.failed = options.replay_failed_to.value_or("");
  replay.progress = ::isatty(STDERR_FILENO) == 1;
  if (options.replay_sink) {
    if (config.find_sink(*options.replay_sink) == nullptr) {
      std::vector<std::string> names;
      for (const auto& sink : config.sinks)
        names.push_back(sink.name);
      std::cerr << "sluice: --sink: unknown sink " << config::quote(*options.replay_sink) << " ("
                << config::did_you_mean(*options.replay_sink, names)
                << "known: " << config::join(names) << ")\n";
      return kExitUsage;
    }
    replay.sink = options.replay_sink;
  }
  for (auto [given, out, name] : {std::tuple{&options.replay_since, &replay.since, "--since"},
                                  std::tuple{&options.replay_until, &replay.until, "--until"}}) {
    if (!*given)
      continue;
    *out = tools::parse_time(**given);
    if (!*out) {
      std::cerr << "sluice: " << name << " " << config::quote(**given)
                << ": expected a time such as 2026-03-01, 2026-03-01T12:00:00Z or "
                   "2026-03-01T13:00:00+01:00\n";
      return kExitUsage;
    }
  }
  if (options.replay_from_line) {
    const auto& text = *options.replay_from_line;
    std::size_t line = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), line);
    if (ec != std::errc() || end != text.data() + text.size() || line == 0) {
      std::cerr << "sluice: --from-line " << config::quote(text)
                << ": expected a line number (1 or more)\n";
      return kExitUsage;
    }
    replay.from_line = line;
  }
  const auto totals = tools::run_replay(config, replay);
  if (!totals)
    return kExitUsage;
  if (totals->not_written || totals->read_error != 0)
    return kExitRuntime;
  if (totals->stopped_at != 0)
    return kExitStopped;
  if (replay.dry_run)
    return kExitOk;
  return totals->failed + totals->unreadable > 0 ? kExitUndelivered : kExitOk;
}

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
  if (options.command == Command::test)
    return run_test(options, *loaded.config);
  if (options.command == Command::replay)
    return run_replay(options, *loaded.config);
  if (options.check_config) {
    // The lint checks what would run, --admin-listen included.
    apply_overrides(options, *loaded.config);
    const auto warnings = tools::lint(*loaded.config);
    for (const auto& warning : warnings)
      std::cerr << warning.format() << '\n';
    // Not warnings (--strict passes): Appwrite simply has no history of these to list.
    for (const auto& u : recovery::uncovered_channels(*loaded.config)) {
      std::cerr << "note: route \"" << u.route << "\": channel \"" << u.channel
                << "\" cannot be backfilled after a gap: " << u.reason << '\n';
    }
    std::cerr.flush();
    if (warnings.empty()) {
      std::cout << options.config_path << ": configuration is valid\n";
      return kExitOk;
    }
    if (options.strict)
      return kExitInvalidConfig;
    std::cout << options.config_path << ": configuration is valid, with " << warnings.size()
              << (warnings.size() == 1 ? " warning\n" : " warnings\n");
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
