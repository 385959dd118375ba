#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// Where the upstream lives: parsed once from the configured URLs, used to open sockets and to
// build request targets. Plain values.
namespace sluice::upstream {

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

// The realtime request target: `<base>?project=P[&channels[]=C...]`, values percent-encoded.
// Channels go in the URL in url subscribe mode; in message mode `channels` is empty.
std::string realtime_target(const Endpoint& realtime, std::string_view project,
                            const std::vector<std::string>& channels);

// An Appwrite server version such as "1.9.6" as comparable numbers; unparsable parts are 0.
struct Version {
  int major = 0, minor = 0, patch = 0;
  auto operator<=>(const Version&) const = default;
};
std::optional<Version> parse_version(std::string_view text);

// Whether the server takes `subscribe` messages (Appwrite ≥ 1.9.5).
inline bool supports_subscribe_messages(const Version& v) {
  return v >= Version{1, 9, 5};
}

}  // namespace sluice::upstream
