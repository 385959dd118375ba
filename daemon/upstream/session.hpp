#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/event.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "daemon/upstream/decoder.hpp"
#include "daemon/upstream/subscription_plan.hpp"

namespace sluice::upstream {

// The policy of the realtime subscription, across all its connections, as a plain state
// machine: inputs are what happened (a connection opened, a frame decoded, a timer expired, the
// read side took an event, a command), each with the time; outputs are the Actions the shell
// carries out. It decides the message-mode subscribe bookkeeping (and the unsubscribe diff once
// the latest subscribe is confirmed), the heartbeat rule, what an error frame or a close frame
// means, when the session stops, and the gap between two subscriptions; it paces what it sends
// within Appwrite's message budget and gives every subscribe and unsubscribe an answer deadline;
// it counts the upstream
// metrics and logs the lines those decisions trigger. No sockets, no timers, no clock of its own,
// so tests drive it frame by frame.
//
// Owned by the RealtimeClient, which does the I/O; used on the daemon's event loop only.
class Session {
 public:
  using Clock = std::chrono::steady_clock;
  using Mode = SubscribeMode;

  // The time of an input: the steady clock measures intervals, the wall clock dates gaps.
  struct Time {
    Clock::time_point steady;
    std::chrono::system_clock::time_point wall;
  };

  // A window, from the loss of a subscription to the next, in which events may have been
  // missed upstream.
  struct Gap {
    std::chrono::system_clock::time_point from;
    std::chrono::system_clock::time_point to;
  };

  // What the shell does after an input, in the order of the fields.
  struct Actions {
    std::optional<std::string> error;  // note for /status (the client's last error)
    bool connected = false;            // the server's `connected` frame: the connection is up
    std::vector<std::string> send;     // text frames to write, in this order
    std::optional<Gap> gap;            // reported as the subscription came back
    bool subscribed = false;           // became subscribed
    bool unsubscribed = false;         // lost the subscription; the connection is still closing
    EventPtr deliver;                  // hand on, then call event_taken() (reading pauses)
    std::optional<Clock::time_point> arm_timer;  // call timer_expired() at (not before) this time
    // Close the connection (or the one being opened) now, whatever its reads and writes are
    // doing: the sluice_upstream_disconnects_total label the session ends with.
    std::optional<std::string> close;
  };

  // How a connection, or an attempt at one, ended: what the shell's reconnect policy needs.
  // An error frame tells how a connection ended only when nothing else happened between it and
  // the end (no other frame, no ping): Appwrite closes right after an error it means to end the
  // connection with, so an error followed by a healthy connection says nothing about a later
  // drop.
  struct End {
    std::string reason;  // the disconnect label ("server_error" after a 1008)
    bool fatal = false;  // ended by a 1008 error: a configuration problem on our side
    // Ended by a 401/403 error, or the server took the credentials for a guest's: they need
    // renewing.
    bool auth_rejected = false;
    bool rate_limited = false;  // ended by a 1013 error: too many connects or messages
    bool reached_connected = false;
  };

  // How long the closing handshake may take once the server sent a close frame: the peer should
  // close TCP as soon as it has our answer. A hung peer (or a lost FIN) is then cut off.
  static constexpr std::chrono::milliseconds kClosingDeadline{2000};
  // How long a subscribe or unsubscribe may wait for its `response`: past it the connection is
  // re-established rather than left connected and not subscribed.
  static constexpr std::chrono::milliseconds kAnswerDeadline{10000};

  Session(std::chrono::milliseconds heartbeat, SubscriptionPlan plan, Metrics& metrics);

  // The WebSocket handshake succeeded. `auth` names the credentials it presented (for logs).
  Actions opened(Mode mode, std::string_view auth, Time now);
  Actions received(DecodedFrame frame, Time now);
  // The server sent a close frame (the WebSocket layer answers it and waits for the TCP close):
  // the subscription is over at once, and the connection within kClosingDeadline.
  Actions close_received(std::uint16_t code, std::string_view reason, Time now);
  // The event from the last `deliver` has been taken: reading resumes.
  Actions event_taken(Time now);
  Actions timer_expired(Time now);
  // A read or write failed; `reason` is its disconnect label.
  Actions transport_failed(std::string_view reason, Time now);

  // Changes what the session listens to. In message mode on a connected connection: the plan's
  // `subscribe` frames upserting every entry now (paced within the message budget), and an
  // `unsubscribe` of what is gone once the server confirmed the latest subscribe. Otherwise the
  // next connection uses it.
  Actions update_subscription(SubscriptionPlan next, Time now);
  // Ends the session at the next pong, after a ping sent now; a stop() when no connection is
  // open.
  Actions stop_after_pong(Time now);
  Actions stop(Time now);

  // The connection (or the attempt) is over; `reason` labels it when nothing else did
  // (e.g. "connect", "credentials"). Counts connects and disconnects; starts a gap if it was
  // subscribed.
  End ended(std::string_view reason, Time now);
  // The client stops for good: the open gap, if any, is counted up to now.
  void finished(Time now);

  const SubscriptionPlan& plan() const { return plan_; }
  // How many subscribes and unsubscribes a connection may send per kMessageWindow: Appwrite's
  // budget less what the heartbeat's pings (and one stop ping) take.
  std::size_t control_budget() const { return control_budget_; }
  bool stopping() const { return stopping_; }
  bool subscribed() const { return subscribed_; }

 private:
  void close(Actions& a, std::string_view reason);
  void send_subscribe(Actions& a, Time now);
  // Queues a subscribe or unsubscribe and sends what the message budget allows now.
  void send_control(Actions& a, std::string message, bool subscribe, Time now);
  void flush(Actions& a, Time now);
  // Sets the timer to the earliest of the next ping, answer deadline and budget slot.
  void arm(Actions& a) const;
  void subscribe_answered(Actions& a, bool success, Time now);
  void became_subscribed(Actions& a, Time now);
  void on_error(Actions& a, const ErrorFrame& error);
  // `connected` with a null user: the credentials no longer stand for a user.
  void on_guest(Actions& a);
  // Counts the end of the connection (once) and, if it was subscribed, starts the gap; true
  // when that ended the subscription.
  bool lose(Time now);
  std::string end_reason() const;

  std::chrono::milliseconds heartbeat_;
  std::size_t control_budget_;
  SubscriptionPlan plan_;
  Metrics& metrics_;
  log::RateLimiter invalid_log_{5, std::chrono::seconds(10)};
  bool stopping_ = false;
  bool stop_after_pong_ = false;    // for the client's life: a reconnect still stops at a pong
  std::optional<Time> down_since_;  // the subscription was lost then (set only once it existed)

  // The current connection (or attempt), reset by ended().
  Mode mode_ = Mode::url;
  std::string auth_;
  bool open_ = false;
  bool closing_ = false;
  std::string reason_;
  std::optional<std::int64_t> last_error_;  // the error frame nothing has followed yet
  bool lost_ = false;                       // counted by lose()
  bool peer_closed_ = false;                // a close frame arrived
  Clock::time_point closing_deadline_{};
  bool reached_connected_ = false;
  bool guest_ = false;  // `connected` came with a null user
  bool subscribed_ = false;
  bool can_resubscribe_ = false;  // message mode, after `connected`
  // Message mode: every subscribe sent on this connection upserts the current entries; the ids
  // the server may hold are remembered, and once the LATEST subscribe is confirmed the ones no
  // longer wanted are unsubscribed (a reload that re-adds a route in between keeps it).
  std::vector<std::string> server_ids_;
  int unanswered_ = 0;  // subscribe frames sent or queued, not answered yet
  // Pacing: subscribes and unsubscribes wait in `pending_` until the window of the last
  // kMessageWindow has room; each sent one waits for its answer until its deadline.
  struct Pending {
    std::string message;
    bool subscribe;
  };
  struct Awaiting {
    bool subscribe;
    Clock::time_point deadline;
  };
  std::deque<Pending> pending_;
  std::deque<Clock::time_point> control_sent_;
  std::deque<Awaiting> awaiting_;
  // Heartbeat: no frame at all since the last ping (not even its pong) means the path is dead
  // even if the kernel still thinks the socket is open; silence while the read side is paused
  // is ours, not the server's.
  Clock::time_point last_frame_{};
  std::optional<Clock::time_point> last_ping_;
  std::uint64_t pings_sent_ = 0;  // on this connection, heartbeat and stop pings alike
  std::uint64_t pongs_received_ = 0;
  std::uint64_t stop_at_pong_ = 1;  // the pong that answers the stop_after_pong() ping
  Clock::time_point next_ping_{};
  bool paused_ = false;
};

}  // namespace sluice::upstream
