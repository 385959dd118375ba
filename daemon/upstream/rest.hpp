#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/http/verb.hpp>

#include "net/endpoint.hpp"

// One-shot calls to Appwrite's REST API (version probe, account check, JWT minting). Rare,
// so each call opens its own connection; runs on the caller's executor.
namespace sluice::upstream {

struct RestResponse {
  unsigned status = 0;  // 0 when no response arrived
  std::string body;
  std::string error;  // transport error; empty when a response arrived
  // The server's clock, from its Date header: expiries the server sets are judged by it.
  std::optional<std::chrono::system_clock::time_point> date;
};

// An HTTP Date header (RFC 9110 IMF-fixdate, "Sun, 06 Dec 2026 16:22:44 GMT"); nullopt when
// it is anything else.
std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view text);

using Headers = std::vector<std::pair<std::string, std::string>>;

// `path` is appended to the endpoint's base path ("/health/version" → "/v1/health/version").
// `tls` must be set when the endpoint is https.
boost::asio::awaitable<RestResponse> rest_call(const net::Endpoint& endpoint,
                                               boost::asio::ssl::context* tls, bool verify,
                                               boost::beast::http::verb method,
                                               std::string_view path, const Headers& headers,
                                               std::string body, std::chrono::milliseconds timeout);

}  // namespace sluice::upstream
