#include "daemon/upstream/realtime_url.hpp"

#include <charconv>

#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

namespace sluice::upstream {

std::string realtime_target(const net::Endpoint& realtime, std::string_view project,
                            const std::vector<std::string>& channels) {
  const auto encode = [](std::string_view s) {
    return boost::urls::encode(s, boost::urls::unreserved_chars);
  };
  std::string target = realtime.base_path.empty() ? "/" : realtime.base_path;
  target += "?project=";
  target += encode(project);
  for (const auto& c : channels) {
    // PHP reads `channels[]=` as a list; a bare `channels=` would not be one.
    target += "&channels[]=";
    target += encode(c);
  }
  return target;
}

std::optional<Version> parse_version(std::string_view text) {
  Version v;
  int* parts[] = {&v.major, &v.minor, &v.patch};
  const char* p = text.data();
  const char* end = text.data() + text.size();
  for (int i = 0; i < 3 && p < end; ++i) {
    const auto [next, ec] = std::from_chars(p, end, *parts[i]);
    if (ec != std::errc{}) {
      if (i == 0)
        return std::nullopt;
      break;
    }
    p = next;
    if (p < end && *p == '.')
      ++p;
  }
  return v;
}

}  // namespace sluice::upstream
