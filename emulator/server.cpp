#include "emulator/server.hpp"

#include <array>
#include <charconv>
#include <cstdint>
#include <deque>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "core/event.hpp"
#include "core/log.hpp"

namespace sluice::emulator {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace json = boost::json;
using tcp = asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// Appwrite's Swoole package_max_length: a bigger inbound frame drops the connection.
constexpr std::size_t kMaxInbound = 64000;
// Swoole's HTTP parser reads a request head (request line and headers) of at most 64 KiB.
constexpr std::uint32_t kMaxRequestHead = 65536;
// The load generator waits for a connection whose queue exceeds kHighWater frames until it is
// back under kLowWater: a slow reader slows the stream instead of growing memory.
constexpr std::size_t kHighWater = 256;
constexpr std::size_t kLowWater = 64;
// How long a connection closed by the server (1008) may take to see our FIN and hang up.
constexpr auto kCloseGrace = std::chrono::seconds(5);

bool is_loopback(const tcp::endpoint& peer) {
  const auto address = peer.address();
  if (address.is_loopback())
    return true;
  return address.is_v6() && address.to_v6().is_v4_mapped() &&
         asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6()).is_loopback();
}

std::string endpoint_text(const tcp::endpoint& e) {
  const auto address = e.address().to_string();
  return (e.address().is_v6() ? "[" + address + "]" : address) + ":" + std::to_string(e.port());
}

template <class Body>
Headers lowercase_headers(const http::request<Body>& request) {
  Headers headers;
  for (const auto& field : request) {
    std::string name(field.name_string());
    for (auto& c : name)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto [it, inserted] = headers.emplace(std::move(name), std::string(field.value()));
    if (!inserted && it->first == "cookie") {
      it->second += "; ";
      it->second += field.value();
    }
  }
  return headers;
}

// The stream-independent part of a realtime connection, so the load generator can wait on any
// of them without knowing whether it is TLS.
class SocketPeer : public Peer {
 public:
  // Completes once backlog() <= frames or the connection closed.
  virtual asio::awaitable<void> wait_backlog(std::size_t frames) = 0;
};

// One realtime WebSocket connection: a reader coroutine (this->run) and a writer coroutine
// draining its own queue, so one slow client never holds up another. Owned by shared_ptr
// (its coroutines and, while attached, the Engine); runs on the io_context thread.
template <class Stream>
class WsPeer final : public SocketPeer, public std::enable_shared_from_this<WsPeer<Stream>> {
 public:
  WsPeer(websocket::stream<Stream> ws, Engine& engine)
      : ws_(std::move(ws)),
        engine_(engine),
        wake_(ws_.get_executor()),
        drained_(ws_.get_executor()),
        grace_(ws_.get_executor()),
        opening_(ws_.get_executor()) {
    wake_.expires_at(asio::steady_timer::time_point::max());
    drained_.expires_at(asio::steady_timer::time_point::max());
  }

  void send(std::string frame) override {
    if (closed_ || flush_then_close_)
      return;
    queue_.push_back(std::move(frame));
    wake_.cancel();
  }
  void drop() override { hard_close(); }
  std::size_t backlog() const override { return queue_.size(); }
  bool closed() const override { return closed_ || flush_then_close_; }

  asio::awaitable<void> wait_backlog(std::size_t frames) override {
    auto self = this->shared_from_this();
    while (!closed_ && queue_.size() > frames)
      co_await drained_.async_wait(use_tuple);
  }

  // A WebSocket client waits for the 101 answer before it sends a frame, so nothing of the
  // connection is left in the HTTP read buffer.
  asio::awaitable<void> run(http::request<http::string_body> request, std::string remote) {
    auto self = this->shared_from_this();
    // Appwrite has no idle timeout; Beast's own timeouts would close quiet subscribers.
    beast::get_lowest_layer(ws_).expires_never();
    websocket::stream_base::timeout timeouts{};
    timeouts.handshake_timeout = std::chrono::seconds(30);
    timeouts.idle_timeout = websocket::stream_base::none();
    timeouts.keep_alive_pings = false;
    ws_.set_option(timeouts);
    ws_.read_message_max(0);  // the 64,000-byte limit is enforced below, with a TCP close
    ws_.auto_fragment(false);
    const auto target = std::string(request.target());
    const auto headers = lowercase_headers(request);
    auto [ec] = co_await ws_.async_accept(request, use_tuple);
    if (ec)
      co_return;

    connection_.id = engine_.next_connection_id();
    connection_.remote = std::move(remote);
    asio::co_spawn(ws_.get_executor(), write_loop(self), asio::detached);
    asio::co_spawn(ws_.get_executor(), open_later(self, target, headers), asio::detached);
    co_await read_loop();
    hard_close();
  }

 private:
  // Appwrite's onOpen does its lookups before the connection has a project context, and
  // reads messages meanwhile; Options::open_delay stands for those lookups, so a client that
  // sends before `connected` meets the same refusal (Engine::on_message).
  asio::awaitable<void> open_later(std::shared_ptr<WsPeer> self, std::string target,
                                   Headers headers) {
    if (const auto delay = engine_.options().open_delay; delay.count() > 0) {
      opening_.expires_after(delay);
      co_await opening_.async_wait(use_tuple);
    }
    if (closed_ || flush_then_close_)
      co_return;
    if (engine_.realtime_down()) {
      // An outage began during the handshake's lookups: the server is gone.
      hard_close();
      co_return;
    }
    auto opened = engine_.open(connection_, target, headers);
    for (auto& frame : opened.frames)
      send(std::move(frame));
    if (opened.close) {
      flush_then_close_ = true;
      wake_.cancel();
    } else {
      engine_.attach(self);
    }
  }

  asio::awaitable<void> read_loop() {
    beast::flat_buffer buffer;
    for (;;) {
      auto [ec, n] = co_await ws_.async_read_some(buffer, 16 * 1024, use_tuple);
      if (ec || closed_)
        co_return;
      if (buffer.size() > kMaxInbound) {
        log::debug("emulator", "inbound frame over 64000 bytes: dropping the connection",
                   {{"connection", std::to_string(connection_.id)}});
        co_return;
      }
      if (!ws_.is_message_done())
        continue;
      if (flush_then_close_) {
        buffer.clear();
        continue;
      }
      const auto data = buffer.cdata();
      const std::string_view text(static_cast<const char*>(data.data()), data.size());
      auto outcome = engine_.on_message(connection_, text);
      buffer.clear();
      for (auto& frame : outcome.frames)
        send(std::move(frame));
      if (outcome.close) {
        flush_then_close_ = true;
        engine_.detach(connection_.id);
        wake_.cancel();
      }
    }
  }

  asio::awaitable<void> write_loop(std::shared_ptr<WsPeer> /*keep_alive*/) {
    for (;;) {
      while (!queue_.empty() && !closed_) {
        ws_.text(true);
        auto [ec, n] = co_await ws_.async_write(asio::buffer(queue_.front()), use_tuple);
        if (ec || closed_) {
          hard_close();
          co_return;
        }
        queue_.pop_front();
        if (queue_.size() <= kLowWater)
          drained_.cancel();
      }
      if (closed_)
        co_return;
      if (flush_then_close_) {
        // Appwrite sends the error frame and then closes the TCP connection without a close
        // frame. Half-close first so the client reads the frame before it sees the end.
        beast::error_code ignored;
        beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_send, ignored);
        grace_.expires_after(kCloseGrace);
        co_await grace_.async_wait(use_tuple);
        hard_close();
        co_return;
      }
      co_await wake_.async_wait(use_tuple);
    }
  }

  void hard_close() {
    if (closed_)
      return;
    closed_ = true;
    engine_.detach(connection_.id);
    queue_.clear();
    beast::error_code ignored;
    auto& socket = beast::get_lowest_layer(ws_).socket();
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
    wake_.cancel();
    drained_.cancel();
    grace_.cancel();
    opening_.cancel();
  }

  websocket::stream<Stream> ws_;
  Engine& engine_;
  std::deque<std::string> queue_;
  asio::steady_timer wake_;     // cancelled to wake the writer
  asio::steady_timer drained_;  // cancelled when the queue drops to kLowWater
  asio::steady_timer grace_;
  asio::steady_timer opening_;  // Options::open_delay
  bool flush_then_close_ = false;
  bool closed_ = false;
};

// POST /_emulator/stream: the load generator. Formats the event once and splices the sequence
// number and timestamp into each frame; waits for slow readers (see kHighWater).
asio::awaitable<HttpAnswer> run_stream(Engine& engine, const std::string& body_text) {
  json::error_code ec;
  const auto body = json::parse(body_text, ec);
  if (ec || !body.is_object()) {
    co_return engine.rest_error(400, "general_argument_invalid", "The body is not a JSON object.");
  }
  const auto& o = body.as_object();
  std::int64_t count = 1;
  double rate = 0;
  if (const auto* c = o.if_contains("count")) {
    if (!c->is_int64() || c->as_int64() < 0) {
      co_return engine.rest_error(400, "general_argument_invalid", "`count` must be >= 0");
    }
    count = c->as_int64();
  }
  if (const auto* r = o.if_contains("rate")) {
    if (!r->is_number() || r->to_number<double>() < 0) {
      co_return engine.rest_error(400, "general_argument_invalid", "`rate` must be >= 0");
    }
    rate = r->to_number<double>();
  }
  auto parsed = engine.parse_publish(body);
  if (auto* error = std::get_if<std::string>(&parsed)) {
    co_return engine.rest_error(400, "general_argument_invalid", *error);
  }
  auto request = std::get<PublishRequest>(std::move(parsed));
  request.payload.erase("seq");
  auto prepared = engine.prepare(request);
  if (auto* error = std::get_if<std::string>(&prepared)) {
    co_return engine.rest_error(400, "general_argument_invalid", *error);
  }
  const auto& event = std::get<PreparedEvent>(prepared);
  // event.payload is "{…}"; each frame's payload is {"seq":N,…}.
  const std::string_view rest = std::string_view(event.payload).substr(1);

  std::vector<std::shared_ptr<SocketPeer>> peers;
  for (auto& peer : engine.peers()) {
    if (auto p = std::dynamic_pointer_cast<SocketPeer>(peer))
      peers.push_back(std::move(p));
  }
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer pace(executor);
  const auto start = std::chrono::steady_clock::now();
  std::string payload;
  payload.reserve(rest.size() + 32 + kJsonPadding);
  std::string suffix;
  std::string timestamp;
  std::chrono::sys_time<std::chrono::milliseconds> stamped{};
  std::int64_t delivered = 0;
  std::array<char, 24> digits{};
  for (std::int64_t seq = 1; seq <= count; ++seq) {
    payload.assign(R"({"seq":)");
    const auto [end, conv] = std::to_chars(digits.data(), digits.data() + digits.size(), seq);
    payload.append(digits.data(), end);
    if (rest.size() > 1)
      payload += ',';
    payload += rest;
    const JsonBytes bytes{payload.data(), payload.size(), payload.capacity()};
    const auto now =
        std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now());
    if (now != stamped || timestamp.empty()) {
      stamped = now;
      timestamp = format_timestamp(now);
    }
    bool yielded = false;
    for (const auto& peer : peers) {
      if (peer->closed())
        continue;
      suffix.clear();
      if (!engine.route(peer->connection(), event, bytes, suffix))
        continue;
      std::string frame;
      build_event_frame(frame, event, timestamp, payload, suffix);
      peer->send(std::move(frame));
      ++delivered;
      if (peer->backlog() > kHighWater) {
        co_await peer->wait_backlog(kLowWater);
        yielded = true;
      }
    }
    if (rate > 0) {
      const auto due = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                   std::chrono::duration<double>(static_cast<double>(seq) / rate));
      if (std::chrono::steady_clock::now() < due) {
        pace.expires_at(due);
        co_await pace.async_wait(use_tuple);
        yielded = true;
      }
    }
    // Let the writers run even when nobody is slow.
    if (!yielded && seq % 64 == 0)
      co_await asio::post(executor, asio::use_awaitable);
  }
  const std::chrono::duration<double> seconds = std::chrono::steady_clock::now() - start;
  json::object answer;
  answer["sent"] = count;
  answer["delivered"] = delivered;
  answer["seconds"] = seconds.count();
  co_return HttpAnswer{200, json::serialize(answer), {}};
}

void close_stream(beast::tcp_stream& stream) {
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

void close_stream(beast::ssl_stream<beast::tcp_stream>& stream) {
  beast::error_code ignored;
  beast::get_lowest_layer(stream).socket().shutdown(tcp::socket::shutdown_both, ignored);
}

// One HTTP connection: keep-alive requests, or an upgrade to a realtime WebSocket.
template <class Stream>
asio::awaitable<void> serve(Stream stream, beast::flat_buffer buffer, Engine& engine,
                            tcp::endpoint peer) {
  const bool loopback = is_loopback(peer);
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(kMaxRequestHead);
    parser.body_limit(8 * 1024 * 1024);
    beast::get_lowest_layer(stream).expires_after(std::chrono::minutes(5));
    auto [ec, n] = co_await http::async_read(stream, buffer, parser, use_tuple);
    if (ec == http::error::header_limit) {
      // Swoole answers a request head it cannot hold with a bare 400 and closes.
      http::response<http::string_body> refused{http::status::bad_request, 11};
      refused.set(http::field::server, "appwrite-emulator");
      refused.keep_alive(false);
      refused.prepare_payload();
      co_await http::async_write(stream, refused, use_tuple);
      // Read what the client is still sending, so that closing with unread bytes does not
      // reset the connection before the client has read the answer.
      close_stream(stream);
      beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(2));
      std::array<char, 4096> discard;
      for (;;) {
        auto [rec, ignored] = co_await stream.async_read_some(asio::buffer(discard), use_tuple);
        if (rec)
          break;
      }
      co_return;
    }
    if (ec)
      break;
    beast::get_lowest_layer(stream).expires_never();
    auto request = parser.release();

    if (websocket::is_upgrade(request)) {
      const std::string_view target = request.target();
      if (target.starts_with("/v1/realtime") && engine.realtime_down()) {
        // What Appwrite's proxy answers while the realtime service is down (POST
        // /_emulator/outage); REST keeps answering.
        http::response<http::string_body> refused{http::status::service_unavailable,
                                                  request.version()};
        refused.set(http::field::server, "appwrite-emulator");
        refused.set(http::field::content_type, "text/plain");
        refused.keep_alive(false);
        refused.body() = "Service Unavailable";
        refused.prepare_payload();
        co_await http::async_write(stream, refused, use_tuple);
        break;
      }
      if (target.starts_with("/v1/realtime")) {
        auto ws =
            std::make_shared<WsPeer<Stream>>(websocket::stream<Stream>(std::move(stream)), engine);
        co_await ws->run(std::move(request), endpoint_text(peer));
        co_return;
      }
    }

    HttpRequest req;
    req.method = std::string(request.method_string());
    req.target = std::string(request.target());
    req.headers = lowercase_headers(request);
    req.body = std::move(request.body());
    req.loopback = loopback;
    HttpAnswer answer;
    if (req.method == "POST" && req.target.starts_with("/_emulator/stream") &&
        (req.target.size() == 17 || req.target[17] == '?')) {
      if (!loopback) {
        answer =
            engine.rest_error(403, "general_access_forbidden",
                              "The emulator's control endpoints accept loopback clients only.");
      } else {
        answer = co_await run_stream(engine, req.body);
      }
    } else {
      answer = engine.handle_http(req);
    }

    http::response<http::string_body> response{static_cast<http::status>(answer.status),
                                               request.version()};
    response.set(http::field::server, "appwrite-emulator");
    response.set(http::field::content_type, "application/json");
    response.set("X-Appwrite-Version", engine.version());
    for (const auto& [name, value] : answer.headers)
      response.set(name, value);
    response.keep_alive(request.keep_alive());
    response.body() = std::move(answer.body);
    response.prepare_payload();
    auto [wec, written] = co_await http::async_write(stream, response, use_tuple);
    if (wec || !response.keep_alive())
      break;
  }
  close_stream(stream);
}

asio::awaitable<void> handle_connection(tcp::socket socket, Engine& engine,
                                        std::shared_ptr<asio::ssl::context> tls) {
  beast::error_code ec;
  const auto peer = socket.remote_endpoint(ec);
  if (ec)
    co_return;
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  if (tls) {
    stream.expires_after(std::chrono::seconds(30));
    auto [dec, is_tls] = co_await beast::async_detect_ssl(stream, buffer, use_tuple);
    if (dec)
      co_return;
    if (is_tls) {
      beast::ssl_stream<beast::tcp_stream> secure(std::move(stream), *tls);
      auto [hec, used] =
          co_await secure.async_handshake(asio::ssl::stream_base::server, buffer.data(), use_tuple);
      if (hec)
        co_return;
      buffer.consume(used);
      co_await serve(std::move(secure), std::move(buffer), engine, peer);
      co_return;
    }
  }
  co_await serve(std::move(stream), std::move(buffer), engine, peer);
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, Engine& engine,
                                  std::shared_ptr<asio::ssl::context> tls) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open())
        co_return;
      log::warn("emulator", "accept failed", {{"error", ec.message()}});
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    asio::co_spawn(acceptor.get_executor(), handle_connection(std::move(socket), engine, tls),
                   asio::detached);
  }
}

}  // namespace

Server::Server(asio::io_context& io, Engine& engine, std::shared_ptr<asio::ssl::context> tls)
    : io_(io), engine_(engine), tls_(std::move(tls)), acceptor_(io) {}

tcp::endpoint Server::listen(const tcp::endpoint& where) {
  acceptor_.open(where.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(where);
  acceptor_.listen(asio::socket_base::max_listen_connections);
  return acceptor_.local_endpoint();
}

void Server::start() {
  asio::co_spawn(io_, accept_loop(acceptor_, engine_, tls_), asio::detached);
}

void Server::stop() {
  beast::error_code ignored;
  acceptor_.close(ignored);
}

}  // namespace sluice::emulator
