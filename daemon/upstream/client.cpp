#include "daemon/upstream/client.hpp"

#include <algorithm>
#include <deque>
#include <random>

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "core/log.hpp"
#include "daemon/upstream/decoder.hpp"
#include "daemon/upstream/realtime_url.hpp"
#include "net/buffered_tcp_stream.hpp"
#include "net/transport.hpp"

namespace sluice::upstream {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

// Server frames are not bound by Appwrite's 64,000-byte inbound limit; a row with large
// columns can exceed it. Anything past this is treated as a broken connection.
constexpr std::size_t kMaxFrameBytes = 16u << 20;

// The disconnect reason label for a read or write error.
std::string classify(const error_code& ec) {
  if (ec == websocket::error::closed)
    return "server_closed";  // the server sent a close frame
  if (ec == asio::error::eof || ec == asio::error::connection_reset ||
      ec == asio::error::broken_pipe || ec == beast::http::error::end_of_stream ||
      ec == asio::ssl::error::stream_truncated) {
    return "dropped";  // TCP closed without a close frame (what Appwrite does on errors)
  }
  if (ec == websocket::error::message_too_big || ec == websocket::error::buffer_overflow) {
    return "message_too_big";
  }
  if (ec == beast::error::timeout)
    return "timeout";
  if (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor)
    return "closed_locally";
  return "error";
}

Session::Time time_now() {
  return {Clock::now(), std::chrono::system_clock::now()};
}

// The request head's bytes besides the URL: the headers sluice sets, and an allowance for the
// request line and the WebSocket headers Beast adds.
std::size_t head_bytes(const Headers& headers, const net::Endpoint& realtime) {
  constexpr std::size_t kAllowance = 512;
  std::size_t n = kAllowance + realtime.host_header().size();
  for (const auto& [k, v] : headers)
    n += k.size() + v.size() + 4;
  return n;
}

// A disconnect label in words, for a failure that left no error of its own.
std::string describe_end(std::string_view reason) {
  if (reason == "dropped")
    return "the server closed the TCP connection without a close frame";
  if (reason == "heartbeat")
    return "no frame from the server within the heartbeat interval";
  if (reason == "no_answer")
    return "the server did not answer a subscribe or unsubscribe in time";
  if (reason == "connect")
    return "the connection could not be opened";
  return std::string(reason);
}

std::string mode_name(Session::Mode mode) {
  return mode == Session::Mode::url ? "url" : "message";
}

}  // namespace

// One connection, from the first connect attempt to its end: what the read loop, the write
// loop and the session's timer share. Lives in run()'s frame; `current` (the client's link_)
// points at it for exactly that long, however the frame ends (an exception included).
struct RealtimeClient::Link {
  Link(const asio::any_io_executor& ex, Link*& current, std::function<void()> close)
      : wake(ex, Clock::time_point::max()),
        timer(ex, Clock::time_point::max()),
        close_socket(std::move(close)),
        current_(current) {
    current_ = this;
  }
  ~Link() { current_ = nullptr; }
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  std::deque<std::string> outbox;
  asio::steady_timer wake;   // the writer sleeps on it until there is output
  asio::steady_timer timer;  // the session's timer
  std::function<void()> close_socket;
  bool over = false;

  void send(std::string message) {
    outbox.push_back(std::move(message));
    wake.cancel();
  }
  // Closing the socket directly fails every pending read, write and handshake at once, whatever
  // Beast is waiting for.
  void finish() {
    if (over)
      return;
    over = true;
    wake.cancel();
    timer.cancel();
    close_socket();
  }

 private:
  Link*& current_;
};

std::string_view state_name(RealtimeClient::State s) {
  switch (s) {
    case RealtimeClient::State::idle:
      return "idle";
    case RealtimeClient::State::connecting:
      return "connecting";
    case RealtimeClient::State::connected:
      return "connected";
    case RealtimeClient::State::subscribed:
      return "subscribed";
    case RealtimeClient::State::backing_off:
      return "backing_off";
    case RealtimeClient::State::stopped:
      return "stopped";
  }
  return "idle";
}

RealtimeClient::RealtimeClient(asio::any_io_executor loop, const config::AppwriteConfig& config,
                               Subscription subscription, Metrics& metrics, EventHandler on_event)
    : loop_(std::move(loop)),
      config_(config),
      metrics_(metrics),
      on_event_(std::move(on_event)),
      policy_(config.reconnect, std::random_device{}()),
      decoder_(config.project),
      wanted_(std::move(subscription)),
      session_(config.heartbeat, SubscriptionPlan{}, metrics),
      backoff_timer_(loop_),
      done_timer_(loop_) {
  status_.channels = wanted_.channels;
  done_timer_.expires_at(Clock::time_point::max());
}

RealtimeClient::~RealtimeClient() = default;

bool RealtimeClient::init(std::string& error) {
  auto rest = net::parse_endpoint(config_.endpoint);
  auto realtime = net::parse_endpoint(config_.realtime_endpoint);
  if (!rest || !realtime) {
    error = "appwrite endpoint is not an http(s) or ws(s) URL";
    return false;
  }
  rest_endpoint_ = *rest;
  realtime_endpoint_ = *realtime;
  if (rest_endpoint_.secure || realtime_endpoint_.secure) {
    tls_ = net::make_client_tls_context(config_.tls, error);
    if (!tls_)
      return false;
    if (!config_.tls.verify) {
      log::warn("upstream", "TLS certificate verification is OFF (appwrite.tls.verify: false)");
    }
  }
  credentials_ = make_credentials(config_, RestTarget{rest_endpoint_, tls_, config_.tls.verify});
  return true;
}

void RealtimeClient::start() {
  running_ = true;
  asio::co_spawn(loop_, run(), [this](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        log::error("upstream", "realtime client stopped by an exception", {{"error", ex.what()}});
      }
    }
    running_ = false;
    set_state(State::stopped);
    done_timer_.cancel();
  });
}

void RealtimeClient::stop() {
  const auto t = time_now();
  auto actions = session_.stop(t);
  apply(actions, t);
}

asio::awaitable<void> RealtimeClient::stopped() {
  if (!running_)
    co_return;
  co_await done_timer_.async_wait(use_tuple);
}

void RealtimeClient::update_subscription(Subscription next) {
  wanted_ = std::move(next);
  const auto mode = status_.mode == "message" ? Session::Mode::message : Session::Mode::url;
  if (!plan(mode, header_bytes_)) {
    // Kept subscribed as it is; a new connection would meet the same limit.
    log::error("upstream", "the new routes' subscription does not fit; keeping the old one",
               {{"error", status_.last_error}});
  }
}

bool RealtimeClient::plan(Session::Mode mode, std::size_t header_bytes) {
  auto next =
      plan_subscription(wanted_, mode, {&realtime_endpoint_, config_.project, header_bytes});
  if (!next.error.empty()) {
    note_error(next.error);
    return false;
  }
  const auto widening = describe_widening(next);
  if (widening != logged_widening_) {
    logged_widening_ = widening;
    if (!widening.empty()) {
      log::warn("upstream", "subscribing to broader channels; the routes filter what arrives",
                {{"widened", widening}, {"why", next.why}});
    }
  }
  status_.channels = next.channels;
  status_.frames = next.frames.size();
  status_.largest_frame_bytes = 0;
  for (const auto& f : next.frames)
    status_.largest_frame_bytes = std::max(status_.largest_frame_bytes, f.size());
  status_.url_bytes = next.url_bytes;
  status_.widened.clear();
  for (const auto& w : next.widened)
    status_.widened.push_back(
        fmt::format("{} ({} channels, e.g. {})", w.to, w.from.size(), w.from.front()));
  const auto t = time_now();
  auto actions = session_.update_subscription(std::move(next), t);
  apply(actions, t);
  return true;
}

void RealtimeClient::stop_after_pong() {
  const auto t = time_now();
  auto actions = session_.stop_after_pong(t);
  apply(actions, t);
}

void RealtimeClient::apply(Session::Actions& actions, Session::Time now) {
  if (actions.error)
    note_error(*actions.error);
  if (actions.connected) {
    ++status_.connects;
    policy_.on_connected(now.steady);
    set_state(State::connected);
  }
  if (link_ != nullptr) {
    for (auto& message : actions.send)
      link_->send(std::move(message));
  }
  if (actions.gap && on_gap_)
    on_gap_(actions.gap->from, actions.gap->to);
  if (actions.unsubscribed)
    set_state(State::connected);  // open until the closing handshake ends, but not subscribed
  if (actions.subscribed) {
    set_state(State::subscribed);
    status_.last_error.clear();
    log::info(
        "upstream", "subscribed",
        {{"mode", status_.mode}, {"channels", std::to_string(session_.plan().channels.size())}});
    if (on_subscribed_)
      on_subscribed_();
  }
  if (link_ != nullptr && actions.arm_timer)
    link_->timer.expires_at(*actions.arm_timer);
  if (actions.close) {
    // The connection, or the one being opened; between two connections, the wait for the next
    // (the session closes without a connection only when it stops).
    if (link_ != nullptr)
      link_->finish();
    backoff_timer_.cancel();
  }
}

void RealtimeClient::set_state(State state) {
  if (state != status_.state)
    log::debug("upstream", "state", {{"state", std::string(state_name(state))}});
  status_.state = state;
  status_.since = std::chrono::system_clock::now();
  if (report_connected_)
    metrics_.upstream_connected().Set(state == State::subscribed ? 1 : 0);
}

void RealtimeClient::note_error(std::string error) {
  status_.last_error = std::move(error);
}

asio::awaitable<Session::Mode> RealtimeClient::choose_mode() {
  using Subscribe = config::AppwriteConfig::Subscribe;
  if (config_.subscribe == Subscribe::url)
    co_return Session::Mode::url;
  if (config_.subscribe == Subscribe::message)
    co_return Session::Mode::message;
  Headers headers;  // locals: GCC 12 miscompiles class temporaries inside co_await
  headers.emplace_back("X-Appwrite-Project", config_.project);
  const std::string no_body;
  const auto r = co_await rest_call(
      rest_endpoint_, tls_.get(), config_.tls.verify, beast::http::verb::get, "/health/version",
      headers, no_body, std::clamp(config_.heartbeat, milliseconds(1000), milliseconds(10000)));
  if (r.status == 200) {
    error_code ec;
    const auto v = boost::json::parse(r.body, ec);
    const auto* field = !ec && v.is_object() ? v.as_object().if_contains("version") : nullptr;
    if (field != nullptr && field->is_string()) {
      status_.server_version = std::string(field->as_string());
      if (const auto version = parse_version(status_.server_version)) {
        co_return supports_subscribe_messages(*version) ? Session::Mode::message
                                                        : Session::Mode::url;
      }
    }
  }
  // URL subscriptions work on every server since 1.0, so they are the safe fallback.
  log::warn("upstream", "could not read the server version; subscribing in the URL",
            {{"status", std::to_string(r.status)}, {"error", r.error}});
  co_return Session::Mode::url;
}

template <class Ws>
asio::awaitable<void> RealtimeClient::talk(Ws& ws, Link& link, Session::Mode mode) {
  ws.read_message_max(kMaxFrameBytes);
  // Beast answers a close frame inside the read and then waits for the peer's TCP close, which
  // may never come: the session hears of the close frame here, at once.
  ws.control_callback([this, &ws](websocket::frame_type kind, beast::string_view) {
    if (kind != websocket::frame_type::close)
      return;
    const auto& reason = ws.reason().reason;
    const auto t = time_now();
    auto actions = session_.close_received(ws.reason().code,
                                           std::string_view(reason.data(), reason.size()), t);
    apply(actions, t);
  });
  {
    const auto t = time_now();
    auto actions = session_.opened(mode, credentials_->kind(), t);
    apply(actions, t);
  }

  // Reads until the socket fails, which a close action makes it do at once.
  auto reader = [&]() -> asio::awaitable<void> {
    // Frames are read into one flat_buffer kept across frames, then copied once into an
    // exactly sized string: growing a std::string through asio::dynamic_buffer zero-fills
    // every byte Beast prepares (4% of the daemon's instructions, issue #10).
    beast::flat_buffer incoming;
    for (;;) {
      incoming.clear();
      if (incoming.capacity() > kFrameRetainBytes)
        incoming.shrink_to_fit();  // one huge frame must not pin its memory for good
      auto [ec, n] = co_await ws.async_read(incoming, use_tuple);
      const auto t = time_now();
      if (ec) {
        auto actions = session_.transport_failed(classify(ec), t);
        apply(actions, t);
        co_return;
      }
      std::string frame;
      frame.reserve(incoming.size() + kJsonPadding);
      frame.append(static_cast<const char*>(incoming.data().data()), incoming.size());
      auto actions =
          session_.received(decoder_.decode(std::move(frame), !ws.got_text(), t.steady, t.wall), t);
      apply(actions, t);
      if (actions.deliver) {
        co_await on_event_(std::move(actions.deliver));
        const auto taken = time_now();
        auto resumed = session_.event_taken(taken);
        apply(resumed, taken);
      }
    }
  };

  auto writer = [&]() -> asio::awaitable<void> {
    while (!link.over) {
      if (link.outbox.empty()) {
        co_await link.wake.async_wait(use_tuple);  // new output or the end
        continue;
      }
      auto [ec, n] = co_await ws.async_write(asio::buffer(link.outbox.front()), use_tuple);
      if (ec) {
        const auto t = time_now();
        auto actions = session_.transport_failed(classify(ec), t);
        apply(actions, t);
        co_return;
      }
      link.outbox.pop_front();
    }
  };

  // The session's clock runs apart from both loops: a read or write that never completes cannot
  // keep the heartbeat from ending the connection.
  auto timer = [&]() -> asio::awaitable<void> {
    while (!link.over) {
      auto [ec] = co_await link.timer.async_wait(use_tuple);
      if (link.over || ec)
        continue;  // the end, or re-armed (which cancels the wait)
      link.timer.expires_at(Clock::time_point::max());  // until the session arms it again
      const auto t = time_now();
      auto actions = session_.timer_expired(t);
      apply(actions, t);
    }
  };

  using namespace asio::experimental::awaitable_operators;
  co_await (reader() && writer() && timer());
}

asio::awaitable<void> RealtimeClient::run() {
  const auto timeout = std::clamp(config_.heartbeat, milliseconds(1000), milliseconds(30000));
  while (!session_.stopping()) {
    set_state(State::connecting);
    const auto mode = co_await choose_mode();
    status_.mode = mode_name(mode);
    std::string failure;  // the disconnect label when the attempt ends before the session
    std::string error;
    bool unhealable = false;  // retrying soon cannot help: wait reconnect.max
    auto headers = co_await credentials_->headers(error);
    if (session_.stopping())
      break;
    if (headers)
      header_bytes_ = head_bytes(*headers, realtime_endpoint_);
    if (!headers) {
      failure = "credentials";
    } else if (!plan(mode, header_bytes_)) {
      failure = "subscription_too_large";
      unhealable = true;
    } else {
      const auto target = realtime_target(
          realtime_endpoint_, config_.project,
          mode == Session::Mode::url ? session_.plan().channels : std::vector<std::string>{});
      auto decorate = [&headers](websocket::request_type& req) {
        req.set(beast::http::field::user_agent, "sluice/" SLUICE_VERSION);
        for (const auto& [k, v] : *headers)
          req.set(k, v);
      };
      auto open = [&](auto& ws) -> asio::awaitable<error_code> {
        if (auto ec = co_await net::connect_tcp(beast::get_lowest_layer(ws), realtime_endpoint_,
                                                timeout)) {
          co_return ec;
        }
        if constexpr (!std::is_same_v<std::decay_t<decltype(ws)>,
                                      websocket::stream<net::BufferedTcpStream>>) {
          if (auto ec = co_await net::handshake_tls(ws.next_layer(), realtime_endpoint_,
                                                    config_.tls.verify, timeout)) {
            co_return ec;
          }
        }
        websocket::stream_base::timeout opt{timeout, websocket::stream_base::none(), false};
        ws.set_option(opt);
        ws.set_option(websocket::stream_base::decorator(decorate));
        websocket::response_type res;
        const std::string host = realtime_endpoint_.host_header();
        auto [ec] = co_await ws.async_handshake(res, host, target, use_tuple);
        if (ec == websocket::error::upgrade_declined) {
          error = fmt::format("the server declined the WebSocket upgrade (HTTP {} {})",
                              res.result_int(), std::string_view(res.reason()));
          // 4xx: the request itself is refused (too large, unknown path, forbidden); the same
          // request will be refused again.
          unhealable = res.result_int() >= 400 && res.result_int() < 500;
        }
        co_return ec;
      };
      auto connection = [&](auto& ws) -> asio::awaitable<void> {
        Link link(loop_, link_, [&ws] {
          error_code ignored;
          beast::get_lowest_layer(ws).socket().shutdown(asio::socket_base::shutdown_both, ignored);
          beast::get_lowest_layer(ws).socket().close(ignored);
        });
        const auto ec = co_await open(ws);
        if (ec) {
          if (error.empty())
            error = net::describe(ec);
          failure = "connect";
          co_return;
        }
        set_state(State::connected);
        log::debug("upstream", "websocket open", {{"mode", status_.mode}});
        co_await talk(ws, link, mode);
      };
      if (realtime_endpoint_.secure) {
        websocket::stream<net::TlsStream> ws(loop_, *tls_);
        co_await connection(ws);
      } else {
        websocket::stream<net::BufferedTcpStream> ws(loop_);
        co_await connection(ws);
      }
    }

    const auto t = time_now();
    const auto end = session_.ended(failure, t);
    if (!error.empty())
      note_error(error);
    if (end.auth_rejected)
      credentials_->rejected();
    if (session_.stopping())
      break;

    const bool wait_max = end.fatal || end.auth_rejected || end.rate_limited || unhealable;
    const milliseconds delay = end.reached_connected
                                   ? policy_.on_disconnected(t.steady, wait_max)
                                   : policy_.on_connect_failed(t.steady, wait_max);
    set_state(State::backing_off);
    if (status_.last_error.empty())
      note_error(describe_end(end.reason));
    log::warn("upstream", end.reached_connected ? "disconnected" : "connection failed",
              {{"reason", end.reason},
               {"cause", status_.last_error},
               {"retry_in_ms", std::to_string(delay.count())}});
    backoff_timer_.expires_after(delay);
    co_await backoff_timer_.async_wait(use_tuple);
  }
  session_.finished(time_now());
  log::info("upstream", "stopped");
}

}  // namespace sluice::upstream
