#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

// Logging: one line per record on stderr, `text` for people or `json` for machines.
// Process-wide and thread-safe; a record is written with a single write(2) so lines from the
// event loop and the blocking pool never interleave. Never pass a secret as a field.
// When stderr is systemd-journald's stream (detect_journal()), each line starts with its
// syslog priority, sd-daemon style (`<3>` error .. `<7>` debug): journald strips the prefix and
// files the line under that priority, so `journalctl -p warning` finds warnings and errors.
namespace sluice::log {

enum class Level { debug, info, warn, error };
enum class Format { text, json };

struct Field {
  std::string_view key;
  std::string value;
};

void configure(Level level, Format format);

// Turns the priority prefixes on when $JOURNAL_STREAM names the file stderr is (systemd sets it
// for a service whose output goes to the journal; a child with stderr redirected elsewhere
// inherits the variable, hence the device and inode check). Call once, before logging.
void detect_journal();
// Whether `journal_stream` ("DEVICE:INODE", as systemd writes it) names the file (dev, ino).
bool is_journal_stream(std::string_view journal_stream, std::uint64_t dev, std::uint64_t ino);
// The sd-daemon prefix of a level: "<3>" error, "<4>" warn, "<6>" info, "<7>" debug.
std::string_view journal_prefix(Level level);
bool enabled(Level level);
void write(Level level, std::string_view component, std::string_view message,
           std::initializer_list<Field> fields = {});

inline void debug(std::string_view c, std::string_view m, std::initializer_list<Field> f = {}) {
  if (enabled(Level::debug))
    write(Level::debug, c, m, f);
}
inline void info(std::string_view c, std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::info, c, m, f);
}
inline void warn(std::string_view c, std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::warn, c, m, f);
}
inline void error(std::string_view c, std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::error, c, m, f);
}

std::optional<Level> parse_level(std::string_view text);
std::optional<Format> parse_format(std::string_view text);

// Keeps a noisy source (malformed frames, failing writes) to `burst` records per `interval`.
// allow() says whether to log now; suppressed() is how many were held back since the last
// record that was let through, so that record can report it. Not thread-safe: one per owner.
class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  RateLimiter(int burst, Clock::duration interval) : burst_(burst), interval_(interval) {}

  bool allow(Clock::time_point now = Clock::now());
  std::uint64_t take_suppressed() {
    const auto n = suppressed_;
    suppressed_ = 0;
    return n;
  }

 private:
  int burst_;
  Clock::duration interval_;
  Clock::time_point window_start_{};
  int used_ = 0;
  std::uint64_t suppressed_ = 0;
};

}  // namespace sluice::log
