#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "core/json.hpp"
#include "core/query.hpp"
#include "emulator/directory.hpp"
#include "emulator/fanout/fanout.hpp"

// The protocol side of appwrite-emulator: handshake, client messages, delivery, REST and
// control endpoints as plain functions over plain data. The socket side (server.hpp) only moves
// bytes; everything a test may want to check without sockets is here.
namespace sluice::emulator {

struct Options {
  Profile profile = Profile::v1_9;
  std::vector<std::string> projects;  // known project ids; "test" when none is given
  std::string api_key;                // X-Appwrite-Key for the users endpoints; empty: none works
  bool dev_errors = false;            // _APP_ENV=development: no error masking
};

// Appwrite's inbound-message limit (§8): more than 32 messages within 60 s are refused. A
// sliding window, so a test sending 33 messages in a burst is refused whatever the wall clock
// says. Refused messages count too, as Appwrite's abuse counter does.
class MessageRate {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::size_t kLimit = 32;
  static constexpr Clock::duration kWindow = std::chrono::seconds(60);

  bool allow(Clock::time_point now);

 private:
  std::array<Clock::time_point, kLimit> ring_{};
  std::size_t count_ = 0;
  std::size_t next_ = 0;
};

struct Subscription {
  std::string id;
  std::vector<std::string> requested;   // channels as the client named them
  std::vector<std::string> channels;    // after convert_channels (account rewriting)
  std::vector<Query> queries;           // empty: select-all
  std::vector<std::string> query_json;  // as sent, echoed in responses
};

// Protocol state of one realtime connection. Owned by its Peer; read by the Engine.
struct Connection {
  std::uint64_t id = 0;
  std::string project;
  std::optional<User> user;  // a copy: later changes to the user need a reconnect, as in Appwrite
  std::string session_id;    // the session the handshake authenticated with, if any
  std::vector<std::string> roles;
  std::vector<std::string> url_channels;    // channels[] of the handshake URL, as given
  std::vector<std::string> channels;        // 1.8: converted URL channels
  std::vector<Subscription> subscriptions;  // 1.9
  MessageRate rate;
  std::string remote;
};

// The socket side of a realtime connection as the Engine sees it. Implemented by the WebSocket
// session (server.cpp) and by fakes in unit tests; lives on the io_context thread.
class Peer {
 public:
  virtual ~Peer() = default;
  Connection& connection() { return connection_; }
  const Connection& connection() const { return connection_; }
  // Queues one text frame; never blocks.
  virtual void send(std::string frame) = 0;
  // Closes the TCP connection without a close frame (how Appwrite drops a client).
  virtual void drop() = 0;
  // Frames queued and not yet written: the load generator waits while this is high.
  virtual std::size_t backlog() const = 0;
  // Whether the connection is gone (dropped, closing, or detached).
  virtual bool closed() const = 0;

 protected:
  Connection connection_;
};

// What a handshake or a message produces: frames to send, then maybe a TCP close.
struct Outcome {
  std::vector<std::string> frames;
  bool close = false;
};

using Headers = std::map<std::string, std::string, std::less<>>;  // names in lower case

struct HttpRequest {
  std::string method;
  std::string target;  // path and query
  Headers headers;
  std::string body;
  bool loopback = true;  // the peer address is a loopback address
};

struct HttpAnswer {
  unsigned status = 200;
  std::string body;  // JSON
  std::vector<std::pair<std::string, std::string>> headers;
};

// The body of POST /_emulator/publish, validated.
struct PublishRequest {
  std::string event;
  std::map<std::string, std::string> params;
  std::string database_type = "tablesdb";
  boost::json::object payload;
  std::vector<std::string> read{"any"};
  std::string project;
};

// A change computed once and delivered to many connections. `payload` is padded for simdjson.
struct PreparedEvent {
  std::string project;
  Fanout fanout;
  std::string head;  // {"type":"event","data":{"events":[…],"channels":[…],"timestamp":"
  std::string payload;
};

// Appends the rest of an event frame to `out` (which holds nothing yet).
void build_event_frame(std::string& out, const PreparedEvent& event, std::string_view timestamp,
                       std::string_view payload, std::string_view subscriptions_suffix);

// The server's state and protocol rules. One per process, owned by main, used only on the
// io_context thread.
class Engine {
 public:
  explicit Engine(Options options);

  const Options& options() const { return options_; }
  Directory& directory() { return directory_; }
  std::string_view version() const;

  // Loads --fixtures: {"projects":[…]?, "users":[{"id","email","password","name","teams",
  // "labels","secret"?, "email_verified"?}]}. Returns an error message, empty on success.
  std::string load_fixtures(std::string_view json);

  // Runs the handshake for a WebSocket upgrade of `target` with `headers`: fills `conn` and
  // returns the `connected` frame, or an `error` frame and close.
  Outcome open(Connection& conn, std::string_view target, const Headers& headers);
  // Registers a peer whose handshake succeeded, so that events reach it.
  void attach(const std::shared_ptr<Peer>& peer);
  void detach(std::uint64_t connection_id);
  std::uint64_t next_connection_id() { return ++last_connection_id_; }

  // One inbound text message of an open connection.
  Outcome on_message(Connection& conn, std::string_view text, MessageRate::Clock::time_point now);

  // Delivery rule (§7): whether `conn` receives `event` with `payload`; in 1.9 appends
  // `,"subscriptions":[…]` to `suffix`.
  bool route(const Connection& conn, const PreparedEvent& event, JsonBytes payload,
             std::string& suffix) const;

  std::variant<PublishRequest, std::string> parse_publish(const boost::json::value& body) const;
  std::variant<PreparedEvent, std::string> prepare(const PublishRequest& request) const;
  // Computes and delivers one change; answers the publish request.
  boost::json::object publish(const PreparedEvent& event);

  std::vector<std::shared_ptr<Peer>> peers() const;

  // REST and control endpoints other than /_emulator/stream (which awaits, see server.cpp).
  HttpAnswer handle_http(const HttpRequest& request);

  // An Appwrite error body {"message","code","type","version"}.
  HttpAnswer rest_error(unsigned status, std::string_view type, std::string_view message) const;
  // The `error` frame for `code`, masked as in production unless --dev-errors.
  std::string error_frame(int code, std::string_view message, bool handshake) const;

 private:
  struct Auth {
    const User* user = nullptr;
    std::string session_id;
    unsigned error = 0;  // 401 or 403 when authentication failed
    std::string type;
    std::string message;
  };
  // `realtime`: a WebSocket handshake, which first carries out the session changes a test
  // scheduled for it (Directory::handshake); REST calls leave them waiting.
  Auth authenticate(std::string_view project, const Headers& headers, std::string_view query_jwt,
                    bool realtime);
  bool known_project(std::string_view project) const;
  std::string mint_subscription_id();
  std::string response_frame(std::string_view to, boost::json::object data) const;
  Outcome message_error(int code, std::string_view message, bool close = false) const;
  Outcome on_authentication(Connection& conn, const boost::json::value* data);
  Outcome on_subscribe(Connection& conn, const boost::json::value* data);
  Outcome on_unsubscribe(Connection& conn, const boost::json::value* data);
  void rebind(Connection& conn, const User* user);

  HttpAnswer handle_control(const HttpRequest& request, std::string_view path);
  HttpAnswer handle_rest(const HttpRequest& request, std::string_view path);
  HttpAnswer create_user(const boost::json::value& body);
  // POST /v1/users/{userId}/sessions and /jwts, DELETE /v1/users/{userId}/sessions/{sessionId};
  // `rest` is the path after /v1/users/ (accounts.cpp).
  HttpAnswer users_api(std::string_view method, std::string_view rest,
                       const boost::json::object& params);
  // /_emulator/sessions and /_emulator/clock (accounts.cpp).
  HttpAnswer session_control(std::string_view method, std::string_view path,
                             const boost::json::value& body);
  boost::json::array connections_json() const;

  Options options_;
  Directory directory_;
  std::map<std::uint64_t, std::shared_ptr<Peer>> peers_;
  std::uint64_t last_connection_id_ = 0;
};

// Turns a JSON object into a user; used by /_emulator/users and --fixtures.
std::variant<User, std::string> user_from_json(const boost::json::object& o);

}  // namespace sluice::emulator
