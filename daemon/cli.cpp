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

}  // namespace

ParseOutcome parse_command_line(const std::vector<std::string>& args) {
  ParseOutcome outcome;
  Options options;
  std::vector<std::string> seen;
  auto fail = [&](std::string message) {
    outcome.error = std::move(message);
    return outcome;
  };

  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (arg.empty() || arg[0] != '-' || arg == "-" || arg == "--") {
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
    const bool flag = name == "--check-config" || name == "--watch-config" || name == "--version" ||
                      name == "--help";
    const bool valued = name == "--config" || name == "--admin-listen" || name == "--log-level" ||
                        name == "--log-format";
    if (!flag && !valued)
      return fail("unknown option " + in_quotes(name));
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
  outcome.options = std::move(options);
  return outcome;
}

std::string usage_text() {
  return R"(Usage: sluice --config PATH [options]
       sluice --config PATH --check-config
       sluice --version | --help

Forwards Appwrite Realtime events to Kafka topics, HTTP webhooks and files, as routed by a
YAML configuration file (see config/routes.example.yaml).

Options (each also written --option=value):
  --config PATH            the configuration file (required)
  --check-config           load and validate the configuration, print every error, then exit;
                           opens no network connection
  --watch-config           reload the configuration when the file changes (SIGHUP always does)
  --admin-listen HOST:PORT listen address of the admin server (/metrics /healthz /readyz
                           /status), overriding admin.listen; IPv6 as [::1]:9477; port 0 picks
                           a free port
  --log-level LEVEL        debug | info | warn | error, overriding log.level
  --log-format FORMAT      text | json, overriding log.format
  --version                print the version and exit
  -h, --help               print this help and exit

Exit codes:
  0  clean stop (or, with --check-config, a valid configuration)
  1  invalid configuration
  2  usage error
  3  fatal runtime error

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
