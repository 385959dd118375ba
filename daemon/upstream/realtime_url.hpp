#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "net/endpoint.hpp"

// What the realtime client derives from Appwrite's endpoint and version: the WebSocket request
// target, and which subscription form the server takes. Plain functions.
namespace sluice::upstream {

// The realtime request target: `<base>?project=P[&channels[]=C...]`, values percent-encoded.
// Channels go in the URL in url subscribe mode; in message mode `channels` is empty.
std::string realtime_target(const net::Endpoint& realtime, std::string_view project,
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
