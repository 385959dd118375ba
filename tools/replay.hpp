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
// the shell that owns the event loop and the signal handling, called once by main() on its
// thread.
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
  std::size_t from_line = 1;          // lines before this one are skipped (resuming a stop)
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
  std::size_t skipped = 0;     // before --from-line, or not selected by the filters
  std::size_t unreadable = 0;  // lines that cannot be replayed, copied as they are to the new file
  bool not_written = false;    // the new dead-letter file could not be written
  int read_error = 0;          // errno of a read that failed mid-file
  // The first line not handled when the replay stopped early (SIGINT/SIGTERM, a read error, the
  // new dead-letter file not writable); 0 when it read the whole file. Every line before it was
  // delivered, written to the new dead-letter file or skipped; nothing from it on was sent.
  std::size_t stopped_at = 0;
};

// Runs the replay, reading the file as a stream and sending it in the file's order one batch at a
// time; what fails again is appended durably to the new dead-letter file after each batch.
// SIGINT or SIGTERM stops it: the batch in flight finishes (a retry wait is cut short and its
// records fail again), nothing more is sent, and the summary says where it stopped. Prints the
// summary on stdout and problems on stderr; returns the totals, or nullopt when nothing was sent
// because the input cannot be opened or is a directory, or the new dead-letter file is the input
// itself (an error is printed).
std::optional<ReplayTotals> run_replay(const config::Config& config, const ReplayOptions& options);

}  // namespace sluice::tools
