#include "daemon/upstream/session.hpp"

#include <memory>

#include <gtest/gtest.h>

namespace sluice::upstream {
namespace {

using namespace std::chrono_literals;
using Mode = Session::Mode;
using Time = Session::Time;

constexpr auto kHeartbeat = 20s;
const Session::Clock::time_point t0 = Session::Clock::time_point{} + 1h;
const std::chrono::system_clock::time_point wall0 =
    std::chrono::system_clock::time_point{} + std::chrono::hours(24 * 365 * 56);
const std::string kPing = R"({"type":"ping"})";

// The time `offset` after the start of the test, on both clocks.
Time at(std::chrono::milliseconds offset) {
  return {t0 + offset, wall0 + offset};
}

DecodedFrame frame(FrameKind kind) {
  DecodedFrame f;
  f.kind = kind;
  f.connected.authenticated = true;  // `connected` for the configured user, unless a test says
  return f;
}

DecodedFrame response(bool success, std::string to = "subscribe") {
  auto f = frame(FrameKind::response);
  f.response.to = std::move(to);
  f.response.success = success;
  return f;
}

DecodedFrame error(std::int64_t code, std::string message) {
  auto f = frame(FrameKind::error);
  f.error.code = code;
  f.error.message = std::move(message);
  return f;
}

DecodedFrame event() {
  auto f = frame(FrameKind::event);
  f.event = std::make_shared<const Event>();
  return f;
}

DecodedFrame invalid(std::string_view reason) {
  auto f = frame(FrameKind::invalid);
  f.invalid_reason = reason;
  return f;
}

// One route per id, each on its own channel, planned for message mode.
SubscriptionPlan routes(std::initializer_list<std::string> ids) {
  Subscription s;
  for (const auto& id : ids) {
    s.channels.push_back("ch-" + id);
    s.entries.push_back({id, {"ch-" + id}, {}});
  }
  static const net::Endpoint realtime{false, "h", "80", "/v1/realtime"};
  return plan_subscription(s, SubscribeMode::message, {&realtime, "p", 0});
}

std::string subscribe_text(std::initializer_list<std::string> ids) {
  std::string m = R"({"type":"subscribe","data":[)";
  bool first = true;
  for (const auto& id : ids) {
    if (!first)
      m += ',';
    first = false;
    m += R"({"subscriptionId":")" + id + R"(","channels":["ch-)" + id + R"("],"queries":[]})";
  }
  return m + "]}";
}

class SessionTest : public ::testing::Test {
 protected:
  // A session whose connection has been opened at t0.
  Session& open(Mode mode, SubscriptionPlan subscription = routes({"a", "b"})) {
    session_ = std::make_unique<Session>(kHeartbeat, std::move(subscription), metrics_);
    const auto a = session_->opened(mode, "session", at(0s));
    EXPECT_EQ(a.arm_timer, t0 + kHeartbeat);
    return *session_;
  }
  // A session subscribed at t0 in `mode`.
  Session& subscribed(Mode mode, SubscriptionPlan subscription = routes({"a", "b"})) {
    auto& s = open(mode, std::move(subscription));
    s.received(frame(FrameKind::connected), at(0s));
    if (mode == Mode::message)
      s.received(response(true), at(0s));
    EXPECT_TRUE(s.subscribed());
    return s;
  }
  double disconnects(std::string_view reason) { return metrics_.disconnects(reason).Value(); }

  Metrics metrics_;
  std::unique_ptr<Session> session_;
};

TEST_F(SessionTest, UrlModeIsSubscribedAtConnected) {
  auto& s = open(Mode::url);
  EXPECT_FALSE(s.subscribed());
  const auto a = s.received(frame(FrameKind::connected), at(1s));
  EXPECT_TRUE(a.connected);
  EXPECT_TRUE(a.subscribed);
  EXPECT_TRUE(a.send.empty());  // the channels were in the URL
  EXPECT_FALSE(a.gap);          // the first subscription follows no loss
  EXPECT_TRUE(s.subscribed());
  EXPECT_EQ(metrics_.connects(true).Value(), 1);
}

TEST_F(SessionTest, GuestConnectedIsAnAuthenticationFailureThatRenewsTheCredentials) {
  for (const auto mode : {Mode::url, Mode::message}) {
    auto& s = open(mode);
    auto guest = frame(FrameKind::connected);
    guest.connected.authenticated = false;  // Appwrite's `user: null`: a revoked or expired session
    const auto a = s.received(std::move(guest), at(1s));
    EXPECT_FALSE(a.connected);
    EXPECT_FALSE(a.subscribed);
    EXPECT_TRUE(a.send.empty());  // nothing is subscribed as a guest
    EXPECT_EQ(a.close, "guest");
    ASSERT_TRUE(a.error);
    EXPECT_NE(a.error->find("guest"), std::string::npos);
    EXPECT_NE(a.error->find("session"), std::string::npos);  // names the credentials' form
    const auto end = s.ended("", at(1s));
    EXPECT_EQ(end.reason, "guest");
    EXPECT_TRUE(end.auth_rejected);  // the shell renews the credentials and backs off
    EXPECT_FALSE(end.reached_connected);
    EXPECT_FALSE(s.subscribed());
  }
  EXPECT_EQ(metrics_.auth_failures("guest").Value(), 2);
  EXPECT_EQ(metrics_.connects(false).Value(), 2);
  EXPECT_EQ(metrics_.connects(true).Value(), 0);

  // The next connection, as the user again, is a connection like any other.
  auto& s = open(Mode::url);
  EXPECT_TRUE(s.received(frame(FrameKind::connected), at(3s)).subscribed);
  EXPECT_FALSE(s.ended("dropped", at(4s)).auth_rejected);
}

TEST_F(SessionTest, MessageModeSendsOneSubscribeAndIsSubscribedWhenItSucceeds) {
  auto& s = open(Mode::message);
  auto a = s.received(frame(FrameKind::connected), at(1s));
  EXPECT_TRUE(a.connected);
  EXPECT_FALSE(a.subscribed);
  EXPECT_EQ(a.send, std::vector<std::string>{subscribe_text({"a", "b"})});
  // Responses to anything but a subscribe decide nothing.
  a = s.received(response(true, "unsubscribe"), at(1s));
  EXPECT_FALSE(a.subscribed);
  a = s.received(response(true), at(2s));
  EXPECT_TRUE(a.subscribed);
  EXPECT_TRUE(a.send.empty());
  EXPECT_TRUE(s.subscribed());
}

TEST_F(SessionTest, RefusedSubscribeNotesTheErrorAndDoesNotSubscribe) {
  auto& s = open(Mode::message);
  s.received(frame(FrameKind::connected), at(1s));
  const auto a = s.received(response(false), at(2s));
  EXPECT_EQ(a.error, "the server refused the subscription");
  EXPECT_FALSE(a.subscribed);
  EXPECT_FALSE(s.subscribed());
  EXPECT_FALSE(a.close);  // the connection stays: a reload may fix the routes
}

TEST_F(SessionTest, UnsubscribesWhatIsGoneOnlyOnceTheLatestSubscribeIsAnswered) {
  auto& s = subscribed(Mode::message, routes({"a", "b", "c"}));
  auto a = s.update_subscription(routes({"a", "d"}), at(1s));
  EXPECT_EQ(a.send, std::vector<std::string>{subscribe_text({"a", "d"})});
  a = s.update_subscription(routes({"a", "c", "d"}), at(2s));  // c comes back
  EXPECT_EQ(a.send, std::vector<std::string>{subscribe_text({"a", "c", "d"})});
  EXPECT_EQ(s.plan().channels, (std::vector<std::string>{"ch-a", "ch-c", "ch-d"}));

  a = s.received(response(true), at(3s));  // the first update's answer: a newer one is pending
  EXPECT_TRUE(a.send.empty());
  a = s.received(response(true), at(4s));
  EXPECT_EQ(a.send,
            std::vector<std::string>{R"({"type":"unsubscribe","data":[{"subscriptionId":"b"}]})"});
  EXPECT_FALSE(a.subscribed);  // it already was

  // What the server was told to drop is not unsubscribed twice.
  a = s.update_subscription(routes({"a", "c", "d"}), at(5s));
  a = s.received(response(true), at(6s));
  EXPECT_TRUE(a.send.empty());
}

TEST_F(SessionTest, AReloadThatReAddsARouteBeforeTheAnswerKeepsIt) {
  auto& s = subscribed(Mode::message);
  s.update_subscription(routes({"a"}), at(1s));
  s.update_subscription(routes({"a", "b"}), at(2s));
  EXPECT_TRUE(s.received(response(true), at(3s)).send.empty());
  EXPECT_TRUE(s.received(response(true), at(4s)).send.empty());
}

TEST_F(SessionTest, ARefusedUpdateUnsubscribesNothing) {
  auto& s = subscribed(Mode::message);
  s.update_subscription(routes({"a"}), at(1s));
  const auto a = s.received(response(false), at(2s));
  EXPECT_EQ(a.error, "the server refused the subscription");
  EXPECT_TRUE(a.send.empty());
  EXPECT_TRUE(s.subscribed());
}

TEST_F(SessionTest, UpdateWithoutAConnectedMessageModeConnectionWaitsForTheNextOne) {
  // URL mode: the channels of an open connection are fixed.
  auto& url = subscribed(Mode::url);
  EXPECT_TRUE(url.update_subscription(routes({"c"}), at(1s)).send.empty());
  EXPECT_EQ(url.plan().channels, std::vector<std::string>{"ch-c"});

  // Message mode before `connected`: the subscribe at `connected` carries the new set.
  auto& message = open(Mode::message);
  EXPECT_TRUE(message.update_subscription(routes({"c"}), at(1s)).send.empty());
  const auto a = message.received(frame(FrameKind::connected), at(2s));
  EXPECT_EQ(a.send, std::vector<std::string>{subscribe_text({"c"})});
}

TEST_F(SessionTest, PingsEveryHeartbeat) {
  auto& s = subscribed(Mode::url);
  EXPECT_TRUE(s.timer_expired(at(19s)).send.empty());  // early: nothing to do yet
  for (int i = 1; i <= 3; ++i) {
    s.received(frame(FrameKind::pong), at(kHeartbeat * i - 1s));
    const auto a = s.timer_expired(at(kHeartbeat * i));
    EXPECT_EQ(a.send, std::vector<std::string>{kPing});
    EXPECT_EQ(a.arm_timer, t0 + kHeartbeat * (i + 1));
    EXPECT_FALSE(a.close);
  }
}

TEST_F(SessionTest, AnyFrameAnswersThePing) {
  auto& s = subscribed(Mode::url);
  s.timer_expired(at(20s));
  s.received(invalid("json"), at(30s));
  EXPECT_EQ(s.timer_expired(at(40s)).send, std::vector<std::string>{kPing});
}

TEST_F(SessionTest, NoFrameSinceTheLastPingEndsTheSessionWithHeartbeat) {
  auto& s = subscribed(Mode::url);
  s.timer_expired(at(20s));
  const auto a = s.timer_expired(at(40s));
  EXPECT_EQ(a.close, "heartbeat");
  EXPECT_TRUE(a.send.empty());
  EXPECT_FALSE(a.arm_timer);
  // The failing socket that follows does not relabel it.
  EXPECT_FALSE(s.transport_failed("closed_locally", at(40s)).close);
  const auto end = s.ended("", at(40s));
  EXPECT_EQ(end.reason, "heartbeat");
  EXPECT_TRUE(end.reached_connected);
  EXPECT_FALSE(end.fatal);
  EXPECT_EQ(disconnects("heartbeat"), 1);
  EXPECT_FALSE(s.stopping());  // the client reconnects
}

TEST_F(SessionTest, SilenceWhileTheReadSideIsPausedIsNotTheServers) {
  auto& s = subscribed(Mode::url);
  EXPECT_TRUE(s.received(event(), at(10s)).deliver);
  s.timer_expired(at(20s));
  auto a = s.timer_expired(at(40s));  // still handing the event on: no verdict, keep pinging
  EXPECT_FALSE(a.close);
  EXPECT_EQ(a.send, std::vector<std::string>{kPing});
  s.event_taken(at(45s));  // reading resumes: the time counts as a frame
  a = s.timer_expired(at(60s));
  EXPECT_FALSE(a.close);
  EXPECT_EQ(s.timer_expired(at(80s)).close, "heartbeat");
}

TEST_F(SessionTest, EventsAreCountedAndHandedOn) {
  auto& s = subscribed(Mode::url);
  auto f = event();
  const auto sent = f.event;
  const auto a = s.received(std::move(f), at(1s));
  EXPECT_EQ(a.deliver, sent);
  EXPECT_EQ(metrics_.events_received().Value(), 1);
}

TEST_F(SessionTest, InvalidFramesAreCountedByReasonAndSkipped) {
  auto& s = subscribed(Mode::url);
  for (int i = 0; i < 20; ++i) {  // past the log's rate limit: every one still counts
    const auto a = s.received(invalid("json"), at(1s));
    EXPECT_FALSE(a.close);
    EXPECT_FALSE(a.deliver);
  }
  s.received(invalid("binary"), at(2s));
  EXPECT_EQ(metrics_.frames_invalid("json").Value(), 20);
  EXPECT_EQ(metrics_.frames_invalid("binary").Value(), 1);
}

TEST_F(SessionTest, StopAfterPongClosesAtTheNextPong) {
  auto& s = subscribed(Mode::url);
  auto a = s.stop_after_pong(at(1s));
  EXPECT_EQ(a.send, std::vector<std::string>{kPing});
  EXPECT_FALSE(a.close);
  EXPECT_FALSE(s.stopping());
  // Events the server queued before the pong are still handed on.
  EXPECT_TRUE(s.received(event(), at(2s)).deliver);
  a = s.received(frame(FrameKind::pong), at(3s));
  EXPECT_EQ(a.close, "stopping");
  EXPECT_TRUE(s.stopping());
  EXPECT_EQ(s.ended("", at(3s)).reason, "stopping");
  EXPECT_EQ(disconnects("stopping"), 1);
}

TEST_F(SessionTest, StopAfterPongWaitsForThePongOfItsOwnPing) {
  auto& s = subscribed(Mode::url);
  // A heartbeat ping is still unanswered when the switch-over asks to stop.
  EXPECT_EQ(s.timer_expired(at(kHeartbeat)).send, std::vector<std::string>{kPing});
  EXPECT_EQ(s.stop_after_pong(at(kHeartbeat + 1s)).send, std::vector<std::string>{kPing});
  // The heartbeat's pong: what the server queued before the stop ping may still follow it.
  EXPECT_FALSE(s.received(frame(FrameKind::pong), at(kHeartbeat + 2s)).close);
  EXPECT_TRUE(s.received(event(), at(kHeartbeat + 2s)).deliver);
  EXPECT_EQ(s.received(frame(FrameKind::pong), at(kHeartbeat + 3s)).close, "stopping");
}

TEST_F(SessionTest, StopAfterPongWithoutAnOpenConnectionStops) {
  Session s(kHeartbeat, routes({"a"}), metrics_);
  const auto a = s.stop_after_pong(at(0s));
  EXPECT_EQ(a.close, "stopping");
  EXPECT_TRUE(a.send.empty());
  EXPECT_TRUE(s.stopping());
}

TEST_F(SessionTest, StopClosesAndLabelsTheEndStopping) {
  auto& s = subscribed(Mode::url);
  EXPECT_EQ(s.stop(at(1s)).close, "stopping");
  EXPECT_TRUE(s.stopping());
  EXPECT_FALSE(s.transport_failed("closed_locally", at(1s)).close);
  EXPECT_TRUE(s.timer_expired(at(20s)).send.empty());  // no ping on a closing connection
  EXPECT_EQ(s.ended("", at(1s)).reason, "stopping");
}

TEST_F(SessionTest, AFailedReadOrWriteClosesWithItsLabel) {
  auto& s = subscribed(Mode::url);
  EXPECT_EQ(s.transport_failed("dropped", at(1s)).close, "dropped");
  const auto end = s.ended("", at(1s));
  EXPECT_EQ(end.reason, "dropped");
  EXPECT_EQ(disconnects("dropped"), 1);
}

TEST_F(SessionTest, Error1008IsAConfigurationProblem) {
  auto& s = open(Mode::url);
  s.received(frame(FrameKind::connected), at(0s));
  const auto a = s.received(error(1008, "Missing channels"), at(1s));
  EXPECT_EQ(a.error, "server error 1008: Missing channels");
  EXPECT_FALSE(a.close);  // the server closes; the session only remembers what it meant
  s.transport_failed("dropped", at(1s));
  const auto end = s.ended("", at(1s));
  EXPECT_TRUE(end.fatal);
  EXPECT_FALSE(end.auth_rejected);
  EXPECT_EQ(end.reason, "server_error");
  EXPECT_EQ(disconnects("server_error"), 1);
  EXPECT_EQ(disconnects("dropped"), 0);
}

TEST_F(SessionTest, Errors401And403MarkTheCredentialsRejected) {
  for (const std::int64_t code : {401, 403}) {
    auto& s = open(Mode::url);
    const auto a = s.received(error(code, "Unauthorized"), at(1s));
    EXPECT_EQ(a.error, "server error " + std::to_string(code) + ": Unauthorized");
    s.transport_failed("dropped", at(1s));
    const auto end = s.ended("", at(1s));
    EXPECT_TRUE(end.auth_rejected) << code;
    EXPECT_FALSE(end.fatal) << code;
    EXPECT_EQ(end.reason, "dropped") << code;
  }
}

TEST_F(SessionTest, OtherErrorsAreOnlyNoted) {
  auto& s = subscribed(Mode::url);
  const auto a = s.received(error(1003, "Too many messages"), at(1s));
  EXPECT_EQ(a.error, "server error 1003: Too many messages");
  EXPECT_FALSE(a.close);
  EXPECT_TRUE(s.subscribed());
  s.transport_failed("dropped", at(2s));
  const auto end = s.ended("", at(2s));
  EXPECT_FALSE(end.fatal);
  EXPECT_FALSE(end.auth_rejected);
}

TEST_F(SessionTest, A1008FollowedByAnyFrameDoesNotEndTheConnection) {
  for (auto after : {FrameKind::event, FrameKind::pong}) {
    auto& s = subscribed(Mode::url);
    s.received(error(1008, "Invalid query"), at(1s));
    s.received(after == FrameKind::event ? event() : frame(after), at(2s));
    s.transport_failed("dropped", at(60s));
    const auto end = s.ended("", at(60s));
    EXPECT_FALSE(end.fatal);
    EXPECT_EQ(end.reason, "dropped");
  }
  EXPECT_EQ(disconnects("dropped"), 2);
  EXPECT_EQ(disconnects("server_error"), 0);
}

TEST_F(SessionTest, AnErrorOutlivedByAHeartbeatDoesNotEndTheConnection) {
  for (const std::int64_t code : {1008, 401}) {
    auto& s = subscribed(Mode::url);
    s.received(error(code, "error"), at(1s));
    EXPECT_EQ(s.timer_expired(at(20s)).send, std::vector<std::string>{kPing});
    s.transport_failed("dropped", at(21s));
    const auto end = s.ended("", at(21s));
    EXPECT_FALSE(end.fatal) << code;
    EXPECT_FALSE(end.auth_rejected) << code;
    EXPECT_EQ(end.reason, "dropped") << code;
  }
}

TEST_F(SessionTest, A1008ThatEndedTheConnectionAfterHealthyTrafficIsStillFatal) {
  auto& s = subscribed(Mode::url);
  s.received(event(), at(1s));
  s.received(frame(FrameKind::pong), at(2s));
  s.received(error(1008, "Missing project context"), at(3s));
  s.transport_failed("dropped", at(3s));
  EXPECT_TRUE(s.ended("", at(3s)).fatal);
}

TEST_F(SessionTest, ACloseFrameEndsTheSubscriptionAtOnceAndTheConnectionAtTheDeadline) {
  auto& s = subscribed(Mode::url);
  auto a = s.close_received(1001, "going away", at(5s));
  EXPECT_TRUE(a.unsubscribed);
  EXPECT_FALSE(a.close);  // the closing handshake gets its deadline
  EXPECT_EQ(a.arm_timer, t0 + 5s + Session::kClosingDeadline);
  EXPECT_FALSE(s.subscribed());
  EXPECT_EQ(disconnects("server_closed"), 1);

  // A second close frame or an early timer changes nothing; no ping on a closing connection.
  EXPECT_FALSE(s.close_received(1001, "again", at(5s)).unsubscribed);
  a = s.timer_expired(at(5s + Session::kClosingDeadline - 1ms));
  EXPECT_TRUE(a.send.empty());
  EXPECT_FALSE(a.close);

  a = s.timer_expired(at(5s + Session::kClosingDeadline));
  EXPECT_EQ(a.close, "server_closed");
  EXPECT_FALSE(s.transport_failed("closed_locally", at(8s)).close);
  const auto end = s.ended("", at(8s));
  EXPECT_EQ(end.reason, "server_closed");
  EXPECT_FALSE(end.fatal);
  EXPECT_TRUE(end.reached_connected);
  EXPECT_EQ(disconnects("server_closed"), 1);  // counted once, at the close frame

  // The gap runs from the close frame.
  s.opened(Mode::url, "session", at(9s));
  a = s.received(frame(FrameKind::connected), at(10s));
  ASSERT_TRUE(a.gap);
  EXPECT_EQ(a.gap->from, wall0 + 5s);
}

TEST_F(SessionTest, ACloseFrameFollowedByTheTcpCloseEndsAtOnce) {
  auto& s = subscribed(Mode::url);
  s.close_received(1000, "", at(5s));
  EXPECT_EQ(s.transport_failed("server_closed", at(5s)).close, "server_closed");
  EXPECT_EQ(s.ended("", at(5s)).reason, "server_closed");
  EXPECT_EQ(disconnects("server_closed"), 1);
}

TEST_F(SessionTest, ACloseFrameAfterA1008IsAConfigurationProblem) {
  auto& s = subscribed(Mode::url);
  s.received(error(1008, "Missing project context"), at(1s));
  EXPECT_TRUE(s.close_received(1008, "", at(1s)).unsubscribed);
  EXPECT_EQ(disconnects("server_error"), 1);
  s.transport_failed("server_closed", at(1s));
  const auto end = s.ended("", at(1s));
  EXPECT_TRUE(end.fatal);
  EXPECT_EQ(end.reason, "server_error");
}

TEST_F(SessionTest, AClosingConnectionTakesNoNewSubscriptionAndStopsAtOnce) {
  auto& s = subscribed(Mode::message);
  s.close_received(1011, "internal error", at(5s));
  EXPECT_TRUE(s.update_subscription(routes({"c"}), at(6s)).send.empty());  // the next one gets it
  const auto a = s.stop_after_pong(at(6s));                                // no pong will come
  EXPECT_TRUE(a.send.empty());
  EXPECT_TRUE(a.close);
  EXPECT_TRUE(s.stopping());
}

TEST_F(SessionTest, AFailedAttemptCountsAsAFailedConnect) {
  Session s(kHeartbeat, routes({"a"}), metrics_);
  const auto end = s.ended("connect", at(1s));
  EXPECT_EQ(end.reason, "connect");
  EXPECT_FALSE(end.reached_connected);
  EXPECT_EQ(metrics_.connects(false).Value(), 1);
  EXPECT_EQ(disconnects("connect"), 0);  // nothing was up to lose

  // An opened connection that never got `connected` failed too.
  s.opened(Mode::url, "jwt", at(2s));
  s.received(error(401, "expired"), at(2s));
  s.transport_failed("dropped", at(2s));
  EXPECT_FALSE(s.ended("", at(2s)).reached_connected);
  EXPECT_EQ(metrics_.connects(false).Value(), 2);
  EXPECT_EQ(disconnects("dropped"), 0);

  // Stopping during an attempt labels it stopping.
  s.stop(at(3s));
  EXPECT_EQ(s.ended("connect", at(3s)).reason, "stopping");
}

TEST_F(SessionTest, AGapRunsFromTheLossOfTheSubscriptionToTheNext) {
  auto& s = subscribed(Mode::url);
  s.transport_failed("dropped", at(100s));
  s.ended("", at(100s));
  s.ended("connect", at(103s));  // a failed attempt in between
  s.opened(Mode::url, "session", at(110s));
  const auto a = s.received(frame(FrameKind::connected), at(111s));
  ASSERT_TRUE(a.gap);
  EXPECT_EQ(a.gap->from, wall0 + 100s);
  EXPECT_EQ(a.gap->to, wall0 + 111s);
  EXPECT_TRUE(a.subscribed);
  EXPECT_DOUBLE_EQ(metrics_.gap_seconds().Value(), 11);

  // In message mode the gap ends at the confirmed subscribe.
  s.transport_failed("dropped", at(200s));
  s.ended("", at(200s));
  s.opened(Mode::message, "session", at(201s));
  EXPECT_FALSE(s.received(frame(FrameKind::connected), at(202s)).gap);
  const auto b = s.received(response(true), at(205s));
  ASSERT_TRUE(b.gap);
  EXPECT_EQ(b.gap->from, wall0 + 200s);
  EXPECT_EQ(b.gap->to, wall0 + 205s);
  EXPECT_DOUBLE_EQ(metrics_.gap_seconds().Value(), 16);
}

TEST_F(SessionTest, NoGapBeforeTheFirstSubscription) {
  auto& s = open(Mode::message);
  s.received(frame(FrameKind::connected), at(1s));
  s.received(response(false), at(1s));  // connected, never subscribed
  s.transport_failed("dropped", at(10s));
  s.ended("", at(10s));
  s.opened(Mode::message, "session", at(20s));
  s.received(frame(FrameKind::connected), at(21s));
  const auto a = s.received(response(true), at(21s));
  EXPECT_TRUE(a.subscribed);
  EXPECT_FALSE(a.gap);
  EXPECT_EQ(metrics_.gap_seconds().Value(), 0);
}

TEST_F(SessionTest, StoppingCountsTheOpenGapWithoutReportingIt) {
  auto& s = subscribed(Mode::url);
  s.transport_failed("dropped", at(100s));
  s.ended("", at(100s));
  s.stop(at(110s));
  s.finished(at(130s));
  EXPECT_DOUBLE_EQ(metrics_.gap_seconds().Value(), 30);
  s.finished(at(140s));  // counted once
  EXPECT_DOUBLE_EQ(metrics_.gap_seconds().Value(), 30);
}

TEST_F(SessionTest, AReconnectStartsAFreshHeartbeatAndSubscribeBookkeeping) {
  auto& s = subscribed(Mode::message);
  s.timer_expired(at(20s));
  s.update_subscription(routes({"a"}), at(21s));  // unanswered when the connection drops
  s.transport_failed("dropped", at(22s));
  s.ended("", at(22s));

  auto a = s.opened(Mode::message, "session", at(30s));
  EXPECT_EQ(a.arm_timer, t0 + 30s + kHeartbeat);
  a = s.received(frame(FrameKind::connected), at(31s));
  EXPECT_EQ(a.send, std::vector<std::string>{subscribe_text({"a"})});
  a = s.received(response(true), at(32s));
  EXPECT_TRUE(a.subscribed);    // answers only this connection's subscribe
  EXPECT_TRUE(a.send.empty());  // this server never held b
  // The first ping of the new connection has nothing to answer yet.
  EXPECT_EQ(s.timer_expired(at(50s)).send, std::vector<std::string>{kPing});
}

}  // namespace
}  // namespace sluice::upstream

namespace sluice::upstream {
namespace {

TEST_F(SessionTest, ASubscribeWithoutAnswerReconnectsAtTheDeadline) {
  auto& s = open(Mode::message);
  auto a = s.received(frame(FrameKind::connected), at(0s));
  ASSERT_EQ(a.send.size(), 1u);
  EXPECT_EQ(a.arm_timer, t0 + Session::kAnswerDeadline);  // before the first ping
  EXPECT_FALSE(s.timer_expired(at(9s)).close);
  a = s.timer_expired(at(10s));
  EXPECT_EQ(a.close, "no_answer");
  EXPECT_EQ(a.error, "no answer to a subscribe within 10 s");
  EXPECT_FALSE(s.subscribed());
  EXPECT_EQ(s.ended("", at(10s)).reason, "no_answer");
}

TEST_F(SessionTest, AnUnansweredUnsubscribeReconnectsToo) {
  auto& s = subscribed(Mode::message, routes({"a", "b"}));
  s.update_subscription(routes({"a"}), at(1s));
  auto a = s.received(response(true), at(2s));
  ASSERT_EQ(a.send.size(), 1u);  // the unsubscribe of b
  EXPECT_EQ(a.arm_timer, t0 + 2s + Session::kAnswerDeadline);
  EXPECT_EQ(s.timer_expired(at(12s)).close, "no_answer");
}

TEST_F(SessionTest, AnsweredRequestsLeaveOnlyTheHeartbeatTimer) {
  auto& s = open(Mode::message);
  s.received(frame(FrameKind::connected), at(0s));
  const auto a = s.received(response(true), at(1s));
  EXPECT_TRUE(a.subscribed);
  EXPECT_EQ(a.arm_timer, t0 + kHeartbeat);
  EXPECT_FALSE(s.timer_expired(at(10s)).close);
}

TEST_F(SessionTest, SubscribesBeyondTheMessageBudgetWaitForRoomInTheWindow) {
  // 32 messages a minute, less 3 heartbeat pings, one for a window's edge and a stop ping.
  auto& s = subscribed(Mode::message);
  ASSERT_EQ(s.control_budget(), 27u);
  for (std::size_t i = 1; i < s.control_budget(); ++i) {
    ASSERT_EQ(s.update_subscription(routes({"a", "b"}), at(1s)).send.size(), 1u) << i;
    s.received(response(true), at(1s));
  }
  auto a = s.update_subscription(routes({"a", "b"}), at(2s));
  EXPECT_TRUE(a.send.empty());  // the 28th in a minute waits
  EXPECT_EQ(a.arm_timer, t0 + kHeartbeat);
  for (int i = 1; i <= 2; ++i) {  // pings are not held back
    EXPECT_EQ(s.timer_expired(at(kHeartbeat * i)).send, std::vector<std::string>{kPing});
    s.received(frame(FrameKind::pong), at(kHeartbeat * i + 1s));
  }
  a = s.timer_expired(at(60s));  // the connect-time subscribe left the window
  EXPECT_EQ(a.send, (std::vector<std::string>{subscribe_text({"a", "b"}), kPing}));
  EXPECT_EQ(a.arm_timer, t0 + 60s + Session::kAnswerDeadline);
}

TEST_F(SessionTest, AShortHeartbeatStillLeavesRoomToSubscribe) {
  Session s(std::chrono::seconds(1), routes({"a"}), metrics_);
  EXPECT_EQ(s.control_budget(), 4u);
}

}  // namespace
}  // namespace sluice::upstream
