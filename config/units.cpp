#include "config/units.hpp"

#include <array>
#include <limits>
#include <utility>

namespace sluice::config {
namespace {

// Reads the leading decimal digits of `text` into `value`; returns how many were read, or
// npos-like 0 when there were none. Sets `overflow` instead of wrapping.
std::size_t read_digits(std::string_view text, std::uint64_t& value, bool& overflow) {
  value = 0;
  overflow = false;
  std::size_t i = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    const auto digit = static_cast<std::uint64_t>(text[i] - '0');
    if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10)
      overflow = true;
    if (!overflow)
      value = value * 10 + digit;
  }
  return i;
}

bool mul_overflows(std::uint64_t a, std::uint64_t b) {
  return b != 0 && a > std::numeric_limits<std::uint64_t>::max() / b;
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text, std::string& error) {
  static const std::string kForms =
      "a duration such as 500ms, 20s, 5m or 1h (units: ms, s, m, h, d)";
  static const std::string kExpected = "expected " + kForms;
  std::uint64_t value = 0;
  bool overflow = false;
  const auto digits = read_digits(text, value, overflow);
  if (digits == 0) {
    error = kExpected;
    return std::nullopt;
  }
  const auto unit = text.substr(digits);
  if (unit.starts_with('.')) {
    error = "fractions are not allowed (write 1500ms, not 1.5s): expected " + kForms;
    return std::nullopt;
  }
  if (unit.empty()) {
    error = "a unit is required: expected " + kForms;
    return std::nullopt;
  }
  static constexpr std::array<std::pair<std::string_view, std::uint64_t>, 5> kUnits{{
      {"ms", 1},
      {"s", 1000},
      {"m", 60 * 1000},
      {"h", 60 * 60 * 1000},
      {"d", 24 * 60 * 60 * 1000},
  }};
  for (const auto& [name, factor] : kUnits) {
    if (unit != name)
      continue;
    // std::chrono::milliseconds holds a signed 64-bit count.
    constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    if (overflow || mul_overflows(value, factor) || value * factor > kMax) {
      error = "duration is too large";
      return std::nullopt;
    }
    return std::chrono::milliseconds(static_cast<std::int64_t>(value * factor));
  }
  error = "unknown unit \"" + std::string(unit) + "\": " + kExpected;
  return std::nullopt;
}

std::optional<std::uint64_t> parse_size(std::string_view text, std::string& error) {
  static const std::string kExpected =
      "expected a size such as 512B, 64KiB, 100MiB or 1GiB (units: B, KiB, MiB, GiB, TiB, KB, "
      "MB, GB, TB; no unit: bytes)";
  std::uint64_t value = 0;
  bool overflow = false;
  const auto digits = read_digits(text, value, overflow);
  if (digits == 0) {
    error = kExpected;
    return std::nullopt;
  }
  const auto unit = text.substr(digits);
  if (unit.starts_with('.')) {
    error = "fractions are not allowed (write 1536MiB, not 1.5GiB): " + kExpected;
    return std::nullopt;
  }
  static constexpr std::array<std::pair<std::string_view, std::uint64_t>, 10> kUnits{{
      {"", 1},
      {"B", 1},
      {"KiB", 1ull << 10},
      {"MiB", 1ull << 20},
      {"GiB", 1ull << 30},
      {"TiB", 1ull << 40},
      {"KB", 1000ull},
      {"MB", 1000ull * 1000},
      {"GB", 1000ull * 1000 * 1000},
      {"TB", 1000ull * 1000 * 1000 * 1000},
  }};
  for (const auto& [name, factor] : kUnits) {
    if (unit != name)
      continue;
    if (overflow || mul_overflows(value, factor)) {
      error = "size is too large";
      return std::nullopt;
    }
    return value * factor;
  }
  error = "unknown unit \"" + std::string(unit) + "\": " + kExpected;
  return std::nullopt;
}

std::optional<HostPort> parse_host_port(std::string_view text, std::string& error) {
  static constexpr const char* kExpected = "expected HOST:PORT, e.g. 127.0.0.1:9477 or [::1]:9477";
  HostPort out;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':' ||
        close == 1) {
      error = kExpected;
      return std::nullopt;
    }
    out.host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0) {
      error = kExpected;
      return std::nullopt;
    }
    const auto host = text.substr(0, colon);
    if (host.find(':') != std::string_view::npos) {
      error = "an IPv6 address must be written in brackets, e.g. [::1]:9477";
      return std::nullopt;
    }
    out.host = std::string(host);
    port_text = text.substr(colon + 1);
  }
  std::uint64_t port = 0;
  bool overflow = false;
  if (port_text.empty() || read_digits(port_text, port, overflow) != port_text.size() || overflow ||
      port > 65535) {
    error = "the port must be a number from 0 to 65535 (" + std::string(kExpected) + ")";
    return std::nullopt;
  }
  out.port = static_cast<std::uint16_t>(port);
  return out;
}

}  // namespace sluice::config
