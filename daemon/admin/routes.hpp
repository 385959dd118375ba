#pragma once

#include <functional>
#include <string>
#include <string_view>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "config/config.hpp"
#include "core/metrics.hpp"
#include "core/process_metrics.hpp"

// What the admin endpoints answer, as a plain function of the request: no sockets here, so
// every route, status code and header is unit-tested directly. The server around it is
// daemon/admin/server.hpp.
namespace sluice::admin {

namespace http = boost::beast::http;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";
inline constexpr std::string_view kTextContentType = "text/plain; charset=utf-8";
inline constexpr std::string_view kJsonContentType = "application/json";

// What the daemon tells the admin server. They are called on the event loop for each request
// and must be quick (they read atomics or loop-owned state). An empty `ready` means "not
// ready"; `not_ready_reason` (optional) says why, in words, after "not ready: "; an empty
// `status_json` answers "{}".
struct Handlers {
  std::function<bool()> ready;
  std::function<std::string()> not_ready_reason;
  std::function<std::string()> status_json;
};

// True when `authorization` is "Bearer <expected>" (scheme case-insensitive). The token is
// compared in time that depends only on the expected token's length, not on where the
// first differing byte is.
bool bearer_matches(std::string_view authorization, std::string_view expected);

// The routing table. Owned by the AdminServer's shared state; handle() runs on the event loop.
class Routes {
 public:
  Routes(Metrics& metrics, Handlers handlers, config::Secret token);

  // GET/HEAD /metrics, /healthz, /readyz, /status; 404 for other paths, 405 (with Allow) for
  // other methods, 401 (with WWW-Authenticate) on /metrics and /status when a token is set and
  // the request lacks it. HEAD answers the GET's headers (Content-Length included) without a
  // body. The response carries the request's HTTP version and keep-alive choice.
  Response handle(const Request& request);

 private:
  Metrics& metrics_;
  ProcessMetrics process_;
  Handlers handlers_;
  config::Secret token_;
};

// A minimal response for requests the parser rejected (400, 413, 431), sent before closing.
Response error_response(http::status status, unsigned version);

}  // namespace sluice::admin
