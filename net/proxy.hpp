#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include "net/endpoint.hpp"

// HTTP forward proxies for outgoing requests (the webhook sink): which proxy a target goes
// through, from an explicit setting or the environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY), and
// the CONNECT tunnel for https targets. An https target is reached with CONNECT and TLS runs
// end to end inside the tunnel, so the proxy sees neither the request nor the certificate check;
// an http target gets requests in absolute form (`POST http://host/path`) sent to the proxy.
// ProxyChoice is plain data, immutable once made; open_tunnel() runs on the caller's executor.
namespace sluice::net {

struct Proxy {
  Endpoint endpoint;  // where the proxy listens (always plain http)
  // "Basic …" from the URL's user info, or empty. A credential: never logged or shown.
  std::string authorization;
  std::string shown;  // "http://host:port", for logs and errors: without the user info
};

// Parses http://[user[:password]@]host[:port][/]; "host:port" without a scheme is taken as
// http://, as HTTPS_PROXY is often written. User name and password are percent-decoded. On
// failure `error` says why without repeating the URL (it may hold a password).
std::optional<Proxy> parse_proxy(std::string_view url, std::string& error);

// Whether NO_PROXY exempts `target`. The list is comma-separated: `*` exempts every host; a
// name exempts itself and its subdomains (`example.com` and `.example.com` both cover
// `api.example.com`), case-insensitively; an IP address or CIDR block (`10.0.0.0/8`,
// `fd00::/8`) exempts the addresses in it; `name:port` or `[v6]:port` only that port.
bool no_proxy_exempts(std::string_view no_proxy, const Endpoint& target);

// The environment, as read once when a sink is made. Lower-case names win over upper-case
// ones when both are set, as in curl.
struct ProxyEnvironment {
  std::string https_proxy;  // https_proxy, HTTPS_PROXY
  std::string http_proxy;   // http_proxy, HTTP_PROXY
  std::string no_proxy;     // no_proxy, NO_PROXY
  static ProxyEnvironment from_process();
};

// Which proxy each target goes through.
class ProxyChoice {
 public:
  static constexpr std::string_view kNone = "none";

  // `setting` is a sink's `proxy:` key: empty to follow the environment, "none" for direct
  // connections whatever the environment says, or a proxy URL that every target goes through
  // (NO_PROXY does not apply to it). nullopt with `error` set when a URL that would be used is
  // invalid; `error` then names its source (the key, HTTPS_PROXY or HTTP_PROXY).
  static std::optional<ProxyChoice> make(std::string_view setting, const ProxyEnvironment& env,
                                         std::string& error);

  // The proxy for `target`, or null for a direct connection. Valid as long as this object.
  const Proxy* for_target(const Endpoint& target) const;

 private:
  std::optional<Proxy> fixed_;  // the `proxy:` URL
  bool from_environment_ = false;
  std::optional<Proxy> https_;
  std::optional<Proxy> http_;
  std::string no_proxy_;
};

// Asks `proxy`, to which `stream` is connected, for a tunnel to `target` (CONNECT host:port,
// with the proxy's credentials) and reads its answer, all within `timeout`. Empty on success:
// the stream is then a byte pipe to `target`. Otherwise what went wrong, fit for logs
// ("407 Proxy Authentication Required", "closed the connection", "timeout"), never credentials.
boost::asio::awaitable<std::string> open_tunnel(boost::beast::tcp_stream& stream,
                                                const Proxy& proxy, const Endpoint& target,
                                                std::chrono::milliseconds timeout);

}  // namespace sluice::net
