#include "daemon/upstream/rest.hpp"

#include <algorithm>
#include <array>
#include <charconv>

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

RestResponse transport_failure(std::string error) {
  RestResponse out;
  out.error = std::move(error);
  return out;
}

template <class Stream>
asio::awaitable<RestResponse> exchange(Stream& stream, http::request<http::string_body>& req,
                                       std::chrono::milliseconds timeout, std::size_t body_limit) {
  RestResponse out;
  beast::get_lowest_layer(stream).expires_after(timeout);
  auto [wec, wn] = co_await http::async_write(stream, req, use_tuple);
  if (wec) {
    out.error = net::describe(wec);
    co_return out;
  }
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(body_limit);
  auto [rec, rn] = co_await http::async_read(stream, buffer, parser, use_tuple);
  beast::get_lowest_layer(stream).expires_never();
  if (rec) {
    out.error = net::describe(rec);
    co_return out;
  }
  out.status = parser.get().result_int();
  if (const auto date = parser.get().find(http::field::date); date != parser.get().end())
    out.date = parse_http_date(std::string_view(date->value().data(), date->value().size()));
  if (const auto retry = parser.get().find(http::field::retry_after); retry != parser.get().end()) {
    // Only the delay-seconds form: Appwrite's rate limiter sends no dates.
    std::uint32_t seconds = 0;
    const auto text = retry->value();
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
    if (ec == std::errc{} && end == text.data() + text.size())
      out.retry_after = std::chrono::seconds(seconds);
  }
  out.body = std::move(parser.get().body());
  co_return out;
}

}  // namespace

std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view text) {
  // "Sun, 06 Dec 2026 16:22:44 GMT": the weekday is redundant and not checked.
  static constexpr std::array<std::string_view, 12> kMonths = {
      "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  if (text.size() != 29 || text.substr(3, 2) != ", " || text.substr(25) != " GMT" ||
      text[7] != ' ' || text[11] != ' ' || text[16] != ' ' || text[19] != ':' || text[22] != ':') {
    return std::nullopt;
  }
  const auto number = [&](std::size_t at, std::size_t length) -> std::optional<int> {
    int value = 0;
    const auto* first = text.data() + at;
    const auto [end, ec] = std::from_chars(first, first + length, value);
    if (ec != std::errc{} || end != first + length)
      return std::nullopt;
    return value;
  };
  const auto day = number(5, 2), year = number(12, 4), hour = number(17, 2), minute = number(20, 2),
             second = number(23, 2);
  const auto month = std::find(kMonths.begin(), kMonths.end(), text.substr(8, 3));
  if (!day || !year || !hour || !minute || !second || month == kMonths.end() || *hour > 23 ||
      *minute > 59 || *second > 60) {
    return std::nullopt;
  }
  using namespace std::chrono;
  const year_month_day date{std::chrono::year{*year},
                            std::chrono::month{static_cast<unsigned>(month - kMonths.begin() + 1)},
                            std::chrono::day{static_cast<unsigned>(*day)}};
  if (!date.ok())
    return std::nullopt;
  return sys_days{date} + hours{*hour} + minutes{*minute} + seconds{*second};
}

asio::awaitable<RestResponse> rest_call(const net::Endpoint& endpoint, asio::ssl::context* tls,
                                        bool verify, http::verb method, std::string_view path,
                                        const Headers& headers, std::string body,
                                        std::chrono::milliseconds timeout, std::size_t body_limit) {
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
      co_return transport_failure("no TLS context for an https endpoint");
    net::TlsStream stream(ex, *tls);
    if (auto ec = co_await net::connect_tcp(beast::get_lowest_layer(stream), endpoint, timeout)) {
      co_return transport_failure(net::describe(ec));
    }
    if (auto ec = co_await net::handshake_tls(stream, endpoint, verify, timeout)) {
      co_return transport_failure(net::describe(ec));
    }
    co_return co_await exchange(stream, req, timeout, body_limit);
  }
  beast::tcp_stream stream(ex);
  if (auto ec = co_await net::connect_tcp(stream, endpoint, timeout)) {
    co_return transport_failure(net::describe(ec));
  }
  co_return co_await exchange(stream, req, timeout, body_limit);
}

}  // namespace sluice::upstream
