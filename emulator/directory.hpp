#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "emulator/fanout/fanout.hpp"

// Users, sessions and JWTs of the emulated Appwrite server, plus the encodings they travel in.
namespace sluice::emulator {

// Standard base64 (with padding) and base64url (without). decode accepts both alphabets and
// missing padding; it returns false on any other character.
std::string base64_encode(std::string_view bytes, bool url = false);
bool base64_decode(std::string_view text, std::string& out);

// `count` random bytes as lowercase hex, from OpenSSL's CSPRNG.
std::string random_hex(std::size_t count);

// Appwrite's datetime format for models and events: 2026-08-21T12:00:00.123+00:00 (UTC).
std::string format_timestamp(std::chrono::system_clock::time_point when);
// HTTP's Date format (RFC 9110 IMF-fixdate): Sun, 06 Dec 2026 16:22:44 GMT.
std::string http_date(std::chrono::system_clock::time_point when);

// One session of a user. The secret is what the session token wraps.
struct SessionRecord {
  // A test's change that waits for the next realtime handshake, so that the REST check a
  // client makes just before it still passes (the race of a session revoked in between).
  enum class AtHandshake { none, revoke, expire };

  std::string id;
  std::string user_id;
  std::string secret;
  std::string provider;  // "email" (a login, fixtures, /_emulator/users) or "server" (Users API)
  std::chrono::system_clock::time_point created;
  std::chrono::system_clock::time_point expire;
  // The JWTs minted for this session: how a test tells whose session a client's JWT is bound to.
  std::uint64_t jwts = 0;
  std::optional<std::chrono::system_clock::time_point> jwt_expire;  // of the latest
  AtHandshake at_handshake = AtHandshake::none;
};

// What Appwrite does with a JWT whose linked session is no longer usable: 1.8 and 1.9.6 make
// the connection a guest only when the session is gone; later servers also when it expired
// (User::sessionActive). Either way there is no error: the JWT simply stops being a user.
enum class JwtSessionRule { gone, gone_or_expired };

// A JWT that verified: its user (nullptr makes the connection a guest) and its session.
struct JwtIdentity {
  const User* user = nullptr;
  std::string session_id;  // empty: the JWT is bound to no session
};

// The users and sessions every project of the emulator shares (Appwrite keeps them per
// project; tests never need that distinction), and the emulator's clock, which tests move
// forward instead of sleeping: sessions and JWTs expire against it. Owned by the Engine; used
// only on the io_context thread, like everything in the emulator.
class Directory {
 public:
  using TimePoint = std::chrono::system_clock::time_point;
  // Appwrite's default session length (TOKEN_EXPIRATION_LOGIN_LONG, one year).
  static constexpr std::chrono::seconds kSessionLifetime{31536000};

  Directory();

  // The emulator's time: the system clock plus every advance() so far.
  TimePoint now() const { return std::chrono::system_clock::now() + offset_; }
  void advance(std::chrono::system_clock::duration by) { offset_ += by; }

  // Adds or replaces a user (same id). Returns an error message when the id is invalid or the
  // email already belongs to another user; empty on success.
  std::string put_user(User user);
  const User* find_user(std::string_view id) const;
  const User* find_by_email(std::string_view email) const;
  std::size_t user_count() const { return users_.size(); }

  // Creates a session for an existing user, valid kSessionLifetime; `secret` empty → a random
  // one.
  const SessionRecord& create_session(const std::string& user_id, std::string secret = {},
                                      std::string provider = "email");
  const SessionRecord* find_session(std::string_view session_id) const;
  // Deletes a session (Appwrite: DELETE /v1/users/{userId}/sessions/{sessionId}); false when
  // the user has no such session.
  bool delete_session(std::string_view user_id, std::string_view session_id);
  // Test hooks: end a session now (revoke deletes it, expire sets its expiry to now), or at the
  // next realtime handshake. Return false for an unknown session.
  bool change_session(std::string_view session_id, SessionRecord::AtHandshake change,
                      bool at_handshake);
  // A realtime handshake begins: carries out the changes waiting for it.
  void handshake();
  // The sessions as /_emulator/sessions lists them.
  boost::json::array sessions_json() const;

  // The token clients present (cookie, X-Appwrite-Session, authentication message):
  // base64 of {"id":userId,"secret":secret}.
  static std::string session_token(const SessionRecord& session);
  // The session a token stands for, or nullptr (unknown, malformed, revoked or expired: Appwrite's
  // sessionVerify checks the expiry too).
  const SessionRecord* session_for_token(std::string_view token) const;
  const User* user_for_token(std::string_view token) const;

  // An HS256 JWT for the user, valid `lifetime` from now (Appwrite: 900 s by default). As in
  // Appwrite, `session_id` "recent" binds it to the user's newest session, an id of one of the
  // user's sessions to that one, and anything else (empty included) to no session.
  std::string mint_jwt(const User& user, std::string_view session_id,
                       std::chrono::seconds lifetime);
  // Who a valid JWT stands for (a null user when the user is gone or, by `rule`, its session
  // is: a guest, as in Appwrite), or the reason it is invalid as Appwrite words it ("Failed to
  // verify JWT. …").
  std::variant<JwtIdentity, std::string> verify_jwt(std::string_view jwt,
                                                    JwtSessionRule rule) const;

 private:
  std::string sign(std::string_view data) const;
  SessionRecord* find_session_mutable(std::string_view session_id);

  std::map<std::string, User, std::less<>> users_;
  std::map<std::string, SessionRecord, std::less<>> sessions_;  // by secret
  std::string jwt_key_;
  std::chrono::system_clock::duration offset_{0};
};

// Appwrite's Account model (REST `GET /v1/account`, `connected.user`).
boost::json::object account_model(const User& user);
// Appwrite's Session model; `secret` carries the session token.
boost::json::object session_model(const SessionRecord& session, const User& user,
                                  std::string_view token);

// Whether `id` is a valid Appwrite custom id (Key validator: ≤36 characters of a-z A-Z 0-9 . - _,
// not starting with a special character).
bool valid_custom_id(std::string_view id);

}  // namespace sluice::emulator
