#include "daemon/upstream/rest.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "net/transport.hpp"

namespace sluice::upstream {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

template <class Stream>
asio::awaitable<RestResponse> exchange(Stream& stream, http::request<http::string_body>& req,
                                       std::chrono::milliseconds timeout) {
  RestResponse out;
  beast::get_lowest_layer(stream).expires_after(timeout);
  auto [wec, wn] = co_await http::async_write(stream, req, use_tuple);
  if (wec) {
    out.error = net::describe(wec);
    co_return out;
  }
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(1 << 20);
  auto [rec, rn] = co_await http::async_read(stream, buffer, parser, use_tuple);
  beast::get_lowest_layer(stream).expires_never();
  if (rec) {
    out.error = net::describe(rec);
    co_return out;
  }
  out.status = parser.get().result_int();
  out.body = std::move(parser.get().body());
  co_return out;
}

}  // namespace

asio::awaitable<RestResponse> rest_call(const net::Endpoint& endpoint, asio::ssl::context* tls,
                                        bool verify, http::verb method, std::string_view path,
                                        const Headers& headers, std::string body,
                                        std::chrono::milliseconds timeout) {
  http::request<http::string_body> req{method, endpoint.base_path + std::string(path), 11};
  req.set(http::field::host, endpoint.host_header());
  req.set(http::field::user_agent, "sluice/" SLUICE_VERSION);
  req.set(http::field::accept, "application/json");
  for (const auto& [k, v] : headers)
    req.set(k, v);
  if (!body.empty())
    req.set(http::field::content_type, "application/json");
  req.body() = std::move(body);
  req.prepare_payload();

  const auto ex = co_await asio::this_coro::executor;
  if (endpoint.secure) {
    if (tls == nullptr)
      co_return RestResponse{0, {}, "no TLS context for an https endpoint"};
    net::TlsStream stream(ex, *tls);
    if (auto ec = co_await net::connect_tcp(beast::get_lowest_layer(stream), endpoint, timeout)) {
      co_return RestResponse{0, {}, net::describe(ec)};
    }
    if (auto ec = co_await net::handshake_tls(stream, endpoint, verify, timeout)) {
      co_return RestResponse{0, {}, net::describe(ec)};
    }
    co_return co_await exchange(stream, req, timeout);
  }
  beast::tcp_stream stream(ex);
  if (auto ec = co_await net::connect_tcp(stream, endpoint, timeout)) {
    co_return RestResponse{0, {}, net::describe(ec)};
  }
  co_return co_await exchange(stream, req, timeout);
}

}  // namespace sluice::upstream
