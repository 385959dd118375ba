#include "daemon/upstream/endpoint.hpp"

#include <charconv>

#include <boost/url/encode.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

namespace sluice::upstream {

std::string Endpoint::host_header() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  const bool default_port = (secure && port == "443") || (!secure && port == "80");
  if (!default_port)
    h += ":" + port;
  return h;
}

std::optional<Endpoint> parse_endpoint(std::string_view url) {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed)
    return std::nullopt;
  const auto& u = *parsed;
  Endpoint e;
  const std::string scheme(u.scheme());
  if (scheme == "https" || scheme == "wss") {
    e.secure = true;
  } else if (scheme != "http" && scheme != "ws") {
    return std::nullopt;
  }
  if (!u.has_authority() || u.encoded_host().empty())
    return std::nullopt;
  e.host = u.host_type() == boost::urls::host_type::ipv6 ? std::string(u.host_address())
                                                         : std::string(u.encoded_host());
  e.port = u.has_port() ? std::string(u.port()) : (e.secure ? "443" : "80");
  e.base_path = std::string(u.encoded_path());
  while (!e.base_path.empty() && e.base_path.back() == '/')
    e.base_path.pop_back();
  return e;
}

std::string realtime_target(const Endpoint& realtime, std::string_view project,
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
