#include "daemon/upstream/session.hpp"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

namespace sluice::upstream {

namespace {

constexpr std::string_view kPing = R"({"type":"ping"})";

std::vector<std::string> entry_ids(const SubscriptionPlan& plan) {
  std::vector<std::string> ids;
  for (const auto& e : plan.entries)
    ids.push_back(e.id);
  return ids;
}

// Subscribes and unsubscribes a connection may send per window: what Appwrite allows less the
// heartbeat's pings (one more for a window's edges) and a stop ping. A heartbeat so short that
// its pings alone use the budget still leaves a few.
std::size_t control_budget_for(std::chrono::milliseconds heartbeat) {
  const auto window = std::chrono::duration_cast<std::chrono::milliseconds>(kMessageWindow);
  const auto beat = std::max(heartbeat, std::chrono::milliseconds(1));
  const auto pings = static_cast<std::size_t>((window.count() + beat.count() - 1) / beat.count());
  const std::size_t reserved = pings + 2;
  constexpr std::size_t kFloor = 4;
  return reserved + kFloor > kMessagesPerWindow ? kFloor : kMessagesPerWindow - reserved;
}

double seconds_between(Session::Clock::time_point from, Session::Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

}  // namespace

Session::Session(std::chrono::milliseconds heartbeat, SubscriptionPlan plan, Metrics& metrics)
    : heartbeat_(heartbeat),
      control_budget_(control_budget_for(heartbeat)),
      plan_(std::move(plan)),
      metrics_(metrics) {}

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
        send_subscribe(a, now);
        arm(a);
      }
      break;
    case FrameKind::response: {
      const bool subscribe = frame.response.to == "subscribe";
      if (!subscribe && frame.response.to != "unsubscribe")
        break;
      const auto it = std::find_if(awaiting_.begin(), awaiting_.end(),
                                   [&](const Awaiting& w) { return w.subscribe == subscribe; });
      if (it != awaiting_.end())
        awaiting_.erase(it);
      if (subscribe)
        subscribe_answered(a, frame.response.success, now);
      arm(a);
      break;
    }
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
  for (const auto& w : awaiting_) {
    if (w.deadline > now.steady)
      continue;
    const auto what = w.subscribe ? "subscribe" : "unsubscribe";
    a.error =
        fmt::format("no answer to a {} within {} s", what,
                    std::chrono::duration_cast<std::chrono::seconds>(kAnswerDeadline).count());
    log::warn("upstream", "the server did not answer; reconnecting",
              {{"request", what}, {"deadline_ms", std::to_string(kAnswerDeadline.count())}});
    close(a, "no_answer");
    return a;
  }
  flush(a, now);
  if (now.steady >= next_ping_) {
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
  }
  arm(a);
  return a;
}

Session::Actions Session::transport_failed(std::string_view reason, Time) {
  Actions a;
  close(a, stopping_ ? "stopping" : reason);
  return a;
}

Session::Actions Session::update_subscription(SubscriptionPlan next, Time now) {
  Actions a;
  plan_ = std::move(next);
  if (open_ && can_resubscribe_) {
    // Subscribing first: the routes whose channels stay never have a window; what is gone is
    // unsubscribed once the server confirmed the latest subscribe.
    send_subscribe(a, now);
    arm(a);
    log::info("upstream", "changing the subscription",
              {{"channels", std::to_string(plan_.channels.size())},
               {"frames", std::to_string(plan_.frames.size())}});
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
  end.rate_limited = last_error_ == 1013;
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
  pending_.clear();
  control_sent_.clear();
  awaiting_.clear();
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

void Session::send_subscribe(Actions& a, Time now) {
  for (auto& id : entry_ids(plan_)) {
    if (std::find(server_ids_.begin(), server_ids_.end(), id) == server_ids_.end())
      server_ids_.push_back(std::move(id));
  }
  for (const auto& frame : plan_.frames) {
    ++unanswered_;
    send_control(a, frame, true, now);
  }
}

void Session::send_control(Actions& a, std::string message, bool subscribe, Time now) {
  pending_.push_back({std::move(message), subscribe});
  flush(a, now);
}

void Session::flush(Actions& a, Time now) {
  while (!control_sent_.empty() && control_sent_.front() + kMessageWindow <= now.steady)
    control_sent_.pop_front();
  while (!pending_.empty() && control_sent_.size() < control_budget_) {
    a.send.push_back(std::move(pending_.front().message));
    awaiting_.push_back({pending_.front().subscribe, now.steady + kAnswerDeadline});
    pending_.pop_front();
    control_sent_.push_back(now.steady);
  }
}

void Session::arm(Actions& a) const {
  auto wake = next_ping_;
  for (const auto& w : awaiting_)
    wake = std::min(wake, w.deadline);
  if (!pending_.empty() && !control_sent_.empty())
    wake = std::min(wake, control_sent_.front() + kMessageWindow);
  a.arm_timer = wake;
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
  auto wanted = entry_ids(plan_);
  std::vector<std::string> gone;
  for (const auto& id : server_ids_) {
    if (std::find(wanted.begin(), wanted.end(), id) == wanted.end())
      gone.push_back(id);
  }
  for (auto& frame : unsubscribe_frames(gone))
    send_control(a, std::move(frame), false, now);
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
