#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "config/config.hpp"
#include "core/event.hpp"
#include "core/metrics.hpp"
#include "daemon/upstream/credentials.hpp"
#include "daemon/upstream/decoder.hpp"
#include "daemon/upstream/reconnect_policy.hpp"
#include "daemon/upstream/session.hpp"
#include "net/endpoint.hpp"

namespace sluice::upstream {

// Holds the one authenticated Realtime subscription: connects (TCP or TLS, no Origin header),
// authenticates at handshake, subscribes (URL or messages), pings every `heartbeat`, treats a
// silent interval as a dead connection, and reconnects with the ReconnectPolicy's backoff.
// Decoded events go to `on_event`, which the client awaits before reading the next frame, so a
// full buffer in `block` mode stops reading the socket (TCP backpressure upstream).
//
// A thin shell around a Session, which makes the decisions: per connection the client picks
// the mode, gets credentials, opens TCP/TLS and the WebSocket, runs one read loop, one write
// loop and the Session's timer, feeds the Session and carries out its actions; between
// connections it waits out the ReconnectPolicy's backoff. A "close" action closes the socket
// itself, so it never waits for a pending read or write: a server that sends a close frame and
// keeps the TCP connection open is cut off at the session's closing deadline, and one that
// stalls anything else meets the heartbeat.
//
// Owned by the App; runs entirely on the daemon's event loop (single-threaded executor).
class RealtimeClient {
 public:
  enum class State { idle, connecting, connected, subscribed, backing_off, stopped };
  using EventHandler = std::function<boost::asio::awaitable<void>(EventPtr)>;

  struct Status {
    State state = State::idle;
    std::string mode;                   // "url" or "message" once known
    std::string server_version;         // from /health/version when probed
    std::vector<std::string> channels;  // what the server is asked for (after widening)
    std::string last_error;
    // The subscription plan of the current (or next) connection.
    std::size_t frames = 0;               // message mode: subscribe frames
    std::size_t largest_frame_bytes = 0;  // message mode
    std::size_t url_bytes = 0;            // URL mode: the request head, estimated
    std::vector<std::string> widened;     // "rows (1000 channels, e.g. …)", one per broad channel
    std::uint64_t connects = 0;           // successful connects since start
    std::chrono::system_clock::time_point since{};  // when `state` was entered
  };

  RealtimeClient(boost::asio::any_io_executor loop, const config::AppwriteConfig& config,
                 Subscription subscription, Metrics& metrics, EventHandler on_event);
  ~RealtimeClient();

  // Fails (returns false, sets `error`) only for local set-up problems: a bad endpoint or TLS
  // files that cannot be loaded.
  bool init(std::string& error);
  void start();
  // Stops reading and closes the socket; `stopped()` completes once the session has ended.
  void stop();
  boost::asio::awaitable<void> stopped();

  // Changes what the client listens to, without a window in which events are lost. In message
  // mode on an open connection: one `subscribe` upserting every entry, then, once the server
  // confirmed it, an `unsubscribe` of the entries that are gone. Otherwise the next connect
  // uses it. URL mode cannot change an open connection: the App opens a second client instead.
  void update_subscription(Subscription next);
  // Stops once the server has answered a ping sent now, so that every event it queued on this
  // connection before is read first (the URL-mode switch-over on reload). Falls back to
  // stop() when no connection is open.
  void stop_after_pong();
  // Whether this client's state feeds sluice_upstream_connected: only the App's primary
  // client does, so a second connection coming up during a reload does not flip the gauge.
  void report_connected(bool on) {
    report_connected_ = on;
    if (on)
      metrics_.upstream_connected().Set(subscribed() ? 1 : 0);
  }
  // Called every time the client becomes subscribed (the App's switch-over on reload waits
  // for it). Set before start().
  void on_subscribed(std::function<void()> callback) { on_subscribed_ = std::move(callback); }
  // Called after every gap: a window, from the loss of a subscription to the next, in which
  // events may have been missed upstream. Set before start().
  using GapHandler = std::function<void(std::chrono::system_clock::time_point from,
                                        std::chrono::system_clock::time_point to)>;
  void on_gap(GapHandler callback) { on_gap_ = std::move(callback); }

  const Status& status() const { return status_; }
  bool subscribed() const { return status_.state == State::subscribed; }

 private:
  struct Link;

  boost::asio::awaitable<void> run();
  boost::asio::awaitable<Session::Mode> choose_mode();
  template <class Ws>
  boost::asio::awaitable<void> talk(Ws& ws, Link& link, Session::Mode mode);
  // Carries out what the session decided (its frames to send are moved out), except `deliver`,
  // which only the read loop can await.
  void apply(Session::Actions& actions, Session::Time now);
  void set_state(State state);
  void note_error(std::string error);
  // Plans what the routes want for `mode` against the request head `header_bytes` leaves;
  // logs a widening the first time it appears. False (and the cause noted) when nothing fits.
  bool plan(Session::Mode mode, std::size_t header_bytes);

  boost::asio::any_io_executor loop_;
  config::AppwriteConfig config_;
  Metrics& metrics_;
  EventHandler on_event_;
  net::Endpoint rest_endpoint_;
  net::Endpoint realtime_endpoint_;
  std::shared_ptr<boost::asio::ssl::context> tls_;
  std::unique_ptr<Credentials> credentials_;
  ReconnectPolicy policy_;
  FrameDecoder decoder_;
  Subscription wanted_;           // what the routes ask for; the session holds its plan
  std::size_t header_bytes_ = 0;  // of the last connection's request head, URL excluded
  std::string logged_widening_;
  Session session_;
  Status status_;
  bool running_ = false;
  boost::asio::steady_timer backoff_timer_;
  boost::asio::steady_timer done_timer_;  // cancelled when run() returns: stopped() waits on it
  Link* link_ = nullptr;                  // the connection being opened or open
  bool report_connected_ = true;
  std::function<void()> on_subscribed_;
  GapHandler on_gap_;
};

// The state's name, as logs and /status show it.
std::string_view state_name(RealtimeClient::State state);

}  // namespace sluice::upstream
