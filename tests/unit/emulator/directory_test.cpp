#include "emulator/directory.hpp"

#include <gtest/gtest.h>

// Appwrite's rules for sessions and JWTs (app/init/realtime/connection.php, User::sessionVerify
// and sessionActive), on the emulator's own clock.
namespace sluice::emulator {
namespace {

using namespace std::chrono_literals;

class DirectoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    User u;
    u.id = "u1";
    ASSERT_EQ(directory_.put_user(std::move(u)), "");
  }
  const User& user() { return *directory_.find_user("u1"); }
  const User* jwt_user(const std::string& jwt, JwtSessionRule rule) {
    auto verified = directory_.verify_jwt(jwt, rule);
    EXPECT_TRUE(std::holds_alternative<JwtIdentity>(verified));
    return std::get<JwtIdentity>(verified).user;
  }
  Directory directory_;
};

TEST_F(DirectoryTest, JwtIsBoundToTheNamedSessionOrTheNewestOneOrNone) {
  const auto first = directory_.create_session("u1", {}, "server").id;
  directory_.advance(1s);
  const auto second = directory_.create_session("u1").id;
  const auto session_of = [&](std::string_view wanted) {
    const auto jwt = directory_.mint_jwt(user(), wanted, 900s);
    return std::get<JwtIdentity>(directory_.verify_jwt(jwt, JwtSessionRule::gone)).session_id;
  };
  EXPECT_EQ(session_of(first), first);
  EXPECT_EQ(session_of("recent"), second);
  EXPECT_EQ(session_of(""), "");         // 1.9.6's default: bound to no session
  EXPECT_EQ(session_of("unknown"), "");  // not one of the user's sessions
  EXPECT_EQ(directory_.find_session(first)->jwts, 1u);
}

TEST_F(DirectoryTest, JwtOfAGoneSessionIsAGuestOfAnExpiredOneOnlyOnNewerServers) {
  const auto& session = directory_.create_session("u1", {}, "server");
  const auto id = session.id;
  const auto jwt = directory_.mint_jwt(user(), id, 900s);
  EXPECT_EQ(jwt_user(jwt, JwtSessionRule::gone_or_expired), &user());

  ASSERT_TRUE(directory_.change_session(id, SessionRecord::AtHandshake::expire, false));
  EXPECT_EQ(jwt_user(jwt, JwtSessionRule::gone), &user());  // 1.9.6 still takes it
  EXPECT_EQ(jwt_user(jwt, JwtSessionRule::gone_or_expired), nullptr);

  ASSERT_TRUE(directory_.change_session(id, SessionRecord::AtHandshake::revoke, false));
  EXPECT_EQ(jwt_user(jwt, JwtSessionRule::gone), nullptr);
  EXPECT_EQ(directory_.find_session(id), nullptr);
}

TEST_F(DirectoryTest, ChangesForTheHandshakeWaitForIt) {
  const auto& session = directory_.create_session("u1");
  const auto token = Directory::session_token(session);
  const auto id = session.id;
  ASSERT_TRUE(directory_.change_session(id, SessionRecord::AtHandshake::revoke, true));
  EXPECT_EQ(directory_.user_for_token(token), &user());  // a REST check still passes
  directory_.handshake();
  EXPECT_EQ(directory_.user_for_token(token), nullptr);
  EXPECT_FALSE(directory_.change_session("unknown", SessionRecord::AtHandshake::revoke, true));
}

TEST_F(DirectoryTest, SessionsAndJwtsExpireOnTheEmulatorsClock) {
  const auto& session = directory_.create_session("u1");
  const auto token = Directory::session_token(session);
  const auto jwt = directory_.mint_jwt(user(), "", 900s);
  directory_.advance(899s);
  EXPECT_EQ(jwt_user(jwt, JwtSessionRule::gone), &user());
  directory_.advance(1s);
  EXPECT_EQ(std::get<std::string>(directory_.verify_jwt(jwt, JwtSessionRule::gone)),
            "Failed to verify JWT. Invalid token: Expired");
  EXPECT_EQ(directory_.user_for_token(token), &user());
  directory_.advance(Directory::kSessionLifetime);
  EXPECT_EQ(directory_.user_for_token(token), nullptr);  // an expired session is a guest
}

TEST(HttpDateTest, FormatsImfFixdate) {
  using namespace std::chrono;
  EXPECT_EQ(http_date(sys_days{2026y / December / 6} + 16h + 22min + 44s + 999ms),
            "Sun, 06 Dec 2026 16:22:44 GMT");
}

}  // namespace
}  // namespace sluice::emulator
