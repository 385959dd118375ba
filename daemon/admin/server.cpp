#include "daemon/admin/server.hpp"

#include <exception>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <variant>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "core/log.hpp"
#include "daemon/admin/connection_slots.hpp"

namespace sluice::admin {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

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

// OpenSSL's reason for `ec` ("no start line", "wrong version number"), or the system message.
std::string describe(const error_code& ec) {
  if (ec.category() == asio::error::get_ssl_category()) {
    if (const char* reason = ::ERR_reason_error_string(static_cast<unsigned long>(ec.value())))
      return reason;
  }
  return ec.message();
}

bool is_plain_http(const error_code& ec) {
  return ec.category() == asio::error::get_ssl_category() &&
         ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_HTTP_REQUEST;
}

// The server context for `admin.tls`, or the reason it cannot be built (naming the file).
std::variant<std::shared_ptr<ssl::context>, std::string> make_server_tls_context(
    const config::TlsConfig& tls) {
  if (tls.cert_file.empty() || tls.key_file.empty())
    return std::string("admin TLS needs cert_file and key_file");
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  error_code ec;
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                       ssl::context::single_dh_use,
                   ec);
  // The options above leave out versions only by name; this also excludes any added later.
  // Client-initiated renegotiation would let one client make the loop do handshakes forever.
  if (!ec && (::SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION) != 1 ||
              (::SSL_CTX_set_options(ctx->native_handle(), SSL_OP_NO_RENEGOTIATION) &
               SSL_OP_NO_RENEGOTIATION) == 0)) {
    ec = error_code(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category());
  }
  if (ec)
    return "cannot set up TLS: " + describe(ec);
  // An encrypted key would make OpenSSL prompt on the terminal; a daemon must fail instead.
  ctx->set_password_callback(
      [](std::size_t, ssl::context::password_purpose) { return std::string(); }, ec);

  auto file_error = [](std::string_view key, const std::string& path, const error_code& e) {
    return std::string(key) + " \"" + path + "\": " + describe(e);
  };
  ::ERR_clear_error();
  if (ctx->use_certificate_chain_file(tls.cert_file, ec); ec)
    return file_error("cert_file", tls.cert_file, ec);
  if (ctx->use_private_key_file(tls.key_file, ssl::context::pem, ec); ec)
    return file_error("key_file", tls.key_file, ec);
  if (::SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
    ec = error_code(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category());
    return file_error("key_file", tls.key_file, ec) + " (does not match cert_file)";
  }
  if (!tls.ca_file.empty() && tls.verify) {
    if (ctx->load_verify_file(tls.ca_file, ec); ec)
      return file_error("ca_file", tls.ca_file, ec);
    // Tells clients which issuers are accepted, so they pick the right certificate.
    STACK_OF(X509_NAME)* names = ::SSL_load_client_CA_file(tls.ca_file.c_str());
    if (names == nullptr) {
      ec = error_code(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category());
      return file_error("ca_file", tls.ca_file, ec);
    }
    ::SSL_CTX_set_client_CA_list(ctx->native_handle(), names);
    ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  } else {
    ctx->set_verify_mode(ssl::verify_none);
  }
  ::ERR_clear_error();
  return ctx;
}

}  // namespace

// Everything the coroutines touch. Shared by the AdminServer and every coroutine it spawned,
// so it outlives the server object until the last session has unwound. Loop thread only.
struct AdminServer::State {
  State(asio::any_io_executor executor, Metrics& metrics, Handlers handlers, config::Secret token,
        Limits lim)
      : loop(std::move(executor)),
        acceptor(loop),
        routes(metrics, std::move(handlers), std::move(token)),
        all_metrics(metrics),
        limits(lim),
        slots(lim.max_connections, lim.max_connections_per_address),
        dropped(prometheus::BuildCounter()
                    .Name("sluice_admin_connections_dropped_total")
                    .Help("Admin connections closed to make room for a new one (shed) or "
                          "refused because every connection was busy answering")
                    .Register(metrics.registry())),
        shed_count(dropped.Add({{"reason", "shed"}})),
        refused_count(dropped.Add({{"reason", "refused"}})) {}

  class Entry;

  // Static, taking the state by value, so the frame owns a reference from its very creation.
  static asio::awaitable<void> accept_loop(std::shared_ptr<State> self);
  static asio::awaitable<void> session(std::shared_ptr<State> self, tcp::socket socket,
                                       ConnectionSlots::Id id);
  // The HTTP exchange, the same for both stream types; returns when the connection should end.
  template <class Stream>
  static asio::awaitable<void> serve(std::shared_ptr<State> self, Stream& stream,
                                     ConnectionSlots::Id id);
  static asio::awaitable<void> tls_session(std::shared_ptr<State> self, TlsStream& stream,
                                           ConnectionSlots::Id id);
  // The server closed this connection (stop() or shed): its session ends without a word.
  bool closed_by_server(ConnectionSlots::Id id) const { return stopped || !slots.contains(id); }
  static void admit(const std::shared_ptr<State>& self, tcp::socket socket);
  void handshake_failed(std::string_view reason, const error_code& ec, const tcp::socket& socket);

  asio::any_io_executor loop;
  tcp::acceptor acceptor;
  Routes routes;
  Metrics& all_metrics;  // for the handshake counter, registered by enable_tls()
  Limits limits;
  bool started = false;
  bool stopped = false;
  ConnectionSlots slots;
  // The live sessions' streams, so stop() and shedding can close them; each session's Entry
  // removes its own.
  std::unordered_map<ConnectionSlots::Id, beast::tcp_stream*> connections;
  prometheus::Family<prometheus::Counter>& dropped;
  prometheus::Counter& shed_count;
  prometheus::Counter& refused_count;
  log::RateLimiter reject_log{5, std::chrono::seconds(60)};
  log::RateLimiter shed_log{5, std::chrono::seconds(60)};
  // Set by enable_tls(): then every connection is TLS. Shared so a replaced context stays
  // alive for the sessions already using it.
  std::shared_ptr<ssl::context> tls;
  prometheus::Family<prometheus::Counter>* handshake_failures = nullptr;
  log::RateLimiter handshake_log{5, std::chrono::seconds(60)};
};

// Keeps the slots and the stream map exact however a session ends, including when its
// coroutine frame is destroyed together with the io_context.
class AdminServer::State::Entry {
 public:
  Entry(State& state, ConnectionSlots::Id id) : state_(state), id_(id) {}
  ~Entry() {
    state_.connections.erase(id_);
    state_.slots.release(id_);
  }
  Entry(const Entry&) = delete;
  Entry& operator=(const Entry&) = delete;
  void attach(beast::tcp_stream& stream) { state_.connections.emplace(id_, &stream); }

 private:
  State& state_;
  ConnectionSlots::Id id_;
};

void AdminServer::State::admit(const std::shared_ptr<State>& self, tcp::socket socket) {
  State& state = *self;
  error_code ec;
  const auto peer = socket.remote_endpoint(ec);
  if (ec)
    return;  // already reset by the client; the socket closes here
  auto admission = state.slots.admit(peer.address(), ConnectionSlots::Clock::now());
  for (const auto id : admission.shed) {
    state.shed_count.Increment();
    // A session not started yet has no stream: it sees its slot gone when it starts.
    // Closing never runs a handler inline, so the map is not modified while it is used.
    if (const auto it = state.connections.find(id); it != state.connections.end())
      it->second->close();
  }
  if (!admission.id) {
    state.refused_count.Increment();
    if (state.reject_log.allow()) {
      log::warn("admin", "every connection is busy; closing new connection",
                {{"peer", to_string(peer)},
                 {"suppressed", std::to_string(state.reject_log.take_suppressed())}});
    }
    socket.close(ec);
    return;
  }
  if (!admission.shed.empty() && state.shed_log.allow()) {
    log::warn("admin", "connection limit reached; closed the connection that waited longest",
              {{"peer", to_string(peer)},
               {"limit", std::to_string(state.limits.max_connections)},
               {"per_address_limit", std::to_string(state.limits.max_connections_per_address)},
               {"suppressed", std::to_string(state.shed_log.take_suppressed())}});
  }
  asio::co_spawn(state.loop, session(self, std::move(socket), *admission.id),
                 [](const std::exception_ptr& e) { log_exception("admin session failed", e); });
}

void AdminServer::State::handshake_failed(std::string_view reason, const error_code& ec,
                                          const tcp::socket& socket) {
  handshake_failures->Add({{"reason", std::string(reason)}}).Increment();
  if (!handshake_log.allow())
    return;
  error_code ignored;
  const auto peer = socket.remote_endpoint(ignored);
  log::warn("admin", "TLS handshake failed",
            {{"reason", std::string(reason)},
             {"error", describe(ec)},
             {"peer", ignored ? std::string("unknown") : to_string(peer)},
             {"suppressed", std::to_string(handshake_log.take_suppressed())}});
}

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
    admit(self, std::move(socket));
  }
}

asio::awaitable<void> AdminServer::State::session(std::shared_ptr<State> self, tcp::socket socket,
                                                  ConnectionSlots::Id id) {
  Entry entry(*self, id);
  // Stopped or shed before it started: the socket closes with the frame.
  if (self->closed_by_server(id))
    co_return;
  if (self->tls) {
    TlsStream stream(std::move(socket), *self->tls);
    entry.attach(stream.next_layer());
    co_await tls_session(self, stream, id);
    co_return;
  }
  beast::tcp_stream stream(std::move(socket));
  entry.attach(stream);
  co_await serve(self, stream, id);
  if (self->closed_by_server(id))
    co_return;
  error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream.close();
}

asio::awaitable<void> AdminServer::State::tls_session(std::shared_ptr<State> self,
                                                      TlsStream& stream, ConnectionSlots::Id id) {
  const Limits& limits = self->limits;
  auto& tcp_layer = stream.next_layer();
  tcp_layer.expires_after(limits.handshake_timeout);
  auto [handshake_ec] = co_await stream.async_handshake(ssl::stream_base::server, kNoThrow);
  if (self->closed_by_server(id))
    co_return;
  if (handshake_ec) {
    if (handshake_ec == beast::error::timeout) {
      self->handshake_failed("timeout", handshake_ec, tcp_layer.socket());
    } else if (is_plain_http(handshake_ec)) {
      self->handshake_failed("plain_http", handshake_ec, tcp_layer.socket());
      // OpenSSL sends no alert here, so a plain-text answer is what the client can read.
      auto response = error_response(http::status::bad_request, 11);
      response.body() = "This port serves HTTPS.\n";
      response.prepare_payload();
      tcp_layer.expires_after(limits.write_timeout);
      co_await http::async_write(tcp_layer, response, kNoThrow);
      if (self->closed_by_server(id))
        co_return;
      error_code ignored;
      tcp_layer.socket().shutdown(tcp::socket::shutdown_send, ignored);
    } else {
      self->handshake_failed("other", handshake_ec, tcp_layer.socket());
    }
    tcp_layer.close();
    co_return;
  }

  co_await serve(self, stream, id);
  if (self->closed_by_server(id))
    co_return;
  // close_notify tells the client the response was complete; a client that never answers it
  // costs at most one write timeout.
  tcp_layer.expires_after(limits.write_timeout);
  co_await stream.async_shutdown(kNoThrow);
  tcp_layer.close();
}

template <class Stream>
asio::awaitable<void> AdminServer::State::serve(std::shared_ptr<State> self, Stream& stream,
                                                ConnectionSlots::Id id) {
  const Limits& limits = self->limits;
  auto& tcp_layer = beast::get_lowest_layer(stream);
  // Bounded so that pipelined garbage cannot grow it; one request always fits.
  beast::flat_buffer buffer(limits.header_limit + limits.body_limit + 1024);

  for (bool first = true;; first = false) {
    // A kept-alive connection may wait longer for its next request to start than a request may
    // take to arrive once started.
    if (!first && buffer.size() == 0) {
      tcp_layer.expires_after(limits.idle_timeout);
      auto [idle_ec, idle_n] = co_await stream.async_read_some(buffer.prepare(512), kNoThrow);
      if (idle_ec || self->closed_by_server(id))
        co_return;
      buffer.commit(idle_n);
    }

    http::request_parser<http::string_body> parser;
    parser.header_limit(limits.header_limit);
    parser.body_limit(limits.body_limit);
    tcp_layer.expires_after(limits.request_timeout);
    auto [read_ec, read_n] = co_await http::async_read(stream, buffer, parser, kNoThrow);
    if (self->closed_by_server(id))
      co_return;
    if (read_ec) {
      if (const auto status = status_for_read_error(read_ec)) {
        auto response = error_response(*status, 11);
        tcp_layer.expires_after(limits.write_timeout);
        co_await http::async_write(stream, response, kNoThrow);
      }
      co_return;
    }

    self->slots.busy(id);
    auto response = self->routes.handle(parser.get());
    const bool keep_alive = response.keep_alive();
    tcp_layer.expires_after(limits.write_timeout);
    auto [write_ec, write_n] = co_await http::async_write(stream, response, kNoThrow);
    if (self->closed_by_server(id))
      co_return;
    // Answered: from here the connection may be shed, also while a TLS close waits for the
    // client's close_notify.
    self->slots.waiting(id, ConnectionSlots::Clock::now());
    if (write_ec || !keep_alive)
      co_return;
  }
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

std::string AdminServer::enable_tls(const config::TlsConfig& tls) {
  auto& state = *state_;
  if (state.started)
    return "enable_tls() must be called before start()";
  auto result = make_server_tls_context(tls);
  if (auto* message = std::get_if<std::string>(&result))
    return std::move(*message);
  state.tls = std::get<std::shared_ptr<ssl::context>>(std::move(result));
  state.handshake_failures = &prometheus::BuildCounter()
                                  .Name("sluice_admin_tls_handshake_failures_total")
                                  .Help("TLS handshakes on the admin port that failed, by reason")
                                  .Register(state.all_metrics.registry());
  // Present from the start, so a scrape shows 0 rather than nothing.
  for (const auto* reason : {"timeout", "plain_http", "other"})
    state.handshake_failures->Add({{"reason", reason}});
  log::info("admin", "TLS enabled",
            {{"cert_file", tls.cert_file},
             {"client_certificates", !tls.ca_file.empty() && tls.verify ? "required" : "no"}});
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
  // map is not modified while it is walked.
  for (const auto& [id, stream] : state.connections)
    stream->close();
}

std::size_t AdminServer::connection_count() const {
  return state_->slots.size();
}

}  // namespace sluice::admin
