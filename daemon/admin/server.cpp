#include "daemon/admin/server.hpp"

#include <exception>
#include <optional>
#include <unordered_set>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "core/log.hpp"

namespace sluice::admin {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

std::string to_string(const tcp::endpoint& endpoint) {
  const auto address = endpoint.address();
  return (address.is_v6() ? "[" + address.to_string() + "]" : address.to_string()) + ":" +
         std::to_string(endpoint.port());
}

// Parser errors that deserve an answer before the close. Anything else (EOF, reset, timeout,
// a half-sent request) means the client is gone or stalled, and it is closed silently.
std::optional<http::status> status_for_read_error(const error_code& ec) {
  if (ec.category() != http::make_error_code(http::error::end_of_stream).category()) {
    return std::nullopt;
  }
  if (ec == http::error::end_of_stream || ec == http::error::partial_message)
    return std::nullopt;
  if (ec == http::error::header_limit)
    return http::status::request_header_fields_too_large;
  if (ec == http::error::body_limit)
    return http::status::payload_too_large;
  return http::status::bad_request;
}

void log_exception(std::string_view what, const std::exception_ptr& e) {
  if (!e)
    return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    log::error("admin", what, {{"error", ex.what()}});
  } catch (...) {
    log::error("admin", what);
  }
}

// Keeps the set of live streams exact however a session ends, including when its coroutine
// frame is destroyed together with the io_context.
class LiveEntry {
 public:
  LiveEntry(std::unordered_set<beast::tcp_stream*>& set, beast::tcp_stream* stream)
      : set_(set), stream_(stream) {
    set_.insert(stream_);
  }
  ~LiveEntry() { set_.erase(stream_); }
  LiveEntry(const LiveEntry&) = delete;
  LiveEntry& operator=(const LiveEntry&) = delete;

 private:
  std::unordered_set<beast::tcp_stream*>& set_;
  beast::tcp_stream* stream_;
};

}  // namespace

// Everything the coroutines touch. Shared by the AdminServer and every coroutine it spawned,
// so it outlives the server object until the last session has unwound. Loop thread only.
struct AdminServer::State {
  State(asio::any_io_executor executor, Metrics& metrics, Handlers handlers, config::Secret token,
        Limits lim)
      : loop(std::move(executor)),
        acceptor(loop),
        routes(metrics, std::move(handlers), std::move(token)),
        limits(lim) {}

  // Static, taking the state by value, so the frame owns a reference from its very creation.
  static asio::awaitable<void> accept_loop(std::shared_ptr<State> self);
  static asio::awaitable<void> session(std::shared_ptr<State> self, tcp::socket socket);

  asio::any_io_executor loop;
  tcp::acceptor acceptor;
  Routes routes;
  Limits limits;
  bool started = false;
  bool stopped = false;
  // The live sessions' streams, so stop() can close them; each session removes its own entry.
  std::unordered_set<beast::tcp_stream*> connections;
  log::RateLimiter reject_log{5, std::chrono::seconds(60)};
};

asio::awaitable<void> AdminServer::State::accept_loop(std::shared_ptr<State> self) {
  asio::steady_timer backoff(self->loop);
  while (!self->stopped) {
    auto [ec, socket] = co_await self->acceptor.async_accept(kNoThrow);
    if (self->stopped)
      co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted || !self->acceptor.is_open())
        co_return;
      // Typically EMFILE: retrying at once would spin the loop while descriptors stay scarce.
      if (self->reject_log.allow())
        log::warn("admin", "accept failed", {{"error", ec.message()}});
      backoff.expires_after(std::chrono::milliseconds(100));
      co_await backoff.async_wait(kNoThrow);
      continue;
    }
    if (self->connections.size() >= self->limits.max_connections) {
      if (self->reject_log.allow()) {
        log::warn("admin", "connection limit reached; closing new connection",
                  {{"limit", std::to_string(self->limits.max_connections)},
                   {"suppressed", std::to_string(self->reject_log.take_suppressed())}});
      }
      error_code ignored;
      socket.close(ignored);
      continue;
    }
    asio::co_spawn(self->loop, session(self, std::move(socket)),
                   [](const std::exception_ptr& e) { log_exception("admin session failed", e); });
  }
}

asio::awaitable<void> AdminServer::State::session(std::shared_ptr<State> self, tcp::socket socket) {
  if (self->stopped)
    co_return;  // spawned just before stop(): the socket closes with the frame
  const Limits& limits = self->limits;
  beast::tcp_stream stream(std::move(socket));
  const LiveEntry entry(self->connections, &stream);
  // Bounded so that pipelined garbage cannot grow it; one request always fits.
  beast::flat_buffer buffer(limits.header_limit + limits.body_limit + 1024);

  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(limits.header_limit);
    parser.body_limit(limits.body_limit);

    stream.expires_after(limits.read_timeout);
    auto [read_ec, read_n] = co_await http::async_read(stream, buffer, parser, kNoThrow);
    if (self->stopped)
      co_return;
    if (read_ec) {
      if (const auto status = status_for_read_error(read_ec)) {
        auto response = error_response(*status, 11);
        stream.expires_after(limits.write_timeout);
        co_await http::async_write(stream, response, kNoThrow);
      }
      break;
    }

    auto response = self->routes.handle(parser.get());
    const bool keep_alive = response.keep_alive();
    stream.expires_after(limits.write_timeout);
    auto [write_ec, write_n] = co_await http::async_write(stream, response, kNoThrow);
    if (self->stopped)
      co_return;
    if (write_ec || !keep_alive)
      break;
  }

  error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream.close();
}

AdminServer::AdminServer(asio::any_io_executor loop, Metrics& metrics, Handlers handlers,
                         config::Secret token, Limits limits)
    : state_(std::make_shared<State>(std::move(loop), metrics, std::move(handlers),
                                     std::move(token), limits)) {}

AdminServer::~AdminServer() {
  stop();
}

error_code AdminServer::listen(const std::string& host, std::uint16_t port) {
  std::string name = host;
  if (name.size() >= 2 && name.front() == '[' && name.back() == ']') {
    name = name.substr(1, name.size() - 2);
  }
  error_code ec;
  tcp::endpoint endpoint;
  const auto address = asio::ip::make_address(name, ec);
  if (!ec) {
    endpoint = tcp::endpoint(address, port);
  } else {
    tcp::resolver resolver(state_->loop);
    const auto results = resolver.resolve(name, std::to_string(port), tcp::resolver::passive, ec);
    if (ec)
      return ec;
    if (results.empty())
      return asio::error::host_not_found;
    endpoint = results.begin()->endpoint();
  }

  auto& acceptor = state_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (ec)
    return ec;
  // A restarted daemon must be able to bind while the old one's sockets sit in TIME_WAIT.
  acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec)
    acceptor.bind(endpoint, ec);
  if (!ec)
    acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    error_code ignored;
    acceptor.close(ignored);
    return ec;
  }
  log::info("admin", "listening", {{"address", to_string(local_endpoint())}});
  return {};
}

tcp::endpoint AdminServer::local_endpoint() const {
  error_code ec;
  return state_->acceptor.local_endpoint(ec);
}

void AdminServer::start() {
  auto& state = *state_;
  if (state.started || state.stopped || !state.acceptor.is_open())
    return;
  state.started = true;
  asio::co_spawn(state.loop, State::accept_loop(state_),
                 [](const std::exception_ptr& e) { log_exception("admin accept loop failed", e); });
}

void AdminServer::stop() {
  auto& state = *state_;
  if (state.stopped)
    return;
  state.stopped = true;
  error_code ignored;
  state.acceptor.close(ignored);
  // Closing completes each session's pending read or write with an error on the loop's next
  // turn; the sessions then see `stopped` and end. Closing never runs a handler inline, so the
  // set is not modified while it is walked.
  for (auto* stream : state.connections)
    stream->close();
}

std::size_t AdminServer::connection_count() const {
  return state_->connections.size();
}

}  // namespace sluice::admin
