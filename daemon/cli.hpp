#pragma once

#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "core/log.hpp"

// The command line (README, "Command line"), parsed into plain values. Parsing never exits the
// process; main() decides what to print and which exit code to use.
namespace sluice {

inline constexpr int kExitOk = 0;
inline constexpr int kExitInvalidConfig = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitRuntime = 3;
// Stopped, but some records could not be delivered or kept in a disk buffer (memory buffers).
inline constexpr int kExitUndelivered = 4;
// `sluice replay` stopped by SIGINT/SIGTERM before the end of the file (resume with --from-line).
inline constexpr int kExitStopped = 5;

// What the binary does: run the daemon, or one of the operator tools (README, "Testing routes
// before deploying" and "Replaying dead letters").
enum class Command { run, test, replay };

struct Options {
  Command command = Command::run;
  std::string config_path;
  bool check_config = false;
  bool strict = false;                      // --check-config --strict: warnings fail like errors
  bool watch_config = false;                // reload when the file changes (issue 7)
  std::optional<std::string> admin_listen;  // HOST:PORT, overrides admin.listen
  std::optional<log::Level> log_level;      // overrides log.level
  std::optional<log::Format> log_format;    // overrides log.format
  bool version = false;
  bool help = false;
  std::optional<std::string> capture;  // test --capture FILE: records to turn into test cases
  // replay FILE [--sink NAME] [--reason TEXT] [--since TIME] [--until TIME] [--failed-to PATH]
  // [--from-line N] [--dry-run]; the times are checked by main(), which knows their format.
  std::string replay_file;
  std::optional<std::string> replay_sink;
  std::optional<std::string> replay_reason;
  std::optional<std::string> replay_since;
  std::optional<std::string> replay_until;
  std::optional<std::string> replay_failed_to;
  std::optional<std::string> replay_from_line;  // --from-line N, checked by main()
  bool dry_run = false;
};

struct ParseOutcome {
  std::optional<Options> options;  // unset on a usage error
  std::string error;               // the usage error, for stderr
};

ParseOutcome parse_command_line(const std::vector<std::string>& args);  // args exclude argv[0]
std::string usage_text();

// Applies --admin-listen, --log-level and --log-format over a loaded configuration: at start-up
// and again after every reload, so the command line keeps winning over the file.
void apply_overrides(const Options& options, config::Config& config);

}  // namespace sluice
