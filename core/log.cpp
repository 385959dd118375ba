#include "core/log.hpp"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <ctime>

#include <fmt/format.h>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "core/utc.hpp"

namespace sluice::log {
namespace {

std::atomic<Level> g_level{Level::info};
std::atomic<Format> g_format{Format::text};

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

bool enabled(Level level) {
  return level >= g_level.load(std::memory_order_relaxed);
}

void write(Level level, std::string_view component, std::string_view message,
           std::initializer_list<Field> fields) {
  if (!enabled(level))
    return;
  std::string line;
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
    line = boost::json::serialize(object);
    line += '\n';
  } else {
    line.reserve(128);
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
