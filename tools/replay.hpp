#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"

// `sluice replay`: re-sends the records of a dead-letter file (the format sinks/dead_letter.hpp
// writes) through the sinks' own code, straight to the sink (no queue, no disk buffer), retried
// as the sink's `retry` settings say. What fails again goes to a new dead-letter file; the input
// file is only read. The selection (which lines, to which sink) is plain code; run_replay() is
// the shell that owns the event loop, called once by main() on its thread.
namespace sluice::tools {

using UtcTime = std::chrono::sys_time<std::chrono::milliseconds>;

// One line of a dead-letter file.
struct DeadLetterLine {
  std::string sink;
  std::string route;
  std::string reason;
  UtcTime time{};
  UtcTime first_attempt{};  // `first_attempt`, or `time` when the line has none
  std::string record;       // the record's bytes, as written
};

// Parses one line; nullopt with `error` set when it is not a dead-letter record.
std::optional<DeadLetterLine> parse_dead_letter_line(std::string_view line, std::string& error);

struct ReplayOptions {
  std::string file;                   // the dead-letter file to read
  std::optional<std::string> sink;    // send everything to this sink instead of each line's own
  std::optional<std::string> reason;  // only lines whose reason contains this text
  std::optional<UtcTime> since;       // only lines written at or after this time
  std::optional<UtcTime> until;       // only lines written before this time
  bool dry_run = false;               // say what would be sent; open no sink
  std::string failed;                 // where what fails again goes; empty: FILE.failed
  bool progress = false;              // a progress line on stderr (a terminal)
};

// Whether the filters of `options` select `line`.
bool selected(const ReplayOptions& options, const DeadLetterLine& line);

// Parses a --since/--until value: an ISO 8601 time (2026-03-01T12:00:00Z, an offset, or a
// date alone for midnight UTC). nullopt when malformed.
std::optional<UtcTime> parse_time(std::string_view text);

struct ReplayTotals {
  std::size_t selected = 0;
  std::size_t delivered = 0;
  std::size_t failed = 0;      // failed again, written to the new dead-letter file
  std::size_t skipped = 0;     // not selected by the filters
  std::size_t unreadable = 0;  // lines that cannot be replayed, copied as they are to the new file
  bool not_written = false;    // the new dead-letter file could not be written
};

// Runs the replay, prints the summary on stdout and problems on stderr; returns the totals, or
// nullopt when nothing was sent because the input cannot be read (it cannot be opened, is a
// directory, or a read failed) or the new dead-letter file is the input itself (an error is
// printed).
std::optional<ReplayTotals> run_replay(const config::Config& config, const ReplayOptions& options);

}  // namespace sluice::tools
