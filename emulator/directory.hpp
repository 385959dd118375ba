#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

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

// One session of a user. The secret is what the session token wraps.
struct SessionRecord {
  std::string id;
  std::string user_id;
  std::string secret;
  std::chrono::system_clock::time_point created;
};

// The users and sessions every project of the emulator shares (Appwrite keeps them per
// project; tests never need that distinction). Owned by the Engine; used only on the
// io_context thread, like everything in the emulator.
class Directory {
 public:
  Directory();

  // Adds or replaces a user (same id). Returns an error message when the id is invalid or the
  // email already belongs to another user; empty on success.
  std::string put_user(User user);
  const User* find_user(std::string_view id) const;
  const User* find_by_email(std::string_view email) const;
  std::size_t user_count() const { return users_.size(); }

  // Creates a session for an existing user; `secret` empty → a random one.
  const SessionRecord& create_session(const std::string& user_id, std::string secret = {});
  // The token clients present (cookie, X-Appwrite-Session, authentication message):
  // base64 of {"id":userId,"secret":secret}.
  static std::string session_token(const SessionRecord& session);
  // The user a session token belongs to, or nullptr (unknown, malformed or revoked).
  const User* user_for_token(std::string_view token) const;

  // An HS256 JWT for the user, valid `lifetime` from now (Appwrite: 900 s by default; 0 gives a
  // token that is already expired, which tests use).
  std::string mint_jwt(const User& user, std::string_view session_id,
                       std::chrono::seconds lifetime) const;
  // The user of a valid JWT (nullptr when the user no longer exists: a guest, as in Appwrite),
  // or the reason it is invalid as Appwrite words it ("Failed to verify JWT. …").
  std::variant<const User*, std::string> verify_jwt(std::string_view jwt) const;

 private:
  std::string sign(std::string_view data) const;

  std::map<std::string, User, std::less<>> users_;
  std::map<std::string, SessionRecord, std::less<>> sessions_;  // by secret
  std::string jwt_key_;
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
