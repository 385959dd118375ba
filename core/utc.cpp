#include "core/utc.hpp"

#include <fmt/format.h>

namespace sluice {

UtcTime to_utc(std::chrono::system_clock::time_point t) {
  const auto ms_total = std::chrono::floor<std::chrono::milliseconds>(t.time_since_epoch()).count();
  auto secs = static_cast<std::time_t>(ms_total / 1000);
  auto ms = ms_total % 1000;
  if (ms < 0) {  // before the epoch: borrow a second so the milliseconds stay positive
    ms += 1000;
    secs -= 1;
  }
  UtcTime out;
  gmtime_r(&secs, &out.tm);
  out.millis = static_cast<int>(ms);
  return out;
}

std::string format_utc_millis(std::chrono::system_clock::time_point t, std::string_view zone) {
  const auto u = to_utc(t);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}{}", u.tm.tm_year + 1900,
                     u.tm.tm_mon + 1, u.tm.tm_mday, u.tm.tm_hour, u.tm.tm_min, u.tm.tm_sec,
                     u.millis, zone);
}

std::optional<std::chrono::sys_time<std::chrono::milliseconds>> parse_timestamp(
    std::string_view s) {
  std::size_t i = 0;
  auto is_digit = [&](std::size_t at) { return at < s.size() && s[at] >= '0' && s[at] <= '9'; };
  auto digits = [&](std::size_t n, int& out) {
    out = 0;
    for (std::size_t k = 0; k < n; ++k) {
      if (!is_digit(i + k))
        return false;
      out = out * 10 + (s[i + k] - '0');
    }
    i += n;
    return true;
  };
  auto literal = [&](char c) {
    if (i < s.size() && s[i] == c) {
      ++i;
      return true;
    }
    return false;
  };
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0;
  if (!digits(4, y) || !literal('-') || !digits(2, mo) || !literal('-') || !digits(2, d)) {
    return std::nullopt;
  }
  if (!literal('T') && !literal(' '))
    return std::nullopt;
  if (!digits(2, h) || !literal(':') || !digits(2, mi) || !literal(':') || !digits(2, se)) {
    return std::nullopt;
  }
  int ms = 0;
  if (literal('.')) {
    int taken = 0;
    if (!is_digit(i))
      return std::nullopt;
    for (; is_digit(i); ++i) {
      if (taken < 3) {
        ms = ms * 10 + (s[i] - '0');
        ++taken;
      }
    }
    for (; taken < 3; ++taken)
      ms *= 10;
  }
  int offset_minutes = 0;
  const bool zulu = literal('Z');
  if (!zulu && i < s.size() && (s[i] == '+' || s[i] == '-')) {
    const int sign = s[i] == '-' ? -1 : 1;
    ++i;
    int oh = 0, om = 0;
    if (!digits(2, oh))
      return std::nullopt;
    if (literal(':')) {
      if (!digits(2, om))
        return std::nullopt;
    } else if (i < s.size() && !digits(2, om)) {
      return std::nullopt;
    }
    if (oh > 23 || om > 59)
      return std::nullopt;
    offset_minutes = sign * (oh * 60 + om);
  }
  if (i != s.size())
    return std::nullopt;
  const std::chrono::year_month_day ymd{std::chrono::year{y},
                                        std::chrono::month{static_cast<unsigned>(mo)},
                                        std::chrono::day{static_cast<unsigned>(d)}};
  if (!ymd.ok() || h > 23 || mi > 59 || se > 59)
    return std::nullopt;
  return std::chrono::sys_days{ymd} + std::chrono::hours{h} + std::chrono::minutes{mi} +
         std::chrono::seconds{se} + std::chrono::milliseconds{ms} -
         std::chrono::minutes{offset_minutes};
}

}  // namespace sluice
