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

}  // namespace sluice
