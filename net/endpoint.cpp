#include "net/endpoint.hpp"

#include <boost/url/parse.hpp>

namespace sluice::net {

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

}  // namespace sluice::net
