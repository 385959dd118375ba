#include "daemon/admin/routes.hpp"

#include <exception>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>

#include "core/log.hpp"

namespace sluice::admin {
namespace {

enum class Route { none, metrics, healthz, readyz, status };

Route route_of(std::string_view target) {
  // Probes and scrapers sometimes add query parameters; they select nothing here.
  const auto query = target.find('?');
  const auto path = target.substr(0, query);
  if (path == "/metrics")
    return Route::metrics;
  if (path == "/healthz")
    return Route::healthz;
  if (path == "/readyz")
    return Route::readyz;
  if (path == "/status")
    return Route::status;
  return Route::none;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i]))
      return false;
  }
  return true;
}

void set_text(Response& response, http::status status, std::string body) {
  response.result(status);
  response.set(http::field::content_type, kTextContentType);
  response.body() = std::move(body);
}

}  // namespace

bool bearer_matches(std::string_view authorization, std::string_view expected) {
  constexpr std::string_view kScheme = "bearer";
  if (authorization.size() <= kScheme.size() ||
      !iequals(authorization.substr(0, kScheme.size()), kScheme) ||
      authorization[kScheme.size()] != ' ') {
    return false;
  }
  auto given = authorization.substr(kScheme.size());
  while (!given.empty() && given.front() == ' ')
    given.remove_prefix(1);

  // Every byte of the expected token is visited whatever the input, so the time taken says
  // nothing about how much of a guess was right.
  std::size_t diff = given.size() ^ expected.size();
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const auto g = i < given.size() ? static_cast<unsigned char>(given[i]) : 0u;
    diff |= g ^ static_cast<unsigned char>(expected[i]);
  }
  return diff == 0 && !expected.empty();
}

Routes::Routes(Metrics& metrics, Handlers handlers, config::Secret token)
    : metrics_(metrics),
      process_(metrics.registry()),
      handlers_(std::move(handlers)),
      token_(std::move(token)) {}

Response Routes::handle(const Request& request) {
  Response response{http::status::ok, request.version()};
  response.set(http::field::server, "sluice");
  response.keep_alive(request.keep_alive());

  const auto route = route_of(request.target());
  const auto method = request.method();
  const bool protected_route = route == Route::metrics || route == Route::status;

  if (route == Route::none) {
    set_text(response, http::status::not_found, "not found\n");
  } else if (method != http::verb::get && method != http::verb::head) {
    set_text(response, http::status::method_not_allowed, "method not allowed\n");
    response.set(http::field::allow, "GET, HEAD");
  } else if (protected_route && !token_.empty() &&
             !bearer_matches(request[http::field::authorization], token_.reveal())) {
    set_text(response, http::status::unauthorized, "unauthorized\n");
    response.set(http::field::www_authenticate, R"(Bearer realm="sluice")");
  } else {
    try {
      switch (route) {
        case Route::metrics:
          process_.refresh();
          response.set(http::field::content_type, kMetricsContentType);
          response.body() = metrics_.render();
          break;
        case Route::healthz:
          set_text(response, http::status::ok, "ok\n");
          break;
        case Route::readyz:
          if (handlers_.ready && handlers_.ready()) {
            set_text(response, http::status::ok, "ready\n");
          } else {
            const auto reason =
                handlers_.not_ready_reason ? handlers_.not_ready_reason() : std::string();
            set_text(response, http::status::service_unavailable,
                     reason.empty() ? std::string("not ready\n") : "not ready: " + reason + "\n");
          }
          break;
        case Route::status:
          response.set(http::field::content_type, kJsonContentType);
          response.body() = handlers_.status_json ? handlers_.status_json() : "{}";
          break;
        case Route::none:
          break;
      }
    } catch (const std::exception& e) {
      log::error("admin", "request handler failed",
                 {{"path", std::string(request.target())}, {"error", e.what()}});
      response = Response{http::status::internal_server_error, request.version()};
      response.set(http::field::server, "sluice");
      response.keep_alive(request.keep_alive());
      set_text(response, http::status::internal_server_error, "internal error\n");
    }
  }
  // Admin answers change from one request to the next; a cache in between would lie.
  response.set(http::field::cache_control, "no-store");
  response.prepare_payload();
  if (method == http::verb::head) {
    const auto length = response.body().size();
    response.body().clear();
    response.content_length(length);
  }
  return response;
}

Response error_response(http::status status, unsigned version) {
  Response response{status, version};
  response.set(http::field::server, "sluice");
  response.set(http::field::content_type, kTextContentType);
  response.body() = std::string(http::obsolete_reason(status)) + "\n";
  response.keep_alive(false);
  response.prepare_payload();
  return response;
}

}  // namespace sluice::admin
