#include "emulator/directory.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <array>
#include <cstdio>
#include <stdexcept>
#include <utility>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace sluice::emulator {

namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view kUrlAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+' || c == '-')
    return 62;
  if (c == '/' || c == '_')
    return 63;
  return -1;
}

std::int64_t unix_seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace

std::string base64_encode(std::string_view bytes, bool url) {
  const auto alphabet = url ? kUrlAlphabet : kAlphabet;
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const auto n = (static_cast<unsigned>(static_cast<unsigned char>(bytes[i])) << 16) |
                   (static_cast<unsigned>(static_cast<unsigned char>(bytes[i + 1])) << 8) |
                   static_cast<unsigned char>(bytes[i + 2]);
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += alphabet[(n >> 6) & 63];
    out += alphabet[n & 63];
  }
  const auto rest = bytes.size() - i;
  if (rest > 0) {
    unsigned n = static_cast<unsigned>(static_cast<unsigned char>(bytes[i])) << 16;
    if (rest == 2)
      n |= static_cast<unsigned>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    if (rest == 2)
      out += alphabet[(n >> 6) & 63];
    if (!url)
      out.append(rest == 2 ? "=" : "==");
  }
  return out;
}

bool base64_decode(std::string_view text, std::string& out) {
  out.clear();
  while (!text.empty() && text.back() == '=')
    text.remove_suffix(1);
  unsigned buffer = 0;
  int bits = 0;
  for (const char c : text) {
    const int v = base64_value(c);
    if (v < 0)
      return false;
    buffer = (buffer << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xFF);
    }
  }
  return true;
}

std::string random_hex(std::size_t count) {
  std::string bytes(count, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()), static_cast<int>(count)) != 1) {
    throw std::runtime_error("RAND_bytes failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(count * 2);
  for (const char b : bytes) {
    const auto u = static_cast<unsigned char>(b);
    out += kHex[u >> 4];
    out += kHex[u & 15];
  }
  return out;
}

std::string format_timestamp(std::chrono::system_clock::time_point when) {
  using namespace std::chrono;
  const auto ms = floor<milliseconds>(when);
  const auto day = floor<days>(ms);
  const year_month_day ymd{day};
  const hh_mm_ss hms{ms - day};
  std::array<char, 40> buf{};
  const int n = std::snprintf(
      buf.data(), buf.size(), "%04d-%02u-%02uT%02d:%02d:%02d.%03d+00:00",
      static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
      static_cast<unsigned>(ymd.day()), static_cast<int>(hms.hours().count()),
      static_cast<int>(hms.minutes().count()), static_cast<int>(hms.seconds().count()),
      static_cast<int>(hms.subseconds().count()));
  return std::string(buf.data(), static_cast<std::size_t>(n));
}

std::string http_date(std::chrono::system_clock::time_point when) {
  using namespace std::chrono;
  static constexpr std::array<const char*, 7> kDays = {"Sun", "Mon", "Tue", "Wed",
                                                       "Thu", "Fri", "Sat"};
  static constexpr std::array<const char*, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const auto s = floor<seconds>(when);
  const auto day = floor<days>(s);
  const year_month_day ymd{day};
  const hh_mm_ss hms{s - day};
  std::array<char, 40> buf{};
  const int n =
      std::snprintf(buf.data(), buf.size(), "%s, %02u %s %04d %02d:%02d:%02d GMT",
                    kDays[weekday{day}.c_encoding()], static_cast<unsigned>(ymd.day()),
                    kMonths[static_cast<unsigned>(ymd.month()) - 1], static_cast<int>(ymd.year()),
                    static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                    static_cast<int>(hms.seconds().count()));
  return std::string(buf.data(), static_cast<std::size_t>(n));
}

bool valid_custom_id(std::string_view id) {
  if (id.empty() || id.size() > 36)
    return false;
  const auto plain = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (!plain(id[0]))
    return false;
  for (const char c : id) {
    if (!plain(c) && c != '.' && c != '-' && c != '_')
      return false;
  }
  return true;
}

Directory::Directory() : jwt_key_(random_hex(32)) {}

std::string Directory::put_user(User user) {
  if (!valid_custom_id(user.id))
    return "Invalid `userId` param: must be a valid custom id";
  if (!user.email.empty()) {
    const auto* other = find_by_email(user.email);
    if (other != nullptr && other->id != user.id) {
      return "A user with the same id, email, or phone already exists in this project.";
    }
  }
  const auto id = user.id;
  users_.insert_or_assign(id, std::move(user));
  return {};
}

const User* Directory::find_user(std::string_view id) const {
  const auto it = users_.find(id);
  return it == users_.end() ? nullptr : &it->second;
}

const User* Directory::find_by_email(std::string_view email) const {
  for (const auto& [id, user] : users_) {
    if (!email.empty() && user.email == email)
      return &user;
  }
  return nullptr;
}

const SessionRecord& Directory::create_session(const std::string& user_id, std::string secret,
                                               std::string provider) {
  if (secret.empty())
    secret = random_hex(32);
  const auto created = now();
  SessionRecord record;
  record.id = random_hex(10);
  record.user_id = user_id;
  record.secret = secret;
  record.provider = std::move(provider);
  record.created = created;
  record.expire = created + kSessionLifetime;
  auto [it, inserted] = sessions_.insert_or_assign(secret, std::move(record));
  return it->second;
}

SessionRecord* Directory::find_session_mutable(std::string_view session_id) {
  for (auto& [secret, session] : sessions_) {
    if (session.id == session_id)
      return &session;
  }
  return nullptr;
}

const SessionRecord* Directory::find_session(std::string_view session_id) const {
  return const_cast<Directory*>(this)->find_session_mutable(session_id);
}

bool Directory::delete_session(std::string_view user_id, std::string_view session_id) {
  const auto* session = find_session(session_id);
  if (session == nullptr || session->user_id != user_id)
    return false;
  sessions_.erase(session->secret);
  return true;
}

bool Directory::change_session(std::string_view session_id, SessionRecord::AtHandshake change,
                               bool at_handshake) {
  auto* session = find_session_mutable(session_id);
  if (session == nullptr)
    return false;
  if (at_handshake) {
    session->at_handshake = change;
  } else if (change == SessionRecord::AtHandshake::revoke) {
    sessions_.erase(session->secret);
  } else if (change == SessionRecord::AtHandshake::expire) {
    session->expire = now();
  }
  return true;
}

void Directory::handshake() {
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    const auto change = std::exchange(it->second.at_handshake, SessionRecord::AtHandshake::none);
    if (change == SessionRecord::AtHandshake::revoke) {
      it = sessions_.erase(it);
      continue;
    }
    if (change == SessionRecord::AtHandshake::expire)
      it->second.expire = now();
    ++it;
  }
}

boost::json::array Directory::sessions_json() const {
  boost::json::array list;
  for (const auto& [secret, session] : sessions_) {
    boost::json::object o;
    o["$id"] = session.id;
    o["userId"] = session.user_id;
    o["provider"] = session.provider;
    o["$createdAt"] = format_timestamp(session.created);
    o["expire"] = format_timestamp(session.expire);
    o["expired"] = session.expire < now();
    o["jwts"] = session.jwts;
    o["jwtExpire"] = session.jwt_expire ? boost::json::value(format_timestamp(*session.jwt_expire))
                                        : boost::json::value(nullptr);
    list.emplace_back(std::move(o));
  }
  return list;
}

std::string Directory::session_token(const SessionRecord& session) {
  boost::json::object o;
  o["id"] = session.user_id;
  o["secret"] = session.secret;
  return base64_encode(boost::json::serialize(o));
}

const SessionRecord* Directory::session_for_token(std::string_view token) const {
  std::string decoded;
  if (token.empty() || !base64_decode(token, decoded))
    return nullptr;
  boost::system::error_code ec;
  const auto value = boost::json::parse(decoded, ec);
  if (ec || !value.is_object())
    return nullptr;
  const auto* id = value.as_object().if_contains("id");
  const auto* secret = value.as_object().if_contains("secret");
  if (id == nullptr || secret == nullptr || !id->is_string() || !secret->is_string()) {
    return nullptr;
  }
  const auto it = sessions_.find(std::string_view(secret->as_string()));
  if (it == sessions_.end() || it->second.user_id != std::string_view(id->as_string()) ||
      it->second.expire < now()) {
    return nullptr;
  }
  return &it->second;
}

const User* Directory::user_for_token(std::string_view token) const {
  const auto* session = session_for_token(token);
  return session == nullptr ? nullptr : find_user(session->user_id);
}

std::string Directory::sign(std::string_view data) const {
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int length = 0;
  HMAC(EVP_sha256(), jwt_key_.data(), static_cast<int>(jwt_key_.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac.data(), &length);
  return base64_encode(std::string_view(reinterpret_cast<const char*>(mac.data()), length), true);
}

std::string Directory::mint_jwt(const User& user, std::string_view session_id,
                                std::chrono::seconds lifetime) {
  SessionRecord* session = nullptr;
  for (auto& [secret, candidate] : sessions_) {
    if (candidate.user_id != user.id)
      continue;
    const bool recent =
        session_id == "recent" && (session == nullptr || candidate.created >= session->created);
    if (recent || candidate.id == session_id)
      session = &candidate;
  }
  const auto expire = now() + lifetime;
  if (session != nullptr) {
    ++session->jwts;
    session->jwt_expire = expire;
  }
  boost::json::object payload;
  payload["userId"] = user.id;
  payload["sessionId"] = session == nullptr ? std::string() : session->id;
  payload["exp"] = unix_seconds(expire);
  auto text = base64_encode(R"({"typ":"JWT","alg":"HS256"})", true);
  text += '.';
  text += base64_encode(boost::json::serialize(payload), true);
  const auto signature = sign(text);
  text += '.';
  text += signature;
  return text;
}

std::variant<JwtIdentity, std::string> Directory::verify_jwt(std::string_view jwt,
                                                             JwtSessionRule rule) const {
  const std::string prefix = "Failed to verify JWT. ";
  const auto first = jwt.find('.');
  const auto second = first == std::string_view::npos ? first : jwt.find('.', first + 1);
  if (second == std::string_view::npos || jwt.find('.', second + 1) != std::string_view::npos) {
    return prefix + "Invalid token: Incomplete segments";
  }
  std::string payload_text;
  if (!base64_decode(jwt.substr(first + 1, second - first - 1), payload_text)) {
    return prefix + "Invalid token: Corrupt payload";
  }
  const auto expected = sign(jwt.substr(0, second));
  const auto given = jwt.substr(second + 1);
  if (expected.size() != given.size() ||
      CRYPTO_memcmp(expected.data(), given.data(), given.size()) != 0) {
    return prefix + "Invalid token: Signature failed";
  }
  boost::system::error_code ec;
  const auto payload = boost::json::parse(payload_text, ec);
  if (ec || !payload.is_object())
    return prefix + "Invalid token: Corrupt payload";
  const auto& o = payload.as_object();
  const auto* exp = o.if_contains("exp");
  if (exp == nullptr || !exp->is_int64() || unix_seconds(now()) >= exp->as_int64()) {
    return prefix + "Invalid token: Expired";
  }
  JwtIdentity identity;
  if (const auto* user_id = o.if_contains("userId"); user_id != nullptr && user_id->is_string())
    identity.user = find_user(std::string_view(user_id->as_string()));
  if (const auto* s = o.if_contains("sessionId"); s != nullptr && s->is_string())
    identity.session_id = std::string(s->as_string());
  if (identity.session_id.empty())
    return identity;
  const auto* session = find_session(identity.session_id);
  const bool usable = session != nullptr && identity.user != nullptr &&
                      session->user_id == identity.user->id &&
                      (rule == JwtSessionRule::gone || session->expire >= now());
  if (!usable)
    identity.user = nullptr;
  return identity;
}

boost::json::object account_model(const User& user) {
  const auto epoch = format_timestamp(std::chrono::system_clock::time_point{});
  boost::json::object o;
  o["$id"] = user.id;
  o["$createdAt"] = epoch;
  o["$updatedAt"] = epoch;
  o["name"] = user.name;
  o["registration"] = epoch;
  o["status"] = true;
  boost::json::array labels;
  for (const auto& l : user.labels)
    labels.emplace_back(l);
  o["labels"] = std::move(labels);
  o["passwordUpdate"] = epoch;
  o["email"] = user.email;
  o["phone"] = "";
  o["emailVerification"] = user.email_verified;
  o["phoneVerification"] = false;
  o["mfa"] = false;
  o["prefs"] = boost::json::object{};
  o["targets"] = boost::json::array{};
  o["accessedAt"] = epoch;
  return o;
}

boost::json::object session_model(const SessionRecord& session, const User& user,
                                  std::string_view token) {
  const auto created = format_timestamp(session.created);
  boost::json::object o;
  o["$id"] = session.id;
  o["$createdAt"] = created;
  o["$updatedAt"] = created;
  o["userId"] = user.id;
  o["expire"] = format_timestamp(session.expire);
  o["provider"] = session.provider;
  o["providerUid"] = user.email;
  o["providerAccessToken"] = "";
  o["providerAccessTokenExpiry"] = "";
  o["providerRefreshToken"] = "";
  o["ip"] = "127.0.0.1";
  o["osCode"] = "";
  o["osName"] = "";
  o["osVersion"] = "";
  o["clientType"] = "";
  o["clientCode"] = "";
  o["clientName"] = "";
  o["clientVersion"] = "";
  o["clientEngine"] = "";
  o["clientEngineVersion"] = "";
  o["deviceName"] = "";
  o["deviceBrand"] = "";
  o["deviceModel"] = "";
  o["countryCode"] = "--";
  o["countryName"] = "Unknown";
  o["current"] = true;
  o["factors"] = boost::json::array{"password"};
  o["secret"] = token;
  o["mfaUpdatedAt"] = "";
  return o;
}

}  // namespace sluice::emulator
