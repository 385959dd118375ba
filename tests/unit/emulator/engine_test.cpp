#include "emulator/engine.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>

// The emulator's protocol rules without sockets: each limit and check Appwrite applies, hit on
// purpose. The expected behaviour is Appwrite's (the comments in engine.cpp cite its source).
namespace sluice::emulator {
namespace {

namespace json = boost::json;
using ::testing::HasSubstr;

constexpr std::string_view kRows = "tablesdb.shop.tables.orders.rows";
constexpr std::string_view kItems = "tablesdb.shop.tables.items.rows";

// A realtime connection without a socket: collects what the engine sends.
class FakePeer final : public Peer {
 public:
  void send(std::string frame) override { frames.push_back(std::move(frame)); }
  void drop() override { dropped = true; }
  std::size_t backlog() const override { return 0; }
  bool closed() const override { return dropped; }

  std::vector<json::value> events() const {
    std::vector<json::value> out;
    for (const auto& f : frames) {
      auto v = json::parse(f);
      if (v.at("type") == "event")
        out.push_back(std::move(v));
    }
    return out;
  }

  std::vector<std::string> frames;
  bool dropped = false;
};

json::value frame(const Outcome& outcome, std::size_t i = 0) {
  EXPECT_GT(outcome.frames.size(), i);
  return outcome.frames.size() > i ? json::parse(outcome.frames[i]) : json::value{};
}

std::int64_t error_code(const Outcome& outcome) {
  const auto f = frame(outcome);
  EXPECT_EQ(f.at("type"), "error") << outcome.frames.front();
  return f.at("data").at("code").to_number<std::int64_t>();
}

class EngineTest : public ::testing::Test {
 protected:
  void start(Profile profile, bool dev_errors = true) {
    Options options;
    options.profile = profile;
    options.dev_errors = dev_errors;
    engine_ = std::make_unique<Engine>(std::move(options));
  }

  json::value control(std::string_view path, const json::value& body) {
    HttpRequest request;
    request.method = "POST";
    request.target = std::string(path);
    request.body = json::serialize(body);
    const auto answer = engine_->handle_http(request);
    EXPECT_EQ(answer.status / 100, 2u) << path << ": " << answer.body;
    return json::parse(answer.body);
  }

  // Creates a user and returns its session token.
  std::string user(std::string_view id, const std::vector<std::string>& teams = {}) {
    json::array t;
    for (const auto& team : teams)
      t.emplace_back(team);
    return std::string(
        control("/_emulator/users", {{"id", id}, {"teams", t}}).at("session").as_string());
  }

  // Runs the handshake of a connection from `ip` and attaches it.
  std::pair<std::shared_ptr<FakePeer>, Outcome> connect(std::string_view query,
                                                        const Headers& headers = {},
                                                        std::string_view ip = "127.0.0.1") {
    auto peer = std::make_shared<FakePeer>();
    peer->connection().id = engine_->next_connection_id();
    peer->connection().remote = std::string(ip) + ":40000";
    auto outcome = engine_->open(peer->connection(), "/v1/realtime?" + std::string(query), headers);
    if (!outcome.close)
      engine_->attach(peer);
    return {peer, std::move(outcome)};
  }

  Outcome message(FakePeer& peer, const json::value& m) {
    return engine_->on_message(peer.connection(), json::serialize(m));
  }

  json::value publish(std::string_view table, const json::object& payload,
                      const json::array& read = {"any"}) {
    return control("/_emulator/publish",
                   {{"event", "databases.[databaseId].tables.[tableId].rows.[rowId].update"},
                    {"params", {{"databaseId", "shop"}, {"tableId", table}, {"rowId", "r1"}}},
                    {"payload", payload},
                    {"read", read}});
  }

  std::unique_ptr<Engine> engine_;
};

TEST_F(EngineTest, QueryJwtIsAcceptedOnlyAfter196) {
  for (const auto profile : {Profile::v1_9, Profile::main}) {
    start(profile);
    const auto created = control("/_emulator/users", {{"id", "alice"}});
    const User* alice = engine_->directory().find_user("alice");
    const auto jwt = engine_->directory().mint_jwt(*alice, created.at("sessionId").as_string(),
                                                   std::chrono::seconds(900));
    const auto [by_query, opened] = connect("project=test&jwt=" + jwt);
    const auto connected = frame(opened);
    EXPECT_EQ(connected.at("type"), "connected");
    if (profile == Profile::v1_9) {
      EXPECT_TRUE(connected.at("data").at("user").is_null()) << "1.9.6 has no ?jwt=";
    } else {
      EXPECT_EQ(connected.at("data").at("user").at("$id"), "alice");
    }
    const auto [by_header, opened2] = connect("project=test", {{"x-appwrite-jwt", jwt}});
    EXPECT_EQ(frame(opened2).at("data").at("user").at("$id"), "alice");
  }
}

TEST_F(EngineTest, MainReportsTheVersionItsSourceDoes) {
  start(Profile::main);
  EXPECT_EQ(engine_->version(), "1.9.6");
}

TEST_F(EngineTest, OnlyPingBeforeTheHandshakeFinished) {
  start(Profile::v1_9, false);
  FakePeer early;
  const auto pong = message(early, {{"type", "ping"}});
  EXPECT_EQ(pong.frames, std::vector<std::string>{R"({"type":"pong"})"});
  EXPECT_FALSE(pong.close);
  const auto refused =
      message(early, {{"type", "subscribe"}, {"data", json::array{{{"channels", {kRows}}}}}});
  EXPECT_EQ(error_code(refused), 1008);
  EXPECT_EQ(frame(refused).at("data").at("message"), "Error: Server Error");  // masked, >= 500
  EXPECT_TRUE(refused.close);
  EXPECT_TRUE(message(early, {{"type", "authentication"}, {"data", {{"session", "x"}}}}).close);

  start(Profile::v1_9, true);
  FakePeer early2;
  const auto text = message(early2, {{"type", "subscribe"}, {"data", json::array{}}});
  EXPECT_EQ(frame(text).at("data").at("message"),
            "Missing project context. Reconnect to the project first.");

  // 1.8 reads the project first, pings included, and keeps the connection.
  start(Profile::v1_8, false);
  FakePeer early18;
  const auto old = message(early18, {{"type", "ping"}});
  EXPECT_EQ(error_code(old), 0);
  EXPECT_FALSE(old.close);
}

TEST_F(EngineTest, TheConnectLimitIs128Per60sPerIpAndPath) {
  start(Profile::v1_9, false);
  for (int i = 0; i < 128; ++i)
    ASSERT_FALSE(connect("project=test").second.close) << "connect " << i + 1;
  const auto refused = connect("project=test&channels[]=rows").second;
  EXPECT_EQ(error_code(refused), 1013);
  EXPECT_TRUE(refused.close);
  // Another client IP, or another path, has its own budget.
  EXPECT_FALSE(connect("project=test", {}, "127.0.0.2").second.close);
  auto peer = std::make_shared<FakePeer>();
  peer->connection().remote = "127.0.0.1:40001";
  EXPECT_FALSE(engine_->open(peer->connection(), "/v1/realtime/?project=test", {}).close);
  // A refused connect does not count, a credential refused before the limit neither: once the
  // window has passed, the budget is whole again.
  EXPECT_EQ(error_code(connect("project=test", {{"x-appwrite-jwt", "not.a.jwt"}}).second), 401);
  control("/_emulator/clock", {{"advance", 59.5}});
  EXPECT_TRUE(connect("project=test").second.close);
  control("/_emulator/clock", {{"advance", 0.5}});
  for (int i = 0; i < 128; ++i)
    ASSERT_FALSE(connect("project=test").second.close) << "connect " << i + 1;
  EXPECT_TRUE(connect("project=test").second.close);
}

TEST_F(EngineTest, ThirtyTwoMessagesPer60sPingsIncludedWithoutAClose) {
  start(Profile::v1_9, false);
  auto [peer, opened] = connect("project=test");
  for (int i = 0; i < 32; ++i)
    ASSERT_EQ(message(*peer, {{"type", "ping"}}).frames.front(), R"({"type":"pong"})");
  const auto refused = message(*peer, {{"type", "ping"}});
  EXPECT_EQ(error_code(refused), 1013);
  EXPECT_FALSE(refused.close);
  // Any 60 s holds at most 32 accepted messages, whatever the alignment of Appwrite's minutes.
  control("/_emulator/clock", {{"advance", 30}});
  EXPECT_EQ(error_code(message(*peer, {{"type", "ping"}})), 1013);
  control("/_emulator/clock", {{"advance", 30}});
  for (int i = 0; i < 32; ++i)
    ASSERT_EQ(message(*peer, {{"type", "ping"}}).frames.front(), R"({"type":"pong"})");
}

TEST_F(EngineTest, ReusingASubscriptionIdReplacesTheQueriesOfTheListedChannelsOnly) {
  start(Profile::v1_9);
  auto [peer, opened] = connect("project=test");
  const std::string paid = R"({"method":"equal","attribute":"status","values":["paid"]})";
  message(*peer, {{"type", "subscribe"},
                  {"data", json::array{{{"subscriptionId", "s"},
                                        {"channels", {kRows, kItems}},
                                        {"queries", {paid}}}}}});
  const auto upsert =
      message(*peer, {{"type", "subscribe"},
                      {"data", json::array{{{"subscriptionId", "s"}, {"channels", {kRows}}}}}});
  EXPECT_EQ(
      json::serialize(frame(upsert).at("data").at("subscriptions")),
      R"([{"subscriptionId":"s","channels":["tablesdb.shop.tables.orders.rows"],"queries":[]}])");
  ASSERT_EQ(peer->connection().subscriptions.size(), 1u);

  EXPECT_EQ(publish("orders", {{"status", "open"}}).at("delivered"), 1);  // now select-all
  EXPECT_EQ(publish("items", {{"status", "open"}}).at("delivered"), 0);   // still status=paid
  EXPECT_EQ(publish("items", {{"status", "paid"}}).at("delivered"), 1);
}

TEST_F(EngineTest, SubscribePayloadIsValidatedAsAppwriteDoes) {
  start(Profile::v1_9);
  auto [peer, opened] = connect("project=test");
  const auto reason = [&](const json::value& data) {
    const auto outcome = message(*peer, {{"type", "subscribe"}, {"data", data}});
    EXPECT_FALSE(outcome.close);
    const auto f = frame(outcome);
    return f.at("type") == "error" ? std::string(f.at("data").at("message").as_string())
                                   : std::string("accepted");
  };
  EXPECT_EQ(reason(json::array{{{"subscriptionId", "a"}}}),
            "items: channels is not present in payload.");
  EXPECT_EQ(reason(json::array{{{"channels", "rows"}}}), "items: channels is not a valid array.");
  EXPECT_EQ(reason(json::array{{{"channels", {1}}}}), "items: channels must contain only strings.");
  EXPECT_EQ(reason(json::object{}), "items: Payload is not valid.");
  EXPECT_EQ(reason(nullptr), "Payload is not valid. Items is required");
  EXPECT_EQ(reason(json::array{{{"subscriptionId", std::string(37, 'a')}, {"channels", {kRows}}}}),
            "items: subscriptionId is not a valid id.");
  EXPECT_EQ(reason(json::array{{{"subscriptionId", "_a"}, {"channels", {kRows}}}}),
            "items: subscriptionId is not a valid id.");
  EXPECT_EQ(reason(json::array{{{"subscriptionId", nullptr}, {"channels", {kRows}}}}),
            "items: subscriptionId is not a valid id.");
  EXPECT_EQ(reason(json::array{{{"subscriptionId", std::string(36, 'a')}, {"channels", {kRows}}}}),
            "accepted");
  // "unique()" passes the validator and the handler then uses it as the id.
  const auto unique = message(
      *peer,
      {{"type", "subscribe"},
       {"data", json::array{{{"subscriptionId", "unique()"}, {"channels", json::array{}}}}}});
  EXPECT_EQ(frame(unique).at("data").at("subscriptions").at(0).at("subscriptionId"), "unique()");
}

TEST_F(EngineTest, AuthenticationSessionIsAtMost2048Characters) {
  start(Profile::v1_9);
  auto [peer, opened] = connect("project=test");
  const auto too_long =
      message(*peer, {{"type", "authentication"}, {"data", {{"session", std::string(2049, 'x')}}}});
  EXPECT_THAT(std::string(frame(too_long).at("data").at("message").as_string()),
              HasSubstr("no longer than 2048 chars"));
  const auto longest =
      message(*peer, {{"type", "authentication"}, {"data", {{"session", std::string(2048, 'x')}}}});
  EXPECT_EQ(frame(longest).at("data").at("message"), "Session is not valid.");
}

TEST_F(EngineTest, TeamChangesResubscribeTheUserSilently) {
  start(Profile::v1_9);
  const auto token = user("alice");
  auto [peer, opened] = connect("project=test", {{"x-appwrite-session", token}});
  message(*peer, {{"type", "subscribe"}, {"data", json::array{{{"channels", {kRows}}}}}});
  auto [idle, opened2] = connect("project=test", {{"x-appwrite-session", token}});
  const json::array team = {"team:T"};
  EXPECT_EQ(publish("orders", {{"n", 1}}, team).at("delivered"), 0);

  user("alice", {"T"});  // the membership is confirmed: the open connection does not know yet
  EXPECT_EQ(publish("orders", {{"n", 2}}, team).at("delivered"), 0);
  const auto frames_before = peer->frames.size();
  control("/_emulator/publish",
          {{"event", "teams.[teamId].memberships.[membershipId].update.status"},
           {"params", {{"teamId", "T"}, {"membershipId", "M"}, {"userId", "alice"}}},
           {"payload", {{"$id", "M"}, {"userId", "alice"}, {"teamId", "T"}, {"confirm", true}}}});
  EXPECT_EQ(peer->frames.size(), frames_before) << "a re-subscribe sends nothing";
  EXPECT_EQ(publish("orders", {{"n", 3}}, team).at("delivered"), 1);
  ASSERT_EQ(peer->events().size(), 1u);
  EXPECT_EQ(peer->events()[0].at("data").at("payload").at("n"), 3);
  // Appwrite finds the connections to refresh through their subscriptions: one without any
  // keeps its old roles.
  EXPECT_THAT(idle->connection().roles, ::testing::Not(::testing::Contains("team:T")));
}

TEST_F(EngineTest, ReportsReachTheProjectsOwnerTeam) {
  start(Profile::v1_9);
  ASSERT_EQ(engine_->load_fixtures(R"({"projects": [{"id": "shop", "team": "acme"}]})"), "");
  const auto owner = user("olive", {"acme"});
  const auto other = user("oscar");
  const auto subscribe = [&](const std::string& token) {
    auto [peer, opened] = connect("project=shop", {{"x-appwrite-session", token}});
    message(*peer, {{"type", "subscribe"}, {"data", json::array{{{"channels", {"reports"}}}}}});
    return peer;
  };
  auto owner_peer = subscribe(owner);
  auto other_peer = subscribe(other);
  const auto answer = control("/_emulator/publish", {{"event", "reports.[reportId].delete"},
                                                     {"params", {{"reportId", "R"}}},
                                                     {"project", "shop"},
                                                     {"payload", {{"$id", "R"}}}});
  EXPECT_EQ(answer.at("delivered"), 1);
  EXPECT_EQ(owner_peer->events().size(), 1u);
  EXPECT_TRUE(other_peer->events().empty());
}

TEST_F(EngineTest, ExecutionsArePublishedInTheProfilesShape) {
  const json::object execution = {
      {"event", "functions.[functionId].executions.[executionId].update"},
      {"params", {{"functionId", "F"}, {"executionId", "E"}}},
      {"read", {"any"}}};
  start(Profile::main);
  auto [peer, opened] = connect("project=test");
  message(*peer, {{"type", "subscribe"}, {"data", json::array{{{"channels", {"functions.F"}}}}}});
  auto body = execution;
  body["payload"] = {{"$id", "E"}, {"resourceId", "F"}, {"resourceType", "functions"}};
  EXPECT_EQ(control("/_emulator/publish", body).at("delivered"), 1);
  body["payload"] = {{"$id", "E"}, {"functionId", "F"}};
  HttpRequest request{"POST", "/_emulator/publish", {}, json::serialize(body), true};
  const auto refused = engine_->handle_http(request);
  EXPECT_EQ(refused.status, 400u);
  EXPECT_THAT(refused.body, HasSubstr("resourceId"));
}

}  // namespace
}  // namespace sluice::emulator
