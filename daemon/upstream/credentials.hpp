#pragma once

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
  virtual ~Credentials() = default;
  // The handshake headers for the next attempt, or nullopt with `error` set when they could not
  // be obtained (the attempt then counts as failed and is retried with backoff).
  virtual boost::asio::awaitable<std::optional<Headers>> headers(std::string& error) = 0;
  // The server refused the last headers (401/403): drop anything cached so the next call
  // obtains fresh ones.
  virtual void rejected() {}
  virtual std::string_view kind() const = 0;
};

struct RestTarget {
  net::Endpoint endpoint;
  std::shared_ptr<boost::asio::ssl::context> tls;  // set for https
  bool verify = true;
};

std::unique_ptr<Credentials> make_credentials(const config::AppwriteConfig& appwrite,
                                              RestTarget rest);

}  // namespace sluice::upstream
