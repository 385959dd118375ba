#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include <boost/asio/awaitable.hpp>

#include "sinks/blocking_pool.hpp"
#include "sinks/sink.hpp"

// The dead-letter file of one sink: records the engine gave up on, as JSON Lines appended to
// `dead_letter`, one line per record:
//   {"time","sink","route","event_id","reason","attempts","first_attempt","last_attempt",
//    "record": <the record's raw bytes, unchanged>}
// Owned by the sink's SinkWorker and called from its coroutine on the event loop; the file
// work itself runs on the BlockingPool. The file is opened per write (dead letters are rare),
// which also lets an external logrotate move it away at any time.
namespace sluice::sinks {

struct DeadLetter {
  Record record;  // taken from the batch: the queue lets go of the record once it is written
  std::string reason;
  std::uint32_t attempts = 0;
  std::chrono::system_clock::time_point first_attempt{};
  std::chrono::system_clock::time_point last_attempt{};
};

class DeadLetterFile {
 public:
  DeadLetterFile(std::string path, std::string sink, BlockingPool& pool);

  // False when no dead_letter path is configured: the caller only logs and counts.
  bool enabled() const { return !path_.empty(); }
  const std::string& path() const { return path_; }

  // Appends the JSON line for `entry` (with its trailing newline) to `out`.
  static void append_line(std::string& out, const DeadLetter& entry, std::string_view sink,
                          std::chrono::system_clock::time_point now);

  // Appends `lines` (whole lines, each ending in '\n') to the dead-letter file at `path` in one
  // write, creating the directories first, and makes them durable: they are the last copy. When
  // the file ends in a torn line (a crash mid-write, an editor), starts with '\n' so no record
  // is glued onto it. Blocking: run it on the BlockingPool, or on a tool's own thread.
  static std::error_code append_durably(const std::string& path, std::string_view lines);

  // Appends one line per entry in a single write (append_durably on the pool). Never throws:
  // an error is returned for the caller to log and count.
  boost::asio::awaitable<std::error_code> write(std::span<const DeadLetter> entries,
                                                std::chrono::system_clock::time_point now);

 private:
  std::string path_;
  std::string sink_;
  BlockingPool& pool_;
};

}  // namespace sluice::sinks
