#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>

#include "config/config.hpp"
#include "daemon/upstream/rest.hpp"
#include "net/endpoint.hpp"

// How the realtime client authenticates each connection attempt. Appwrite Realtime accepts
// only a user's session (cookie / X-Appwrite-Session) or a JWT; project API keys are not read
// on the realtime path, so the api_key and email forms obtain one of those first.
// Owned by the RealtimeClient; called on the event loop before each connect.
namespace sluice::upstream {

class Credentials {
 public:
  using TimePoint = std::chrono::system_clock::time_point;

  virtual ~Credentials() = default;
  // The handshake headers for the next attempt, or nullopt with `error` set when they could not
  // be obtained (the attempt then counts as failed and is retried with backoff).
  virtual boost::asio::awaitable<std::optional<Headers>> headers(std::string& error) = 0;
  // The server refused the last headers (401/403) or took them for a guest's: drop anything
  // cached so the next call obtains fresh ones.
  virtual void rejected() {}
  // The server's clock reads `server_now` (its Date header): whether the headers last returned
  // are still worth presenting (not near their expiry by that clock). A form that tracks
  // expiries adopts the server's clock for its later decisions.
  virtual bool current_at(TimePoint /*server_now*/) { return true; }
  virtual std::string_view kind() const = 0;
};

struct RestTarget {
  net::Endpoint endpoint;
  std::shared_ptr<boost::asio::ssl::context> tls;  // set for https
  bool verify = true;
};

std::unique_ptr<Credentials> make_credentials(const config::AppwriteConfig& appwrite,
                                              RestTarget rest);

// What the api_key form holds on the server, with the expiries in the server's time: a session
// of the service user that sluice created itself, and a JWT bound to it.
struct ServiceTokens {
  std::optional<Credentials::TimePoint> session_created;  // unset: no session
  std::optional<Credentials::TimePoint> session_expire;
  std::optional<Credentials::TimePoint> jwt_expire;  // unset: no JWT
};

// What the api_key form does before a connect, judged by the server's clock. Appwrite reads a
// JWT only at the handshake, so the one presented must have a good part of its life left then;
// and it must not outlive its session (a server after 1.9.6 makes such a connection a guest,
// 1.9.6 does once the expired session is deleted). So the session is replaced well before it
// expires, and a JWT is minted for at most half of what is left of its session.
struct TokenPlan {
  enum class Step { create_session, mint_jwt, use_jwt };
  Step step = Step::use_jwt;
  std::chrono::seconds jwt_duration{0};  // what to ask for when minting (Appwrite's `duration`)

  // Appwrite's default JWT lifetime (its maximum is 3600 s).
  static constexpr std::chrono::seconds kJwtLifetime{900};
  // A session is replaced when less than this is left (or less than half its lifetime, for
  // projects with short sessions).
  static constexpr std::chrono::seconds kSessionMargin{1800};
  // A JWT is re-minted when less than this is left (or less than a third of a shorter one).
  static constexpr std::chrono::seconds kJwtMargin{300};
};
TokenPlan plan_tokens(const ServiceTokens& tokens, Credentials::TimePoint server_now);

}  // namespace sluice::upstream
