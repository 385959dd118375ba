#include "daemon/cli.hpp"

#include <string_view>

#include "config/units.hpp"

namespace sluice {
namespace {

// Not "quoted": std::quoted(std::string&), found by argument-dependent lookup once a standard
// header pulls in <iomanip> (GCC 14), would be the better match.
std::string in_quotes(std::string_view text) {
  return "\"" + std::string(text) + "\"";
}

// The options each command takes; --help is everywhere.
bool takes_flag(Command command, std::string_view name) {
  if (name == "--help")
    return true;
  if (command == Command::run) {
    return name == "--check-config" || name == "--strict" || name == "--watch-config" ||
           name == "--version";
  }
  return command == Command::replay && name == "--dry-run";
}

bool takes_value(Command command, std::string_view name) {
  if (name == "--config")
    return true;
  if (command == Command::run)
    return name == "--admin-listen" || name == "--log-level" || name == "--log-format";
  if (command == Command::test)
    return name == "--capture";
  return name == "--sink" || name == "--reason" || name == "--since" || name == "--until" ||
         name == "--failed-to" || name == "--from-line";
}

}  // namespace

ParseOutcome parse_command_line(const std::vector<std::string>& args) {
  ParseOutcome outcome;
  Options options;
  std::vector<std::string> seen;
  auto fail = [&](std::string message) {
    outcome.error = std::move(message);
    return outcome;
  };

  std::size_t first = 0;
  if (!args.empty() && (args[0] == "test" || args[0] == "replay")) {
    options.command = args[0] == "test" ? Command::test : Command::replay;
    first = 1;
  }
  for (std::size_t i = first; i < args.size(); ++i) {
    std::string_view arg = args[i];
    const bool positional = arg.empty() || arg[0] != '-' || arg == "-";
    if (positional && options.command == Command::replay && options.replay_file.empty() &&
        !arg.empty()) {
      options.replay_file = std::string(arg);
      continue;
    }
    if (positional || arg == "--") {
      return fail("unexpected argument " + in_quotes(arg));
    }
    std::string name(arg);
    std::optional<std::string> inline_value;
    if (const auto eq = arg.find('='); eq != std::string_view::npos && arg.starts_with("--")) {
      name = std::string(arg.substr(0, eq));
      inline_value = std::string(arg.substr(eq + 1));
    }
    if (name == "-h")
      name = "--help";
    const bool flag = takes_flag(options.command, name);
    const bool valued = takes_value(options.command, name);
    if (!flag && !valued) {
      if (options.command != Command::run) {
        return fail("unknown option " + in_quotes(name) + " for sluice " +
                    (options.command == Command::test ? "test" : "replay"));
      }
      return fail("unknown option " + in_quotes(name));
    }
    for (const auto& s : seen) {
      if (s == name)
        return fail("option " + name + " given twice");
    }
    seen.push_back(name);
    if (flag) {
      if (inline_value)
        return fail("option " + name + " takes no value");
      if (name == "--check-config")
        options.check_config = true;
      if (name == "--strict")
        options.strict = true;
      if (name == "--dry-run")
        options.dry_run = true;
      if (name == "--watch-config")
        options.watch_config = true;
      if (name == "--version")
        options.version = true;
      if (name == "--help")
        options.help = true;
      continue;
    }
    std::string value;
    if (inline_value) {
      value = *inline_value;
    } else {
      if (i + 1 >= args.size())
        return fail("option " + name + " needs a value");
      value = args[++i];
    }
    if (value.empty())
      return fail("option " + name + " needs a non-empty value");
    if (name == "--config") {
      options.config_path = value;
    } else if (name == "--capture") {
      options.capture = value;
    } else if (name == "--sink") {
      options.replay_sink = value;
    } else if (name == "--reason") {
      options.replay_reason = value;
    } else if (name == "--since") {
      options.replay_since = value;
    } else if (name == "--until") {
      options.replay_until = value;
    } else if (name == "--failed-to") {
      options.replay_failed_to = value;
    } else if (name == "--from-line") {
      options.replay_from_line = value;
    } else if (name == "--admin-listen") {
      std::string error;
      if (!config::parse_host_port(value, error)) {
        return fail("--admin-listen " + in_quotes(value) + ": " + error);
      }
      options.admin_listen = value;
    } else if (name == "--log-level") {
      options.log_level = log::parse_level(value);
      if (!options.log_level) {
        return fail("--log-level " + in_quotes(value) +
                    ": expected one of: debug, info, warn, error");
      }
    } else {
      options.log_format = log::parse_format(value);
      if (!options.log_format) {
        return fail("--log-format " + in_quotes(value) + ": expected one of: text, json");
      }
    }
  }
  if (!options.help && !options.version && options.config_path.empty()) {
    return fail("missing --config PATH");
  }
  if (options.strict && !options.check_config)
    return fail("--strict goes with --check-config");
  if (!options.help && options.command == Command::replay && options.replay_file.empty())
    return fail("missing the dead-letter FILE to replay");
  outcome.options = std::move(options);
  return outcome;
}

std::string usage_text() {
  return R"(Usage: sluice --config PATH [options]
       sluice --config PATH --check-config [--strict]
       sluice test --config PATH [--capture FILE]
       sluice replay --config PATH FILE [--sink NAME] [--reason TEXT] [--since TIME]
                     [--until TIME] [--failed-to PATH] [--from-line N] [--dry-run]
       sluice --version | --help

Forwards Appwrite Realtime events to Kafka topics, HTTP webhooks and files, as routed by a
YAML configuration file (see config/routes.example.yaml).

Options (each also written --option=value):
  --config PATH            the configuration file (required)
  --check-config           load and validate the configuration, print every error and every
                           warning (valid but probably wrong), then exit; opens no network
                           connection
  --strict                 with --check-config: warnings fail it too (exit code 1)
  --watch-config           reload the configuration when the file changes (SIGHUP always does)
  --admin-listen HOST:PORT listen address of the admin server (/metrics /healthz /readyz
                           /status), overriding admin.listen; IPv6 as [::1]:9477; port 0 picks
                           a free port
  --log-level LEVEL        debug | info | warn | error, overriding log.level
  --log-format FORMAT      text | json, overriding log.format
  --version                print the version and exit
  -h, --help               print this help and exit

sluice test runs the test cases of the configuration's `tests` section offline: which routes
and sinks each event reaches, and the Kafka topic and key, webhook URL and file path it gets.
  --capture FILE           print test cases for the records of FILE (a dead-letter file, or
                           what a file sink wrote), expecting what the configuration does now

sluice replay sends the records of the dead-letter file FILE again, each to the sink that
wrote it, retried as that sink's `retry` says; what fails again is appended to FILE.failed
as it happens. FILE itself is only read, as a stream. Ctrl-C (SIGINT) or SIGTERM stops it
after the batch in flight and prints the line to resume from.
  --sink NAME              send every record to this sink instead
  --reason TEXT            only records whose reason contains TEXT
  --since TIME, --until TIME   only records that failed at or after / before TIME
                           (2026-03-01, 2026-03-01T12:00:00Z or with an offset)
  --failed-to PATH         where what fails again goes, instead of FILE.failed
  --from-line N            skip the lines before line N (resume where a stopped replay says)
  --dry-run                list what would be sent; open no sink

Exit codes:
  0  clean stop (or, with --check-config, a valid configuration; with test, every case passed)
  1  invalid configuration (with test: a case failed or could not run)
  2  usage error
  3  fatal runtime error (with replay: FILE.failed could not be written, keep FILE)
  4  stopped with records undelivered (with replay: some failed again or could not be
     replayed; they are in FILE.failed)
  5  with replay: stopped by SIGINT/SIGTERM before the end of FILE

Signals: SIGTERM and SIGINT drain and stop; SIGHUP reloads the configuration.
)";
}

void apply_overrides(const Options& options, config::Config& config) {
  if (options.admin_listen) {
    std::string error;
    // Checked by parse_command_line(): a bad value never gets here.
    if (auto hp = config::parse_host_port(*options.admin_listen, error)) {
      config.admin.host = hp->host;
      config.admin.port = hp->port;
    }
  }
  if (options.log_level)
    config.log.level = *options.log_level;
  if (options.log_format)
    config.log.format = *options.log_format;
}

}  // namespace sluice
