#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// Where a server lives: parsed once from a configured URL (the Appwrite endpoints, a webhook's
// URL), used to open sockets and to build request targets. Plain values.
namespace sluice::net {

struct Endpoint {
  bool secure = false;    // https/wss
  std::string host;       // as written (no brackets for IPv6)
  std::string port;       // explicit or the scheme's default
  std::string base_path;  // path without a trailing slash, e.g. "/v1" or "/v1/realtime"

  // The Host header value (brackets for IPv6, port only when not the default).
  std::string host_header() const;
};

// Parses http(s):// or ws(s):// URLs; nullopt when the URL is not one of those.
std::optional<Endpoint> parse_endpoint(std::string_view url);

}  // namespace sluice::net
