#pragma once

#include <chrono>
#include <ctime>
#include <string>
#include <string_view>

// UTC calendar time for the places that print timestamps (logs, /status, dead letters, rotated
// file names). Each keeps its own layout; the broken-down time is computed here once.
namespace sluice {

struct UtcTime {
  std::tm tm{};    // tm_year is years since 1900, tm_mon is 0-based, as gmtime_r gives them
  int millis = 0;  // 0..999, also for times before the epoch
};

UtcTime to_utc(std::chrono::system_clock::time_point t);

// `2026-11-22T18:00:00.123Z`, or with `zone` in place of the `Z` (Appwrite writes `+00:00`).
std::string format_utc_millis(std::chrono::system_clock::time_point t, std::string_view zone = "Z");

}  // namespace sluice
