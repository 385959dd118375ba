#pragma once

#include <chrono>
#include <istream>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "config/error.hpp"
#include "core/event.hpp"
#include "daemon/router.hpp"

// `sluice test`: route test cases run offline, through the daemon's own decoder, router and
// sink templates, so what a case shows is what the daemon would do. Opens no socket and no sink.
// Plain functions, called once by main() on its thread.
namespace sluice::tools {

// Where one sink would put an event: its name, the route that sent it there, and the rendered
// target (Kafka topic and key, webhook URL or file path, by the sink's type).
struct Delivery {
  std::string sink;
  std::string route;
  std::string topic;               // kafka
  std::optional<std::string> key;  // kafka; unset: no key (an empty rendering is a null key)
  std::string url;                 // webhook
  std::string path;                // file
  std::string dead_letter;         // why the sink would dead-letter the record; empty: it would not
};

struct Routing {
  std::vector<std::string> routes;  // every route that matched, in file order
  std::vector<Delivery> sinks;      // every sink reached, in file order of the sinks
};

// Routes `event` as the daemon does and renders each sink's target.
Routing route_offline(const config::Config& config, const Router& router, const Event& event);

// The event the daemon connected to `project` would build from a realtime message whose `data`
// object is `data` (JSON text), its id included; nullptr with `error` set when the decoder refuses
// it. When its timestamp is missing or malformed, the daemon stamps the event with the time it
// received it: `received` stands for that time (a dead letter's first attempt); without it such
// data is refused.
EventPtr event_from_data(std::string_view project, std::string_view data, std::string& error,
                         std::optional<std::chrono::system_clock::time_point> received = {});

// One expectation a case did not meet, located at the expectation.
struct Mismatch {
  config::Location location;
  std::string path;  // e.g. tests[1].expect.sinks.orders.topic
  std::string expected;
  std::string actual;
};

struct CaseResult {
  std::string name;
  std::string path;  // tests[N]
  config::Location location;
  std::vector<Mismatch> mismatches;
};

struct TestRun {
  std::vector<config::Error> errors;  // cases that could not be read or built: not run
  std::vector<CaseResult> cases;      // the cases that ran, in file order
  bool found = false;                 // the configuration has a `tests` section
  std::size_t failed() const;
};

// Reads the `tests` section of config.path (or the companion file it names) and runs every case.
TestRun run_tests(const config::Config& config);

// The report printed on stdout: one line per case, and under a failed case each mismatch with
// its location and the expected and actual values one above the other; then a summary.
std::string format_report(const TestRun& run);

// `sluice test --capture FILE`: turns the records of FILE (JSON Lines: a dead-letter file, or
// the records a file sink wrote) into test cases, expecting what `config` does with them today.
// Returns the YAML text of a `tests:` section; on an unreadable line returns nullopt with
// `error` set (FILE:LINE: message).
std::optional<std::string> capture_cases(const config::Config& config, std::istream& in,
                                         const std::string& name, std::string& error);

}  // namespace sluice::tools
