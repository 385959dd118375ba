#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

// Parsers for the scalar forms of routes.yaml that are not plain YAML types (README, "A tour of
// `routes.yaml`"). Pure functions: the loader and the command line both use them, and the unit
// tests pin them.
namespace sluice::config {

// `500ms`, `20s`, `5m`, `1h`, also `2d`: a non-negative integer followed by a unit. A unit is
// required: a bare `20` is ambiguous and rejected. On failure returns nullopt and sets `error`
// to what was expected.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text, std::string& error);

// `64KiB`, `100MiB`, `1GiB`, `1TiB`, `512B`, decimal `64KB`, `100MB`, `1GB`, or a plain integer
// (bytes). Units are case-sensitive as written here. Overflow of 64 bits is an error.
std::optional<std::uint64_t> parse_size(std::string_view text, std::string& error);

// `HOST:PORT` for a listening address: `127.0.0.1:9477`, `localhost:9477`, `[::1]:9477`,
// `0.0.0.0:0` (port 0: any free port). The brackets are removed from an IPv6 host.
struct HostPort {
  std::string host;
  std::uint16_t port = 0;
};
std::optional<HostPort> parse_host_port(std::string_view text, std::string& error);

}  // namespace sluice::config
