#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
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
#include "emulator/store.hpp"

// The protocol side of appwrite-emulator: handshake, client messages, delivery, REST and
// control endpoints as plain functions over plain data. The socket side (server.hpp) only moves
// bytes; everything a test may want to check without sockets is here.
namespace sluice::emulator {

struct Options {
  Profile profile = Profile::v1_9;
  std::vector<Project> projects;  // known projects; one, "test", when none is given
  std::string api_key;            // X-Appwrite-Key for the users endpoints; empty: none works
  bool dev_errors = false;        // _APP_ENV=development: no error masking
  // How long the handshake's lookups take before `connected` (Appwrite's onOpen reads the
  // project, the user and the abuse counter first). A message other than `ping` that arrives
  // in that time finds no project context, as on a real server (see Engine::on_message).
  std::chrono::milliseconds open_delay{50};
};

// The owner team a project gets when --fixtures does not name one.
inline constexpr std::string_view kDefaultOwnerTeam = "owners";

// One of Appwrite's abuse limits: at most `limit` hits per 60 s. Appwrite counts in fixed
// minutes aligned to the clock and does not count a refused hit (utopia-php/abuse
// TimeLimit::check), so whether a burst is refused depends on where a minute starts. The
// emulator refuses whenever some alignment would: at most `limit` accepted hits within any
// 60 s. A client that passes here passes Appwrite wherever its minutes fall, and a test does
// not depend on the wall clock. Owned by its Connection (messages) or the Engine (connects);
// used on the io_context thread, like everything in the emulator.
class RateWindow {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr Clock::duration kWindow = std::chrono::seconds(60);

  explicit RateWindow(std::size_t limit) : limit_(limit) {}
  bool allow(Clock::time_point now);

 private:
  std::size_t limit_;
  std::deque<Clock::time_point> accepted_;
};

// One channel of a subscription. Appwrite keeps queries per (subscription, channel), so
// re-using a subscription id replaces the queries of the channels it lists and keeps the
// others' (Adapter/Realtime.php subscribe).
struct SubscribedChannel {
  std::string name;                     // as Appwrite stores it: after convert_channels
  std::vector<Query> queries;           // empty: select-all
  std::vector<std::string> query_json;  // as sent, echoed in responses
};

struct Subscription {
  std::string id;
  std::vector<std::string> requested;  // every channel as the client named it, for rebinding
  std::vector<SubscribedChannel> channels;
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
  RateWindow rate{32};                      // inbound messages, pings included
  std::string remote;                       // peer address as IP:PORT ([IPv6]:PORT)
  bool opened = false;                      // the handshake succeeded: project context exists
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
  std::string user_id;  // the `userId` param: whose roles a team or membership change refreshes
  std::string head;     // {"type":"event","data":{"events":[…],"channels":[…],"timestamp":"
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

  // One inbound text message. A connection whose handshake has not finished yet (open()
  // not run) has no project context: everything but `ping` is refused as Appwrite does.
  Outcome on_message(Connection& conn, std::string_view text);

  // The clock of the abuse limits: steady time plus what POST /_emulator/clock advanced, so a
  // test can move past a 60 s window without sleeping.
  RateWindow::Clock::time_point now() const { return RateWindow::Clock::now() + clock_offset_; }

  // Delivery rule (§7): whether `conn` receives `event` with `payload`; in 1.9 appends
  // `,"subscriptions":[…]` to `suffix`.
  bool route(const Connection& conn, const PreparedEvent& event, JsonBytes payload,
             std::string& suffix) const;

  std::variant<PublishRequest, std::string> parse_publish(const boost::json::value& body) const;
  std::variant<PreparedEvent, std::string> prepare(const PublishRequest& request) const;
  // Computes and delivers one change; answers the publish request.
  boost::json::object publish(const PreparedEvent& event);

  std::vector<std::shared_ptr<Peer>> peers() const;

  // Whether POST /_emulator/outage holds realtime down now (by the emulator's clock, so
  // POST /_emulator/clock shortens it): upgrades are refused and no connection is kept.
  bool realtime_down() const { return outage_until_ && now() < *outage_until_; }

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
  const Project* find_project(std::string_view id) const;
  std::string mint_subscription_id();
  std::string response_frame(std::string_view to, boost::json::object data) const;
  Outcome message_error(int code, std::string_view message, bool close = false) const;
  Outcome on_authentication(Connection& conn, const boost::json::value* data);
  Outcome on_subscribe(Connection& conn, const boost::json::value* data);
  Outcome on_unsubscribe(Connection& conn, const boost::json::value* data);
  // Binds the connection to `user` (nullptr: a guest) with fresh roles and re-subscribes
  // every subscription as Appwrite does on `authentication` and `permissionsChanged`.
  void rebind(Connection& conn, const User* user);
  // permissionsChanged: re-subscribes the connections of `user_id` with fresh roles.
  void refresh_permissions(std::string_view project, std::string_view user_id);

  HttpAnswer handle_control(const HttpRequest& request, std::string_view path);
  HttpAnswer handle_rest(const HttpRequest& request, std::string_view path);
  HttpAnswer create_user(const boost::json::value& body);
  // POST /v1/users/{userId}/sessions and /jwts, DELETE /v1/users/{userId}/sessions/{sessionId};
  // `rest` is the path after /v1/users/ (accounts.cpp).
  HttpAnswer users_api(std::string_view method, std::string_view rest,
                       const boost::json::object& params);
  // /_emulator/sessions (accounts.cpp).
  HttpAnswer session_control(std::string_view method, const boost::json::value& body);
  boost::json::array connections_json() const;
  // GET and POST /_emulator/outage.
  HttpAnswer outage_control(std::string_view method, const boost::json::value& body);
  // The list endpoints (rest_list.hpp) for an authenticated caller.
  std::optional<HttpAnswer> list_api(const HttpRequest& request, std::string_view path,
                                     std::string_view project);

  Options options_;
  Directory directory_;
  std::map<std::uint64_t, std::shared_ptr<Peer>> peers_;
  std::uint64_t last_connection_id_ = 0;
  // Connects per (IP, path), Appwrite's 128 per 60 s.
  std::map<std::string, RateWindow, std::less<>> connects_;
  RateWindow::Clock::duration clock_offset_{};
  std::optional<RateWindow::Clock::time_point> outage_until_;
  Store store_;
};

// Turns a JSON object into a user; used by /_emulator/users and --fixtures.
std::variant<User, std::string> user_from_json(const boost::json::object& o);

}  // namespace sluice::emulator
