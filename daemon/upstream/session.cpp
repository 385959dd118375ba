#include "daemon/upstream/session.hpp"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "core/json.hpp"

namespace sluice::upstream {

namespace {

constexpr std::string_view kPing = R"({"type":"ping"})";

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

double seconds_between(Session::Clock::time_point from, Session::Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

}  // namespace

std::string subscription_id(std::string_view route_name) {
  return make_event_id(route_name).substr(0, 20);
}

Session::Session(std::chrono::milliseconds heartbeat, Subscription subscription, Metrics& metrics)
    : heartbeat_(heartbeat), subscription_(std::move(subscription)), metrics_(metrics) {}

Session::Actions Session::opened(Mode mode, std::string_view auth, Time now) {
  mode_ = mode;
  auth_ = std::string(auth);
  open_ = true;
  last_frame_ = now.steady;
  last_ping_.reset();
  next_ping_ = now.steady + heartbeat_;
  paused_ = false;
  pings_sent_ = 0;
  pongs_received_ = 0;
  stop_at_pong_ = 1;  // a stop asked for before this connection: its first pong will do
  Actions a;
  a.arm_timer = next_ping_;
  return a;
}

Session::Actions Session::received(DecodedFrame frame, Time now) {
  Actions a;
  last_frame_ = now.steady;
  last_error_.reset();  // an error frame sets it again below
  switch (frame.kind) {
    case FrameKind::event:
      metrics_.events_received().Increment();
      paused_ = true;
      a.deliver = std::move(frame.event);
      break;
    case FrameKind::connected:
      if (!frame.connected.authenticated) {
        on_guest(a);  // a failed attempt, not a connection
        break;
      }
      reached_connected_ = true;
      metrics_.connects(true).Increment();
      a.connected = true;
      if (mode_ == Mode::url) {
        became_subscribed(a, now);
      } else {
        can_resubscribe_ = true;
        send_subscribe(a);
      }
      break;
    case FrameKind::response:
      if (frame.response.to == "subscribe")
        subscribe_answered(a, frame.response.success, now);
      break;
    case FrameKind::error:
      on_error(a, frame.error);
      break;
    case FrameKind::pong:
      // A switch-over closes this connection once the server answered the ping sent after the
      // new one was subscribed: every event queued before that ping has been read. Pongs carry
      // no id but come in order, so an earlier heartbeat ping's pong is counted, not taken
      // for it.
      ++pongs_received_;
      if (stop_after_pong_ && pongs_received_ >= stop_at_pong_) {
        stopping_ = true;
        close(a, "stopping");
      }
      break;
    case FrameKind::invalid:
      metrics_.frames_invalid(frame.invalid_reason).Increment();
      if (invalid_log_.allow(now.steady)) {
        log::warn("upstream", "skipped a frame that could not be decoded",
                  {{"reason", std::string(frame.invalid_reason)},
                   {"suppressed", std::to_string(invalid_log_.take_suppressed())}});
      }
      break;
  }
  return a;
}

Session::Actions Session::close_received(std::uint16_t code, std::string_view reason, Time now) {
  Actions a;
  if (!open_ || closing_ || peer_closed_)
    return a;
  peer_closed_ = true;
  can_resubscribe_ = false;  // a reload's subscribe goes to the next connection
  if (reason_.empty())
    reason_ = "server_closed";
  log::warn("upstream", "the server closed the connection",
            {{"code", std::to_string(code)}, {"reason", std::string(reason)}});
  a.unsubscribed = lose(now);
  closing_deadline_ = now.steady + kClosingDeadline;
  a.arm_timer = closing_deadline_;
  return a;
}

Session::Actions Session::event_taken(Time now) {
  paused_ = false;
  last_frame_ = now.steady;
  return {};
}

Session::Actions Session::timer_expired(Time now) {
  Actions a;
  if (!open_ || closing_)
    return a;
  if (peer_closed_) {
    if (now.steady < closing_deadline_)
      return a;
    log::warn("upstream", "the server did not close the connection after its close frame",
              {{"deadline_ms", std::to_string(kClosingDeadline.count())}});
    close(a, reason_);
    return a;
  }
  if (now.steady < next_ping_)
    return a;
  last_error_.reset();  // the connection outlived the error frame by a heartbeat interval
  if (last_ping_ && !paused_ && last_frame_ < *last_ping_) {
    log::warn("upstream", "no frame within the heartbeat interval; reconnecting",
              {{"heartbeat_ms", std::to_string(heartbeat_.count())}});
    close(a, "heartbeat");
    return a;
  }
  a.send.emplace_back(kPing);
  ++pings_sent_;
  last_ping_ = now.steady;
  next_ping_ = now.steady + heartbeat_;
  a.arm_timer = next_ping_;
  return a;
}

Session::Actions Session::transport_failed(std::string_view reason, Time) {
  Actions a;
  close(a, stopping_ ? "stopping" : reason);
  return a;
}

Session::Actions Session::update_subscription(Subscription next, Time) {
  Actions a;
  subscription_ = std::move(next);
  if (open_ && can_resubscribe_) {
    // Subscribing first: the routes whose channels stay never have a window; what is gone is
    // unsubscribed once the server confirmed the latest subscribe.
    send_subscribe(a);
    log::info("upstream", "changing the subscription",
              {{"channels", std::to_string(subscription_.channels.size())}});
  }
  return a;
}

Session::Actions Session::stop_after_pong(Time now) {
  if (!open_ || peer_closed_)
    return stop(now);
  stop_after_pong_ = true;
  stop_at_pong_ = ++pings_sent_;
  Actions a;
  a.send.emplace_back(kPing);
  return a;
}

Session::Actions Session::stop(Time) {
  stopping_ = true;
  Actions a;
  close(a, "stopping");
  return a;
}

Session::End Session::ended(std::string_view reason, Time now) {
  if (reason_.empty())
    reason_ = stopping_ ? "stopping" : std::string(reason);
  End end;
  end.reason = end_reason();
  end.fatal = last_error_ == 1008;
  end.auth_rejected = last_error_ == 401 || last_error_ == 403 || guest_;
  end.reached_connected = reached_connected_;
  lose(now);

  open_ = false;
  closing_ = false;
  reason_.clear();
  last_error_.reset();
  lost_ = false;
  peer_closed_ = false;
  reached_connected_ = false;
  guest_ = false;
  subscribed_ = false;
  can_resubscribe_ = false;
  server_ids_.clear();
  unanswered_ = 0;
  last_ping_.reset();
  paused_ = false;
  return end;
}

void Session::finished(Time now) {
  if (down_since_)
    metrics_.gap_seconds().Increment(seconds_between(down_since_->steady, now.steady));
  down_since_.reset();
}

bool Session::lose(Time now) {
  if (lost_)
    return false;
  lost_ = true;
  if (reached_connected_)
    metrics_.disconnects(end_reason()).Increment();
  else
    metrics_.connects(false).Increment();
  if (!subscribed_)
    return false;
  subscribed_ = false;
  down_since_ = now;
  return true;
}

std::string Session::end_reason() const {
  return last_error_ == 1008 ? "server_error" : reason_;
}

void Session::close(Actions& a, std::string_view reason) {
  if (closing_)
    return;
  closing_ = true;
  if (reason_.empty())
    reason_ = std::string(reason);
  a.close = reason_;
}

void Session::send_subscribe(Actions& a) {
  for (auto& id : entry_ids(subscription_)) {
    if (std::find(server_ids_.begin(), server_ids_.end(), id) == server_ids_.end())
      server_ids_.push_back(std::move(id));
  }
  ++unanswered_;
  a.send.push_back(subscribe_message(subscription_));
}

void Session::subscribe_answered(Actions& a, bool success, Time now) {
  unanswered_ = std::max(0, unanswered_ - 1);
  if (!success) {
    a.error = "the server refused the subscription";
    log::error("upstream", "the server refused the subscription");
    return;
  }
  if (unanswered_ > 0)
    return;  // a newer subscribe is on its way: decide on its answer
  auto wanted = entry_ids(subscription_);
  std::vector<std::string> gone;
  for (const auto& id : server_ids_) {
    if (std::find(wanted.begin(), wanted.end(), id) == wanted.end())
      gone.push_back(id);
  }
  if (!gone.empty())
    a.send.push_back(unsubscribe_message(gone));
  server_ids_ = std::move(wanted);
  if (!subscribed_)
    became_subscribed(a, now);
}

void Session::became_subscribed(Actions& a, Time now) {
  if (down_since_) {
    metrics_.gap_seconds().Increment(seconds_between(down_since_->steady, now.steady));
    a.gap = Gap{down_since_->wall, now.wall};
  }
  down_since_.reset();
  subscribed_ = true;
  a.subscribed = true;
}

void Session::on_guest(Actions& a) {
  // Appwrite makes a connection whose session was revoked or expired (or whose JWT's session
  // was) a guest without any error: subscribed that way, sluice would see public events only.
  guest_ = true;
  metrics_.auth_failures("guest").Increment();
  a.error = fmt::format(
      "the server accepted the connection as a guest: the {} credentials no longer stand for a "
      "user (a revoked or expired session); renewing them",
      auth_);
  log::warn("upstream",
            "the server treated our credentials as a guest (connected.user is null); "
            "renewing them and reconnecting",
            {{"auth", auth_}});
  close(a, "guest");
}

void Session::on_error(Actions& a, const ErrorFrame& error) {
  a.error = fmt::format("server error {}: {}", error.code, error.message);
  last_error_ = error.code;
  if (error.code == 1008) {
    // Unknown project, bad origin, missing channels: retrying soon cannot help (if the
    // connection ends with it, see End).
    log::error("upstream", "configuration problem reported by the server",
               {{"code", "1008"}, {"message", error.message}});
  } else if (error.code == 401 || error.code == 403) {
    metrics_.auth_failures("rejected").Increment();
    log::error("upstream", "the server rejected our credentials",
               {{"code", std::to_string(error.code)}, {"message", error.message}, {"auth", auth_}});
  } else {
    log::warn("upstream", "server error",
              {{"code", std::to_string(error.code)}, {"message", error.message}});
  }
}

}  // namespace sluice::upstream
