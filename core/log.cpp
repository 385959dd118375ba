#include "core/log.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <ctime>

#include <fmt/format.h>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "core/utc.hpp"

namespace sluice::log {
namespace {

std::atomic<Level> g_level{Level::info};
std::atomic<Format> g_format{Format::text};
std::atomic<bool> g_journal{false};

std::string_view level_name(Level level) {
  switch (level) {
    case Level::debug:
      return "debug";
    case Level::info:
      return "info";
    case Level::warn:
      return "warn";
    case Level::error:
      return "error";
  }
  return "info";
}

boost::json::string_view json_view(std::string_view text) {
  return {text.data(), text.size()};
}

// Text values with spaces or quotes are quoted so a line stays machine-splittable.
void append_text_value(std::string& out, std::string_view value) {
  const bool plain = !value.empty() && value.find_first_of(" \"=\n\t") == std::string_view::npos;
  if (plain) {
    out += value;
  } else {
    out += boost::json::serialize(json_view(value));
  }
}

}  // namespace

void configure(Level level, Format format) {
  g_level.store(level);
  g_format.store(format);
}

std::string_view journal_prefix(Level level) {
  switch (level) {
    case Level::debug:
      return "<7>";
    case Level::info:
      return "<6>";
    case Level::warn:
      return "<4>";
    case Level::error:
      return "<3>";
  }
  return "<6>";
}

bool is_journal_stream(std::string_view journal_stream, std::uint64_t dev, std::uint64_t ino) {
  const auto colon = journal_stream.find(':');
  if (colon == std::string_view::npos)
    return false;
  const auto number = [](std::string_view text, std::uint64_t& out) {
    const char* end = text.data() + text.size();
    const auto [p, ec] = std::from_chars(text.data(), end, out);
    return !text.empty() && ec == std::errc{} && p == end;
  };
  std::uint64_t d = 0;
  std::uint64_t i = 0;
  return number(journal_stream.substr(0, colon), d) &&
         number(journal_stream.substr(colon + 1), i) && d == dev && i == ino;
}

void detect_journal() {
  const char* env = std::getenv("JOURNAL_STREAM");
  struct stat st {};
  g_journal.store(env != nullptr && ::fstat(STDERR_FILENO, &st) == 0 &&
                  is_journal_stream(env, static_cast<std::uint64_t>(st.st_dev),
                                    static_cast<std::uint64_t>(st.st_ino)));
}

bool enabled(Level level) {
  return level >= g_level.load(std::memory_order_relaxed);
}

void write(Level level, std::string_view component, std::string_view message,
           std::initializer_list<Field> fields) {
  if (!enabled(level))
    return;
  std::string line;
  if (g_journal.load(std::memory_order_relaxed))
    line = journal_prefix(level);
  if (g_format.load(std::memory_order_relaxed) == Format::json) {
    // A field named like one of the four fixed members is left out: they come first.
    boost::json::object object;
    object.reserve(4 + fields.size());
    object.emplace("ts", format_utc_millis(std::chrono::system_clock::now()));
    object.emplace("level", level_name(level));
    object.emplace("component", json_view(component));
    object.emplace("msg", json_view(message));
    for (const auto& f : fields)
      object.emplace(json_view(f.key), json_view(f.value));
    line += boost::json::serialize(object);
    line += '\n';
  } else {
    line.reserve(line.size() + 128);
    line += format_utc_millis(std::chrono::system_clock::now());
    line += ' ';
    line += level_name(level);
    line += ' ';
    line += component;
    line += ": ";
    line += message;
    for (const auto& f : fields) {
      line += ' ';
      line += f.key;
      line += '=';
      append_text_value(line, f.value);
    }
    line += '\n';
  }
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    const ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n < 0 && errno == EINTR)
      continue;
    // Any other failure drops the rest of the record, never retries: logging must not spin or
    // hold up the caller, whether stderr's reader is gone (EPIPE: main ignores SIGPIPE) or a
    // non-blocking stderr is full (EAGAIN).
    if (n <= 0)
      return;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

std::optional<Level> parse_level(std::string_view text) {
  if (text == "debug")
    return Level::debug;
  if (text == "info")
    return Level::info;
  if (text == "warn" || text == "warning")
    return Level::warn;
  if (text == "error")
    return Level::error;
  return std::nullopt;
}

std::optional<Format> parse_format(std::string_view text) {
  if (text == "text")
    return Format::text;
  if (text == "json")
    return Format::json;
  return std::nullopt;
}

bool RateLimiter::allow(Clock::time_point now) {
  if (now - window_start_ >= interval_) {
    window_start_ = now;
    used_ = 0;
  }
  if (used_ < burst_) {
    ++used_;
    return true;
  }
  ++suppressed_;
  return false;
}

}  // namespace sluice::log
