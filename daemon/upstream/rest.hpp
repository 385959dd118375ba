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

// Calls to Appwrite's REST API (version probe, account check, JWT minting, the backfill's
// listings). Each call opens its own connection: the rare ones need no more, and a backfill
// is paced far below what a connection set-up costs. Runs on the caller's executor.
namespace sluice::upstream {

struct RestResponse {
  unsigned status = 0;  // 0 when no response arrived
  std::string body;
  std::string error;  // transport error; empty when a response arrived
  // The server's clock, from its Date header: expiries the server sets are judged by it.
  std::optional<std::chrono::system_clock::time_point> date;
  // Retry-After in seconds (429, 503), when the server sent one.
  std::optional<std::chrono::seconds> retry_after;
};

// An HTTP Date header (RFC 9110 IMF-fixdate, "Sun, 06 Dec 2026 16:22:44 GMT"); nullopt when
// it is anything else.
std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view text);

using Headers = std::vector<std::pair<std::string, std::string>>;

// `path` is appended to the endpoint's base path ("/health/version" → "/v1/health/version").
// `tls` must be set when the endpoint is https. A response body larger than `body_limit` is a
// transport error.
boost::asio::awaitable<RestResponse> rest_call(const net::Endpoint& endpoint,
                                               boost::asio::ssl::context* tls, bool verify,
                                               boost::beast::http::verb method,
                                               std::string_view path, const Headers& headers,
                                               std::string body, std::chrono::milliseconds timeout,
                                               std::size_t body_limit = 1u << 20);

}  // namespace sluice::upstream
