#pragma once

#include <chrono>
#include <ctime>
#include <optional>
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

// Parses an Appwrite timestamp (`data.timestamp`, `$updatedAt`):
// `YYYY-MM-DD[T ]HH:MM:SS(.fraction)?(Z|±HH:MM|±HHMM)?`, no offset meaning UTC; the fraction is
// truncated to milliseconds. nullopt when malformed or out of range.
std::optional<std::chrono::sys_time<std::chrono::milliseconds>> parse_timestamp(
    std::string_view text);

}  // namespace sluice
