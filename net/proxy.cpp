#include "net/proxy.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/network_v4.hpp>
#include <boost/asio/ip/network_v6.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/url/parse.hpp>

#include "net/transport.hpp"

namespace sluice::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using boost::system::error_code;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t'))
    text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t'))
    text.remove_suffix(1);
  return text;
}

std::string basic_authorization(std::string_view user, std::string_view password) {
  const std::string plain = std::string(user) + ":" + std::string(password);
  std::string encoded(4 * ((plain.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.data()),
                                reinterpret_cast<const unsigned char*>(plain.data()),
                                static_cast<int>(plain.size()));
  encoded.resize(static_cast<std::size_t>(std::max(n, 0)));
  return "Basic " + encoded;
}

std::string authority(const Endpoint& e) {
  const bool v6 = e.host.find(':') != std::string::npos;
  return (v6 ? "[" + e.host + "]" : e.host) + ":" + e.port;
}

// Whether `host` (an address, or "address/prefix") covers `target`, an address; false when
// either is not an address.
bool address_matches(std::string_view host, const asio::ip::address& target) {
  error_code ec;
  const auto slash = host.find('/');
  if (slash == std::string_view::npos) {
    const auto a = asio::ip::make_address(std::string(host), ec);
    return !ec && a == target;
  }
  if (target.is_v4()) {
    const auto net = asio::ip::make_network_v4(std::string(host), ec);
    return !ec &&
           asio::ip::network_v4(target.to_v4(), net.prefix_length()).canonical() == net.canonical();
  }
  const auto net = asio::ip::make_network_v6(std::string(host), ec);
  return !ec &&
         asio::ip::network_v6(target.to_v6(), net.prefix_length()).canonical() == net.canonical();
}

std::string env(const char* lower_name, const char* upper_name) {
  for (const char* name : {lower_name, upper_name}) {
    if (const char* v = std::getenv(name); v != nullptr && *v != '\0')
      return v;
  }
  return {};
}

}  // namespace

std::optional<Proxy> parse_proxy(std::string_view url_in, std::string& error) {
  std::string url(url_in);
  if (url.find("://") == std::string::npos)
    url = "http://" + url;
  const auto parsed = boost::urls::parse_uri(url);
  if (!parsed) {
    error = "not a proxy URL (expected http://[user:password@]host[:port])";
    return std::nullopt;
  }
  const auto& u = *parsed;
  if (lower(u.scheme()) != "http") {
    error =
        "only http:// proxies are supported (an https target is still encrypted end to end "
        "through the proxy)";
    return std::nullopt;
  }
  if (!u.has_authority() || u.encoded_host().empty()) {
    error = "the proxy URL has no host";
    return std::nullopt;
  }
  if ((!u.encoded_path().empty() && u.encoded_path() != "/") || u.has_query() || u.has_fragment()) {
    error = "a proxy URL is only http://[user:password@]host[:port]";
    return std::nullopt;
  }
  Proxy p;
  p.endpoint.secure = false;
  p.endpoint.host = u.host_type() == boost::urls::host_type::ipv6 ? std::string(u.host_address())
                                                                  : std::string(u.encoded_host());
  if (u.has_port()) {
    const auto port = u.port();
    const auto n = port.size() <= 5 ? std::strtoul(std::string(port).c_str(), nullptr, 10) : 0;
    if (n == 0 || n > 65535) {
      error = "the proxy's port must be a number from 1 to 65535";
      return std::nullopt;
    }
    p.endpoint.port = std::string(port);
  } else {
    p.endpoint.port = "80";
  }
  if (u.has_userinfo())
    p.authorization = basic_authorization(u.user(), u.password());
  p.shown = "http://" + authority(p.endpoint);
  return p;
}

bool no_proxy_exempts(std::string_view no_proxy, const Endpoint& target) {
  error_code ec;
  const auto target_address = asio::ip::make_address(target.host, ec);
  const bool target_is_address = !ec;
  const std::string target_name = lower(target.host);
  while (!no_proxy.empty()) {
    const auto comma = no_proxy.find(',');
    const std::string_view entry = trim(no_proxy.substr(0, comma));
    no_proxy = comma == std::string_view::npos ? std::string_view{} : no_proxy.substr(comma + 1);
    if (entry.empty())
      continue;
    if (entry == "*")
      return true;
    std::string_view host = entry;
    std::string_view port;
    if (host.front() == '[') {
      const auto close = host.find(']');
      if (close == std::string_view::npos)
        continue;
      if (close + 1 < host.size() && host[close + 1] == ':')
        port = host.substr(close + 2);
      host = host.substr(1, close - 1);
    } else if (std::count(host.begin(), host.end(), ':') == 1) {
      const auto colon = host.find(':');
      port = host.substr(colon + 1);
      host = host.substr(0, colon);
    }
    if (!port.empty() && port != target.port)
      continue;
    if (target_is_address) {
      if (address_matches(host, target_address))
        return true;
      continue;
    }
    while (!host.empty() && host.front() == '.')
      host.remove_prefix(1);
    const std::string name = lower(host);
    if (name.empty())
      continue;
    if (target_name == name ||
        (target_name.size() > name.size() && target_name.ends_with("." + name)))
      return true;
  }
  return false;
}

ProxyEnvironment ProxyEnvironment::from_process() {
  return {env("https_proxy", "HTTPS_PROXY"), env("http_proxy", "HTTP_PROXY"),
          env("no_proxy", "NO_PROXY")};
}

std::optional<ProxyChoice> ProxyChoice::make(std::string_view setting, const ProxyEnvironment& env,
                                             std::string& error) {
  ProxyChoice choice;
  if (setting == kNone)
    return choice;
  if (!setting.empty()) {
    choice.fixed_ = parse_proxy(setting, error);
    if (!choice.fixed_) {
      error = "proxy: " + error;
      return std::nullopt;
    }
    return choice;
  }
  choice.from_environment_ = true;
  choice.no_proxy_ = env.no_proxy;
  if (!env.https_proxy.empty()) {
    choice.https_ = parse_proxy(env.https_proxy, error);
    if (!choice.https_) {
      error = "environment variable HTTPS_PROXY: " + error;
      return std::nullopt;
    }
  }
  if (!env.http_proxy.empty()) {
    choice.http_ = parse_proxy(env.http_proxy, error);
    if (!choice.http_) {
      error = "environment variable HTTP_PROXY: " + error;
      return std::nullopt;
    }
  }
  return choice;
}

const Proxy* ProxyChoice::for_target(const Endpoint& target) const {
  if (fixed_)
    return &*fixed_;
  if (!from_environment_)
    return nullptr;
  const auto& proxy = target.secure ? https_ : http_;
  if (!proxy || no_proxy_exempts(no_proxy_, target))
    return nullptr;
  return &*proxy;
}

asio::awaitable<std::string> open_tunnel(beast::tcp_stream& stream, const Proxy& proxy,
                                         const Endpoint& target,
                                         std::chrono::milliseconds timeout) {
  http::request<http::empty_body> request{http::verb::connect, authority(target), 11};
  request.set(http::field::host, authority(target));
  if (!proxy.authorization.empty())
    request.set(http::field::proxy_authorization, proxy.authorization);
  stream.expires_after(timeout);
  auto [wec, written] = co_await http::async_write(stream, request, use_tuple);
  if (wec) {
    stream.expires_never();
    co_return wec == beast::error::timeout ? "timeout: sending CONNECT"
                                           : "sending CONNECT: " + describe(wec);
  }
  beast::flat_buffer buffer;
  http::response_parser<http::empty_body> parser;
  parser.skip(true);  // an answer to CONNECT has no body: what follows is the tunnel
  auto [rec, read] = co_await http::async_read_header(stream, buffer, parser, use_tuple);
  stream.expires_never();
  if (rec == beast::error::timeout)
    co_return "timeout: no answer to CONNECT within the timeout";
  if (rec == http::error::end_of_stream || rec == asio::error::eof ||
      rec == http::error::partial_message || rec == asio::error::connection_reset)
    co_return "closed the connection during CONNECT";
  if (rec)
    co_return "bad answer to CONNECT: " + describe(rec);
  const unsigned status = parser.get().result_int();
  if (status / 100 != 2) {
    // The proxy's own reason phrase is not repeated: it is the peer's text, not ours.
    const auto phrase = http::obsolete_reason(static_cast<http::status>(status));
    co_return "CONNECT refused: " + std::to_string(status) +
        (phrase.empty() || phrase == "<unknown-status>" ? "" : " " + std::string(phrase));
  }
  if (buffer.size() > 0)
    co_return "sent bytes after its answer to CONNECT";
  co_return std::string{};
}

}  // namespace sluice::net
