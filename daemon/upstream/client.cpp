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

#include "core/json.hpp"
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
// The read buffer keeps up to this much capacity between frames.
constexpr std::size_t kFrameRetain = 1u << 20;

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

// The disconnect reason label for a read or write error.
std::string classify(const error_code& ec) {
  if (ec == websocket::error::closed)
    return "closed";  // the server sent a close frame
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

std::vector<std::string> entry_ids(const Subscription& sub) {
  std::vector<std::string> ids;
  for (const auto& e : sub.entries)
    ids.push_back(e.id);
  return ids;
}

std::string subscribe_message(const Subscription& sub) {
  std::string m = R"({"type":"subscribe","data":[)";
  bool first = true;
  for (const auto& e : sub.entries) {
    if (!first)
      m += ',';
    first = false;
    m += R"({"subscriptionId":)";
    append_json_string(m, e.id);
    m += R"(,"channels":[)";
    for (std::size_t i = 0; i < e.channels.size(); ++i) {
      if (i > 0)
        m += ',';
      append_json_string(m, e.channels[i]);
    }
    m += R"(],"queries":[]})";
  }
  m += "]}";
  return m;
}

std::string unsubscribe_message(const std::vector<std::string>& ids) {
  std::string m = R"({"type":"unsubscribe","data":[)";
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i > 0)
      m += ',';
    m += R"({"subscriptionId":)";
    append_json_string(m, ids[i]);
    m += '}';
  }
  m += "]}";
  return m;
}

// State shared by the reader and the writer of one connection.
struct Link {
  explicit Link(const asio::any_io_executor& ex) : wake(ex) {}
  std::deque<std::string> outbox;
  asio::steady_timer wake;  // the writer sleeps on it until the next ping or new output
  Clock::time_point last_frame = Clock::now();
  bool paused = false;  // the reader waits for buffer space: silence is ours, not the server's
  bool over = false;
  std::function<void()> close;

  void send(std::string message) {
    outbox.push_back(std::move(message));
    wake.cancel();
  }
  void finish() {
    if (over)
      return;
    over = true;
    wake.cancel();
    close();
  }
};

}  // namespace

std::string subscription_id(std::string_view route_name) {
  return make_event_id(route_name).substr(0, 20);
}

RealtimeClient::RealtimeClient(asio::any_io_executor loop, const config::AppwriteConfig& config,
                               Subscription subscription, Metrics& metrics, EventHandler on_event)
    : loop_(std::move(loop)),
      config_(config),
      subscription_(std::move(subscription)),
      metrics_(metrics),
      on_event_(std::move(on_event)),
      policy_(config.reconnect, std::random_device{}()),
      backoff_timer_(loop_),
      done_timer_(loop_) {
  status_.channels = subscription_.channels;
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
  stopping_ = true;
  backoff_timer_.cancel();
  if (close_socket_)
    close_socket_();
}

asio::awaitable<void> RealtimeClient::stopped() {
  if (!running_)
    co_return;
  co_await done_timer_.async_wait(use_tuple);
}

void RealtimeClient::update_subscription(Subscription next) {
  subscription_ = std::move(next);
  status_.channels = subscription_.channels;
  if (resubscribe_) {
    // Subscribing first: the routes whose channels stay never have a window; what is gone is
    // unsubscribed once the server confirmed the latest subscribe.
    resubscribe_();
    log::info("upstream", "changing the subscription",
              {{"channels", std::to_string(subscription_.channels.size())}});
  }
  // Otherwise not connected in message mode: the next connect subscribes to the new set.
}

void RealtimeClient::stop_after_pong() {
  if (!ping_now_) {
    stop();
    return;
  }
  stop_after_pong_ = true;
  ping_now_();
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

asio::awaitable<std::string> RealtimeClient::choose_mode() {
  using Subscribe = config::AppwriteConfig::Subscribe;
  if (config_.subscribe == Subscribe::url)
    co_return "url";
  if (config_.subscribe == Subscribe::message)
    co_return "message";
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
        co_return supports_subscribe_messages(*version) ? "message" : "url";
      }
    }
  }
  // URL subscriptions work on every server since 1.0, so they are the safe fallback.
  log::warn("upstream", "could not read the server version; subscribing in the URL",
            {{"status", std::to_string(r.status)}, {"error", r.error}});
  co_return "url";
}

template <class Ws>
asio::awaitable<RealtimeClient::SessionEnd> RealtimeClient::talk(Ws& ws, const std::string& mode) {
  SessionEnd end;
  Link link(loop_);
  link.close = [&ws] {
    error_code ignored;
    beast::get_lowest_layer(ws).socket().shutdown(asio::socket_base::shutdown_both, ignored);
    beast::get_lowest_layer(ws).socket().close(ignored);
  };
  close_socket_ = [&link] { link.finish(); };
  // The hooks point into this frame: cleared however it ends (an exception included).
  struct ClearHooks {
    RealtimeClient& c;
    ~ClearHooks() {
      c.close_socket_ = nullptr;
      c.resubscribe_ = nullptr;
      c.ping_now_ = nullptr;
    }
  } clear_hooks{*this};
  ws.read_message_max(kMaxFrameBytes);

  auto became_subscribed = [&] {
    if (ever_subscribed_ && down_since_ != Clock::time_point{}) {
      metrics_.gap_seconds().Increment(
          std::chrono::duration<double>(Clock::now() - down_since_).count());
      if (on_gap_)
        on_gap_(down_since_wall_, std::chrono::system_clock::now());
    }
    down_since_ = {};
    ever_subscribed_ = true;
    set_state(State::subscribed);
    status_.last_error.clear();
    log::info("upstream", "subscribed",
              {{"mode", mode}, {"channels", std::to_string(subscription_.channels.size())}});
    if (on_subscribed_)
      on_subscribed_();
  };

  // Message mode: every subscribe sent on this connection upserts the current entries; the ids
  // the server may hold are remembered, and once the LATEST subscribe is confirmed the ones no
  // longer wanted are unsubscribed (a reload that re-adds a route in between keeps it).
  std::vector<std::string> server_ids;
  int unanswered = 0;
  auto send_subscribe = [&] {
    for (auto& id : entry_ids(subscription_)) {
      if (std::find(server_ids.begin(), server_ids.end(), id) == server_ids.end())
        server_ids.push_back(std::move(id));
    }
    ++unanswered;
    link.send(subscribe_message(subscription_));
  };
  auto subscribe_answered = [&](bool success) {
    unanswered = std::max(0, unanswered - 1);
    if (!success) {
      note_error("the server refused the subscription");
      log::error("upstream", "the server refused the subscription");
      return;
    }
    if (unanswered > 0)
      return;  // a newer subscribe is on its way: decide on its answer
    const auto wanted = entry_ids(subscription_);
    std::vector<std::string> gone;
    for (const auto& id : server_ids) {
      if (std::find(wanted.begin(), wanted.end(), id) == wanted.end())
        gone.push_back(id);
    }
    if (!gone.empty())
      link.send(unsubscribe_message(gone));
    server_ids = wanted;
    if (status_.state != State::subscribed)
      became_subscribed();
  };
  ping_now_ = [&link] { link.send(R"({"type":"ping"})"); };

  auto reader = [&]() -> asio::awaitable<void> {
    // Frames are read into one flat_buffer kept across frames, then copied once into an
    // exactly sized string: growing a std::string through asio::dynamic_buffer zero-fills
    // every byte Beast prepares (4% of the daemon's instructions, issue #10).
    beast::flat_buffer incoming;
    for (;;) {
      incoming.clear();
      if (incoming.capacity() > kFrameRetain)
        incoming.shrink_to_fit();  // one huge frame must not pin its memory for good
      auto [ec, n] = co_await ws.async_read(incoming, use_tuple);
      if (ec) {
        if (end.reason.empty())
          end.reason = stopping_ ? "stopping" : classify(ec);
        break;
      }
      const auto now = Clock::now();
      link.last_frame = now;
      std::string frame;
      frame.reserve(incoming.size() + kJsonPadding);
      frame.append(static_cast<const char*>(incoming.data().data()), incoming.size());
      DecodedFrame f =
          decoder_.decode(std::move(frame), !ws.got_text(), now, std::chrono::system_clock::now());
      switch (f.kind) {
        case FrameKind::event:
          metrics_.events_received().Increment();
          link.paused = true;
          co_await on_event_(std::move(f.event));
          link.paused = false;
          link.last_frame = Clock::now();
          break;
        case FrameKind::connected:
          end.reached_connected = true;
          metrics_.connects(true).Increment();
          ++status_.connects;
          policy_.on_connected(now);
          if (mode == "url") {
            became_subscribed();
          } else {
            set_state(State::connected);
            resubscribe_ = send_subscribe;
            send_subscribe();
          }
          break;
        case FrameKind::response:
          if (f.response.to == "subscribe")
            subscribe_answered(f.response.success);
          break;
        case FrameKind::error: {
          const auto text = fmt::format("server error {}: {}", f.error.code, f.error.message);
          note_error(text);
          if (f.error.code == 1008) {
            // Unknown project, bad origin, missing channels: retrying soon cannot help.
            end.fatal = true;
            log::error("upstream", "configuration problem reported by the server",
                       {{"code", "1008"}, {"message", f.error.message}});
          } else if (f.error.code == 401 || f.error.code == 403) {
            end.auth_rejected = true;
            log::error("upstream", "the server rejected our credentials",
                       {{"code", std::to_string(f.error.code)},
                        {"message", f.error.message},
                        {"auth", std::string(credentials_->kind())}});
          } else {
            log::warn("upstream", "server error",
                      {{"code", std::to_string(f.error.code)}, {"message", f.error.message}});
          }
          break;
        }
        case FrameKind::pong:
          // A switch-over closes this connection once the server answered a ping sent after
          // the new one was subscribed: every event queued before that ping has been read.
          if (stop_after_pong_) {
            stopping_ = true;
            link.finish();
          }
          break;
        case FrameKind::invalid:
          metrics_.frames_invalid(f.invalid_reason).Increment();
          if (invalid_log_.allow()) {
            log::warn("upstream", "skipped a frame that could not be decoded",
                      {{"reason", std::string(f.invalid_reason)},
                       {"suppressed", std::to_string(invalid_log_.take_suppressed())}});
          }
          break;
      }
    }
    link.finish();
  };

  auto writer = [&]() -> asio::awaitable<void> {
    const auto interval = config_.heartbeat;
    auto next_ping = Clock::now() + interval;
    Clock::time_point last_ping{};
    while (!link.over) {
      while (!link.outbox.empty() && !link.over) {
        auto [ec, n] = co_await ws.async_write(asio::buffer(link.outbox.front()), use_tuple);
        if (ec) {
          if (end.reason.empty())
            end.reason = stopping_ ? "stopping" : classify(ec);
          link.finish();
          co_return;
        }
        link.outbox.pop_front();
      }
      link.wake.expires_at(next_ping);
      co_await link.wake.async_wait(use_tuple);
      if (link.over)
        break;
      const auto now = Clock::now();
      if (now < next_ping)
        continue;  // woken for new output
      // No frame at all since the last ping (not even its pong): the path is dead even if the
      // kernel still thinks the socket is open.
      if (last_ping != Clock::time_point{} && !link.paused && link.last_frame < last_ping) {
        if (end.reason.empty())
          end.reason = "heartbeat";
        log::warn("upstream", "no frame within the heartbeat interval; reconnecting",
                  {{"heartbeat_ms", std::to_string(interval.count())}});
        link.finish();
        break;
      }
      link.outbox.emplace_back(R"({"type":"ping"})");
      last_ping = now;
      next_ping = now + interval;
    }
  };

  using namespace asio::experimental::awaitable_operators;
  co_await (reader() && writer());
  co_return end;
}

asio::awaitable<void> RealtimeClient::run() {
  const auto timeout = std::clamp(config_.heartbeat, milliseconds(1000), milliseconds(30000));
  while (!stopping_) {
    set_state(State::connecting);
    const std::string mode = co_await choose_mode();
    status_.mode = mode;
    SessionEnd end;
    std::string error;
    auto headers = co_await credentials_->headers(error);
    if (stopping_)
      break;
    if (!headers) {
      end.reason = "credentials";
    } else {
      const auto target =
          realtime_target(realtime_endpoint_, config_.project,
                          mode == "url" ? subscription_.channels : std::vector<std::string>{});
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
          error =
              fmt::format("the server declined the WebSocket upgrade (HTTP {})", res.result_int());
        }
        co_return ec;
      };
      auto session = [&](auto& ws) -> asio::awaitable<void> {
        close_socket_ = [&ws] {
          error_code ignored;
          beast::get_lowest_layer(ws).socket().close(ignored);
        };
        const auto ec = co_await open(ws);
        close_socket_ = nullptr;
        if (ec) {
          if (error.empty())
            error = net::describe(ec);
          end.reason = stopping_ ? "stopping" : "connect";
          co_return;
        }
        set_state(State::connected);
        log::debug("upstream", "websocket open", {{"mode", mode}});
        end = co_await talk(ws, mode);
      };
      if (realtime_endpoint_.secure) {
        websocket::stream<net::TlsStream> ws(loop_, *tls_);
        co_await session(ws);
      } else {
        websocket::stream<net::BufferedTcpStream> ws(loop_);
        co_await session(ws);
      }
    }

    const auto now = Clock::now();
    const bool was_subscribed = status_.state == State::subscribed;
    if (was_subscribed) {
      down_since_ = now;
      down_since_wall_ = std::chrono::system_clock::now();
    }
    if (!end.reached_connected)
      metrics_.connects(false).Increment();
    if (end.reached_connected || was_subscribed) {
      metrics_.disconnects(end.fatal ? "server_error" : end.reason).Increment();
    }
    if (!error.empty())
      note_error(error);
    if (end.auth_rejected)
      credentials_->rejected();
    if (stopping_)
      break;

    const milliseconds delay = end.reached_connected
                                   ? policy_.on_disconnected(now, end.fatal || end.auth_rejected)
                                   : policy_.on_connect_failed(now, end.fatal || end.auth_rejected);
    set_state(State::backing_off);
    log::info("upstream", end.reached_connected ? "disconnected" : "connection failed",
              {{"reason", end.fatal ? "server_error" : end.reason},
               {"error", status_.last_error},
               {"retry_in_ms", std::to_string(delay.count())}});
    backoff_timer_.expires_after(delay);
    co_await backoff_timer_.async_wait(use_tuple);
  }
  if (down_since_ != Clock::time_point{} && ever_subscribed_) {
    metrics_.gap_seconds().Increment(
        std::chrono::duration<double>(Clock::now() - down_since_).count());
    down_since_ = {};
  }
  log::info("upstream", "stopped");
}

}  // namespace sluice::upstream
