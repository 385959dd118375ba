#include "emulator/engine.hpp"

#include <algorithm>
#include <charconv>
#include <set>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "core/event.hpp"
#include "emulator/rest_list.hpp"

namespace sluice::emulator {

namespace json = boost::json;

namespace {

// How far one POST /_emulator/clock may move the clock: past a year, Appwrite's default session
// length.
constexpr double kMaxClockAdvance = 40000000;

json::array string_array(const std::vector<std::string>& items) {
  json::array a;
  a.reserve(items.size());
  for (const auto& s : items)
    a.emplace_back(s);
  return a;
}

void append_string_array(std::string& out, const std::vector<std::string>& items) {
  out += '[';
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0)
      out += ',';
    append_json_string(out, items[i]);
  }
  out += ']';
}

bool intersects(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  for (const auto& x : a) {
    for (const auto& y : b) {
      if (x == y)
        return true;
    }
  }
  return false;
}

std::string header(const Headers& headers, std::string_view name) {
  const auto it = headers.find(name);
  return it == headers.end() ? std::string{} : it->second;
}

// Cookie: a=b; c=d → the value of `name`, or nullopt when absent.
std::optional<std::string> cookie(const Headers& headers, std::string_view name) {
  std::string_view text = [&]() -> std::string_view {
    const auto it = headers.find("cookie");
    return it == headers.end() ? std::string_view{} : std::string_view(it->second);
  }();
  while (!text.empty()) {
    const auto end = text.find(';');
    auto item = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    while (!item.empty() && item.front() == ' ')
      item.remove_prefix(1);
    const auto eq = item.find('=');
    if (eq != std::string_view::npos && item.substr(0, eq) == name) {
      return std::string(item.substr(eq + 1));
    }
  }
  return std::nullopt;
}

// The host part of an Origin header value ("http://localhost:3000" → "localhost").
std::string origin_host(std::string_view origin) {
  auto rest = origin;
  if (const auto scheme = rest.find("://"); scheme != std::string_view::npos) {
    rest = rest.substr(scheme + 3);
  }
  rest = rest.substr(0, rest.find('/'));
  if (const auto at = rest.rfind('@'); at != std::string_view::npos)
    rest = rest.substr(at + 1);
  if (!rest.empty() && rest.front() == '[')
    return std::string(rest.substr(0, rest.find(']') + 1));
  return std::string(rest.substr(0, rest.find(':')));
}

int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

// PHP's urldecode: %XX and '+' as space; a malformed escape is kept as written.
std::string url_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out += ' ';
    } else if (text[i] == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 &&
               hex_value(text[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

// The decoded key=value pairs of a request target's query. Hand-written rather than Boost.URL
// because clients send PHP-style keys (channels[]=…) with raw brackets, which RFC 3986 forbids
// in a query and Boost.URL therefore rejects.
std::vector<std::pair<std::string, std::string>> query_params(std::string_view target) {
  std::vector<std::pair<std::string, std::string>> out;
  const auto q = target.find('?');
  if (q == std::string_view::npos)
    return out;
  auto rest = target.substr(q + 1);
  if (const auto hash = rest.find('#'); hash != std::string_view::npos)
    rest = rest.substr(0, hash);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const auto item = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    if (item.empty())
      continue;
    const auto eq = item.find('=');
    out.emplace_back(url_decode(item.substr(0, eq)), eq == std::string_view::npos
                                                         ? std::string{}
                                                         : url_decode(item.substr(eq + 1)));
  }
  return out;
}

std::string target_path(std::string_view target) {
  return url_decode(target.substr(0, target.find('?')));
}

const json::value* member(const json::object& o, std::string_view key) {
  return o.if_contains(key);
}

std::optional<std::vector<std::string>> strings_of(const json::value* v) {
  std::vector<std::string> out;
  if (v == nullptr || v->is_null())
    return out;
  if (!v->is_array())
    return std::nullopt;
  for (const auto& item : v->as_array()) {
    if (!item.is_string())
      return std::nullopt;
    out.emplace_back(item.as_string());
  }
  return out;
}

void add_unique(std::vector<std::string>& list, const std::string& item) {
  if (std::find(list.begin(), list.end(), item) == list.end())
    list.push_back(item);
}

// Appwrite's subscribe for one subscription and one request row: each channel the row lists
// (converted) gets the row's queries, replacing what it had; the subscription's other channels
// keep theirs.
void upsert(Subscription& sub, const std::vector<std::string>& requested,
            const std::vector<std::string>& converted, const std::vector<Query>& queries,
            const std::vector<std::string>& query_json) {
  for (const auto& channel : requested)
    add_unique(sub.requested, channel);
  for (const auto& name : converted) {
    auto it = std::find_if(sub.channels.begin(), sub.channels.end(),
                           [&](const SubscribedChannel& c) { return c.name == name; });
    if (it == sub.channels.end()) {
      sub.channels.push_back(SubscribedChannel{name, queries, query_json});
    } else {
      it->queries = queries;
      it->query_json = query_json;
    }
  }
}

}  // namespace

bool RateWindow::allow(Clock::time_point now) {
  while (!accepted_.empty() && now - accepted_.front() >= kWindow)
    accepted_.pop_front();
  if (accepted_.size() >= limit_)
    return false;
  accepted_.push_back(now);
  return true;
}

void build_event_frame(std::string& out, const PreparedEvent& event, std::string_view timestamp,
                       std::string_view payload, std::string_view subscriptions_suffix) {
  constexpr std::string_view kPayloadKey = "\",\"payload\":";
  out.reserve(event.head.size() + timestamp.size() + kPayloadKey.size() + payload.size() +
              subscriptions_suffix.size() + 2);
  out += event.head;
  out += timestamp;
  out += kPayloadKey;
  out += payload;
  out += subscriptions_suffix;
  out += "}}";
}

std::variant<User, std::string> user_from_json(const json::object& o) {
  User user;
  const auto text = [&](std::string_view key, std::string& into) {
    const auto* v = member(o, key);
    if (v == nullptr || v->is_null())
      return true;
    if (!v->is_string())
      return false;
    into = std::string(v->as_string());
    return true;
  };
  if (!text("id", user.id) || !text("email", user.email) || !text("password", user.password) ||
      !text("name", user.name)) {
    return std::string("id, email, password and name must be strings");
  }
  if (user.id.empty())
    user.id = random_hex(10);
  auto teams = strings_of(member(o, "teams"));
  auto labels = strings_of(member(o, "labels"));
  if (!teams || !labels)
    return std::string("teams and labels must be arrays of strings");
  user.teams = std::move(*teams);
  user.labels = std::move(*labels);
  if (const auto* v = member(o, "email_verified"); v != nullptr && v->is_bool()) {
    user.email_verified = v->as_bool();
  }
  return user;
}

Engine::Engine(Options options) : options_(std::move(options)) {
  if (options_.projects.empty())
    options_.projects.push_back(Project{"test", std::string(kDefaultOwnerTeam)});
}

std::string_view Engine::version() const {
  // Appwrite's main branch still calls itself 1.9.6 (APP_VERSION_STABLE), so a client cannot
  // tell it from 1.9.6 by asking: it must handle both execution shapes.
  return at_least_1_9(options_.profile) ? "1.9.6" : "1.8.1";
}

const Project* Engine::find_project(std::string_view id) const {
  for (const auto& project : options_.projects) {
    if (project.id == id)
      return &project;
  }
  return nullptr;
}

std::string Engine::load_fixtures(std::string_view text) {
  json::error_code ec;
  const auto doc = json::parse(text, ec);
  if (ec || !doc.is_object())
    return "fixtures: not a JSON object";
  const auto& root = doc.as_object();
  if (const auto* projects = member(root, "projects")) {
    if (!projects->is_array())
      return "fixtures: projects must be an array";
    for (const auto& item : projects->as_array()) {
      Project project{{}, std::string(kDefaultOwnerTeam)};
      if (item.is_string()) {
        project.id = std::string(item.as_string());
      } else if (const auto* o = item.if_object();
                 o != nullptr && o->contains("id") && o->at("id").is_string()) {
        project.id = std::string(o->at("id").as_string());
        if (const auto* team = o->if_contains("team")) {
          if (!team->is_string() || team->as_string().empty())
            return "fixtures: project " + project.id + ": team must be a non-empty string";
          project.owner_team = std::string(team->as_string());
        }
      } else {
        return "fixtures: every project must be an id or {\"id\": …, \"team\"?: …}";
      }
      if (project.id.empty())
        return "fixtures: a project id must not be empty";
      const auto known = std::find_if(options_.projects.begin(), options_.projects.end(),
                                      [&](const Project& p) { return p.id == project.id; });
      if (known != options_.projects.end()) {
        *known = std::move(project);
      } else {
        options_.projects.push_back(std::move(project));
      }
    }
  }
  const auto* users = member(root, "users");
  if (users == nullptr)
    return {};
  if (!users->is_array())
    return "fixtures: users must be an array";
  for (const auto& item : users->as_array()) {
    if (!item.is_object())
      return "fixtures: every user must be an object";
    auto parsed = user_from_json(item.as_object());
    if (auto* error = std::get_if<std::string>(&parsed))
      return "fixtures: " + *error;
    auto user = std::get<User>(std::move(parsed));
    const auto id = user.id;
    if (auto error = directory_.put_user(std::move(user)); !error.empty()) {
      return "fixtures: user " + id + ": " + error;
    }
    if (const auto* secret = member(item.as_object(), "secret")) {
      if (!secret->is_string() || secret->as_string().empty()) {
        return "fixtures: user " + id + ": secret must be a non-empty string";
      }
      directory_.create_session(id, std::string(secret->as_string()));
    }
  }
  return {};
}

std::string Engine::error_frame(int code, std::string_view message, bool handshake) const {
  bool masked = !options_.dev_errors && (code == 0 || code >= 500);
  // 1.9 keeps the text of a handshake 1008; 1.8 masked it too (protocol reference §5).
  if (masked && handshake && code == 1008 && at_least_1_9(options_.profile))
    masked = false;
  std::string out = R"({"type":"error","data":{"code":)";
  out += std::to_string(code);
  out += R"(,"message":)";
  append_json_string(out, masked ? std::string_view("Error: Server Error") : message);
  out += "}}";
  return out;
}

Outcome Engine::message_error(int code, std::string_view message, bool close) const {
  return Outcome{{error_frame(code, message, false)}, close};
}

std::string Engine::response_frame(std::string_view to, json::object data) const {
  json::object frame;
  frame["type"] = "response";
  json::object body;
  body["to"] = to;
  body["success"] = true;
  for (auto& [key, value] : data)
    body[key] = std::move(value);
  frame["data"] = std::move(body);
  return json::serialize(frame);
}

std::string Engine::mint_subscription_id() {
  // Appwrite's ID::unique(): 13 hex digits of microseconds, then 7 random hex digits.
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  std::array<char, 20> buf{};
  const auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), micros, 16);
  std::string id(buf.data(), end);
  if (id.size() > 13)
    id.erase(0, id.size() - 13);
  return id + random_hex(4).substr(0, 7);
}

Engine::Auth Engine::authenticate(std::string_view project, const Headers& headers,
                                  std::string_view query_jwt, bool realtime) {
  if (realtime)
    directory_.handshake();
  Auth auth;
  const std::string name = "a_session_" + std::string(project);
  std::optional<std::string> token = cookie(headers, name);
  if (!token)
    token = cookie(headers, name + "_legacy");
  if (!token) {
    if (auto h = header(headers, "x-appwrite-session"); !h.empty())
      token = std::move(h);
  }
  if (!token) {
    if (auto fallback = header(headers, "x-fallback-cookies"); !fallback.empty()) {
      json::error_code ec;
      const auto v = json::parse(fallback, ec);
      if (!ec && v.is_object()) {
        if (const auto* t = v.as_object().if_contains(name); t != nullptr && t->is_string()) {
          token = std::string(t->as_string());
        }
      }
    }
  }
  if (token) {
    // An unknown, revoked or expired session is a guest, not an error (Appwrite's
    // sessionVerify).
    if (const auto* session = directory_.session_for_token(*token)) {
      auth.user = directory_.find_user(session->user_id);
      auth.session_id = session->id;
    }
  }

  std::string jwt = header(headers, "x-appwrite-jwt");
  if (jwt.empty())
    jwt = std::string(query_jwt);
  if (jwt.empty())
    return auth;
  if (auth.user != nullptr) {
    auth.error = 403;
    auth.type = "user_jwt_and_cookie_set";
    auth.message =
        "JWT and cookie used in the same request. Use either `setJWT` or `setCookie`. Learn "
        "about which authentication method to use in the SSR docs: "
        "https://appwrite.io/docs/products/auth/server-side-rendering";
    return auth;
  }
  // 1.8 and 1.9.6 look only for the JWT's session; later servers also check that it has not
  // expired. Either way a JWT without a usable session is a guest, with no error.
  const auto rule =
      options_.profile == Profile::main ? JwtSessionRule::gone_or_expired : JwtSessionRule::gone;
  auto verified = directory_.verify_jwt(jwt, rule);
  if (auto* error = std::get_if<std::string>(&verified)) {
    auth.error = 401;
    auth.type = "user_jwt_invalid";
    auth.message = std::move(*error);
    return auth;
  }
  auto& identity = std::get<JwtIdentity>(verified);
  auth.user = identity.user;
  if (auth.user != nullptr)
    auth.session_id = std::move(identity.session_id);
  return auth;
}

Outcome Engine::open(Connection& conn, std::string_view target, const Headers& headers) {
  const auto fail = [&](int code, std::string_view message) {
    return Outcome{{error_frame(code, message, true)}, true};
  };
  std::string query_project;
  std::string query_jwt;
  struct SlotQuery {
    std::string name;  // channel with '.' → '_'
    int slot;
    std::string query;
  };
  std::vector<SlotQuery> slot_queries;
  for (auto& [key, value] : query_params(target)) {
    if (key == "project") {
      query_project = std::move(value);
    } else if (key == "jwt") {
      query_jwt = std::move(value);
    } else if (key == "channels[]") {
      conn.url_channels.push_back(std::move(value));
    } else if (const auto open_bracket = key.find('[');
               open_bracket != std::string::npos && key.ends_with("][]")) {
      // <channel>[<slot>][]=<query> (1.9 URL per-channel queries)
      const std::string_view digits =
          std::string_view(key).substr(open_bracket + 1, key.size() - open_bracket - 4);
      int slot = 0;
      const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), slot);
      if (ec != std::errc{} || end != digits.data() + digits.size() || slot < 0)
        continue;
      std::string name(key.substr(0, open_bracket));
      std::replace(name.begin(), name.end(), '.', '_');
      slot_queries.push_back({std::move(name), slot, std::move(value)});
    }
  }

  // Project: header first, then the parameter (1.9); parameter first in 1.8.
  const auto header_project = header(headers, "x-appwrite-project");
  std::string project = at_least_1_9(options_.profile)
                            ? (header_project.empty() ? query_project : header_project)
                            : (query_project.empty() ? header_project : query_project);
  if (project.empty())
    project = "console";
  if (find_project(project) == nullptr)
    return fail(1008, "Missing or unknown project ID");
  conn.project = project;

  // The checks run in Appwrite's order (app/realtime.php onOpen): credentials, then the
  // connect limit, then the Origin, so a refused credential does not spend a connect.
  // ?jwt= exists only after 1.9.6 (app/init/realtime/connection.php on main).
  const auto auth = authenticate(
      project, headers,
      options_.profile == Profile::main ? std::string_view(query_jwt) : std::string_view(), true);
  if (auth.error != 0)
    return fail(static_cast<int>(auth.error), auth.message);

  // 128 connects per 60 s per (IP, path); the path is the URI without its query string.
  const auto remote = std::string_view(conn.remote);
  std::string key(remote.substr(0, remote.rfind(':')));
  key += ' ';
  key += target.substr(0, target.find('?'));
  auto window = connects_.try_emplace(std::move(key), 128).first;
  if (!window->second.allow(now()))
    return fail(1013, "Too many requests");

  if (const auto origin = header(headers, "origin"); !origin.empty() && project != "console") {
    const auto host = origin_host(origin);
    if (host != "localhost") {
      return fail(1008, "Invalid Origin. Register your new client (" + host +
                            ") as a new Web platform on your project console dashboard");
    }
  }

  if (auth.user != nullptr)
    conn.user = *auth.user;
  conn.session_id = auth.session_id;
  const User* user = conn.user ? &*conn.user : nullptr;
  conn.roles = connection_roles(user);

  json::object data;
  if (options_.profile == Profile::v1_8) {
    if (conn.url_channels.empty())
      return fail(1008, "Missing channels");
    conn.channels = convert_channels(Profile::v1_8, conn.url_channels, user);
    data["channels"] = string_array(conn.channels);
  } else {
    // Group the URL channels into subscriptions by slot; channels without queries go to slot 0.
    struct Slot {
      std::vector<std::string> requested;
      std::vector<std::string> query_json;
    };
    std::map<int, Slot> slots;
    for (const auto& channel : conn.url_channels) {
      std::string name = channel;
      std::replace(name.begin(), name.end(), '.', '_');
      bool any = false;
      for (const auto& q : slot_queries) {
        if (q.name != name)
          continue;
        any = true;
        auto& slot = slots[q.slot];
        add_unique(slot.requested, channel);
        add_unique(slot.query_json, q.query);
      }
      if (!any)
        add_unique(slots[0].requested, channel);
    }
    bool dense = true;
    int expected = 0;
    std::vector<std::pair<int, Subscription>> subscriptions;
    for (auto& [index, slot] : slots) {
      dense = dense && index == expected++;
      std::vector<Query> queries;
      for (const auto& text : slot.query_json) {
        std::string error;
        auto query = parse_query_json(text, error);
        if (!query)
          return fail(1008, "Invalid query: " + error);
        queries.push_back(std::move(*query));
      }
      Subscription sub;
      sub.id = mint_subscription_id();
      upsert(sub, slot.requested, convert_channels(options_.profile, slot.requested, user), queries,
             slot.query_json);
      subscriptions.emplace_back(index, std::move(sub));
    }
    conn.channels = convert_channels(options_.profile, conn.url_channels, user);
    data["channels"] = string_array(conn.channels);
    if (dense) {
      json::array ids;
      for (const auto& [index, sub] : subscriptions)
        ids.emplace_back(sub.id);
      data["subscriptions"] = std::move(ids);
    } else {
      json::object ids;
      for (const auto& [index, sub] : subscriptions)
        ids[std::to_string(index)] = sub.id;
      data["subscriptions"] = std::move(ids);
    }
    for (auto& [index, sub] : subscriptions)
      conn.subscriptions.push_back(std::move(sub));
  }
  conn.opened = true;
  data["user"] = user != nullptr ? json::value(account_model(*user)) : json::value(nullptr);
  json::object frame;
  frame["type"] = "connected";
  frame["data"] = std::move(data);
  return Outcome{{json::serialize(frame)}, false};
}

void Engine::attach(const std::shared_ptr<Peer>& peer) {
  peers_[peer->connection().id] = peer;
}

void Engine::detach(std::uint64_t connection_id) {
  peers_.erase(connection_id);
}

std::vector<std::shared_ptr<Peer>> Engine::peers() const {
  std::vector<std::shared_ptr<Peer>> out;
  out.reserve(peers_.size());
  for (const auto& [id, peer] : peers_)
    out.push_back(peer);
  return out;
}

Outcome Engine::on_message(Connection& conn, std::string_view text) {
  if (!at_least_1_9(options_.profile) && !conn.opened) {
    // 1.8 looks the connection's project up before anything else, pings included; without
    // one the lookup throws (code 0, masked) and the connection stays open (S@1.8.0
    // app/realtime.php onMessage).
    return message_error(0, "The connection has no project yet.");
  }
  if (!conn.rate.allow(now()))
    return message_error(1013, "Too many messages.");
  json::error_code ec;
  const auto message = json::parse(text, ec);
  if (ec || !message.is_object())
    return message_error(1003, "Message format is not valid.");
  const auto& o = message.as_object();
  const auto* type = o.if_contains("type");
  const auto* data = o.if_contains("data");
  if (type == nullptr && data == nullptr)
    return message_error(1003, "Message format is not valid.");
  if (type == nullptr || !type->is_string())
    return message_error(1003, "Message type is not valid.");
  const std::string_view kind = type->as_string();
  const bool known =
      kind == "ping" || kind == "authentication" ||
      (at_least_1_9(options_.profile) && (kind == "subscribe" || kind == "unsubscribe"));
  if (!known)
    return message_error(1003, "Message type is not valid.");
  if (kind == "ping")
    return Outcome{{R"({"type":"pong"})"}, false};
  // Every other handler needs the project context that onOpen creates last (Dispatcher.php).
  if (!conn.opened)
    return message_error(1008, "Missing project context. Reconnect to the project first.", true);
  if (kind == "authentication")
    return on_authentication(conn, data);
  if (kind == "subscribe")
    return on_subscribe(conn, data);
  return on_unsubscribe(conn, data);
}

void Engine::rebind(Connection& conn, const User* user) {
  if (user != nullptr) {
    conn.user = *user;
  } else {
    conn.user.reset();
  }
  const User* u = conn.user ? &*conn.user : nullptr;
  conn.roles = connection_roles(u);
  conn.channels = convert_channels(options_.profile, conn.url_channels, u);
  // Appwrite re-subscribes from its subscription metadata, which keeps one query list per
  // subscription (the first channel's), so every channel comes back with that list.
  for (auto& sub : conn.subscriptions) {
    std::vector<Query> queries;
    std::vector<std::string> query_json;
    if (!sub.channels.empty()) {
      queries = std::move(sub.channels.front().queries);
      query_json = std::move(sub.channels.front().query_json);
    }
    sub.channels.clear();
    upsert(sub, sub.requested, convert_channels(options_.profile, sub.requested, u), queries,
           query_json);
  }
}

void Engine::refresh_permissions(std::string_view project, std::string_view user_id) {
  const User* fresh = directory_.find_user(user_id);
  if (fresh == nullptr)
    return;
  for (const auto& [id, peer] : peers_) {
    auto& conn = peer->connection();
    // Appwrite finds the connections through its subscription tree under role user:<id>, so a
    // connection without a subscribed channel keeps its old roles.
    const bool subscribed =
        std::any_of(conn.subscriptions.begin(), conn.subscriptions.end(),
                    [](const Subscription& s) { return !s.channels.empty(); }) ||
        !conn.channels.empty();
    if (conn.project == project && conn.user && conn.user->id == user_id && subscribed)
      rebind(conn, fresh);
  }
}

Outcome Engine::on_authentication(Connection& conn, const json::value* data) {
  // The Dispatcher's messages: a missing param, then the param's validator (Text(2048)).
  const json::value* session = nullptr;
  if (data != nullptr && data->is_object())
    session = data->as_object().if_contains("session");
  if (session == nullptr)
    return message_error(1003, "Payload is not valid. Session is required");
  if (!session->is_string() || session->as_string().empty() || session->as_string().size() > 2048) {
    return message_error(1003,
                         "session: Value must be a valid string and at least 1 chars and no "
                         "longer than 2048 chars");
  }
  const User* user = directory_.user_for_token(std::string_view(session->as_string()));
  if (user == nullptr)
    return message_error(1003, "Session is not valid.");
  rebind(conn, user);
  json::object body;
  body["user"] = account_model(*user);
  return Outcome{{response_frame("authentication", std::move(body))}, false};
}

Outcome Engine::on_subscribe(Connection& conn, const json::value* data) {
  // Validators/SubscribePayload.php, with the Dispatcher's "items: " prefix.
  if (data == nullptr || data->is_null())
    return message_error(1003, "Payload is not valid. Items is required");
  const auto invalid = [&](std::string_view why) {
    return message_error(1003, "items: " + std::string(why));
  };
  if (!data->is_array())
    return invalid("Payload is not valid.");
  struct Row {
    std::string id;
    std::vector<std::string> channels;
    std::vector<Query> queries;
    std::vector<std::string> query_json;
  };
  std::vector<Row> rows;
  for (const auto& item : data->as_array()) {
    if (!item.is_object())
      return invalid("Each subscribe payload must be an object.");
    const auto& o = item.as_object();
    Row row;
    if (const auto* id = o.if_contains("subscriptionId")) {
      // CustomId: a Key, or the literal "unique()", which the handler then uses as the id.
      if (!id->is_string() || (id->as_string() != "unique()" && !valid_custom_id(id->as_string())))
        return invalid("subscriptionId is not a valid id.");
      row.id = std::string(id->as_string());
    }
    const auto* channels = o.if_contains("channels");
    if (channels == nullptr)
      return invalid("channels is not present in payload.");
    if (!channels->is_array())
      return invalid("channels is not a valid array.");
    auto names = strings_of(channels);
    if (!names)
      return invalid("channels must contain only strings.");
    row.channels = std::move(*names);
    const auto* queries = o.if_contains("queries");
    if (queries != nullptr && !queries->is_array())
      return invalid("queries is not a valid array.");
    auto texts = strings_of(queries);
    if (!texts)
      return message_error(1003, "Invalid query: every query must be a string");
    for (auto& text : *texts) {
      std::string error;
      auto query = parse_query_json(text, error);
      if (!query)
        return message_error(1003, "Invalid query: " + error);
      row.queries.push_back(std::move(*query));
      row.query_json.push_back(std::move(text));
    }
    rows.push_back(std::move(row));
  }

  const User* user = conn.user ? &*conn.user : nullptr;
  json::array answer;
  for (auto& row : rows) {
    if (row.id.empty())
      row.id = mint_subscription_id();
    auto it = std::find_if(conn.subscriptions.begin(), conn.subscriptions.end(),
                           [&](const Subscription& s) { return s.id == row.id; });
    if (it == conn.subscriptions.end()) {
      conn.subscriptions.push_back(Subscription{row.id, {}, {}});
      it = conn.subscriptions.end() - 1;
    }
    const auto converted = convert_channels(options_.profile, row.channels, user);
    upsert(*it, row.channels, converted, row.queries, row.query_json);
    json::object entry;
    entry["subscriptionId"] = row.id;
    entry["channels"] = string_array(converted);
    entry["queries"] = string_array(row.query_json);
    answer.emplace_back(std::move(entry));
  }
  json::object body;
  body["subscriptions"] = std::move(answer);
  return Outcome{{response_frame("subscribe", std::move(body))}, false};
}

Outcome Engine::on_unsubscribe(Connection& conn, const json::value* data) {
  // Validators/UnsubscribePayload.php, with the Dispatcher's "items: " prefix.
  if (data == nullptr || data->is_null())
    return message_error(1003, "Payload is not valid. Items is required");
  if (!data->is_array())
    return message_error(1003, "items: Payload is not valid.");
  std::vector<std::string> ids;
  for (const auto& item : data->as_array()) {
    const json::value* id =
        item.is_object() ? item.as_object().if_contains("subscriptionId") : nullptr;
    if (id == nullptr || !id->is_string() || id->as_string().empty()) {
      return message_error(
          1003, "items: Each unsubscribe payload must include a non-empty subscriptionId.");
    }
    ids.emplace_back(id->as_string());
  }
  json::array answer;
  for (const auto& id : ids) {
    const auto before = conn.subscriptions.size();
    std::erase_if(conn.subscriptions, [&](const Subscription& s) { return s.id == id; });
    json::object entry;
    entry["subscriptionId"] = id;
    entry["removed"] = conn.subscriptions.size() != before;
    answer.emplace_back(std::move(entry));
  }
  json::object body;
  body["subscriptions"] = std::move(answer);
  return Outcome{{response_frame("unsubscribe", std::move(body))}, false};
}

bool Engine::route(const Connection& conn, const PreparedEvent& event, JsonBytes payload,
                   std::string& suffix) const {
  if (conn.project != event.project)
    return false;
  if (!may_receive(conn.roles, event.fanout.roles))
    return false;
  if (!at_least_1_9(options_.profile))
    return intersects(conn.channels, event.fanout.channels);
  bool any = false;
  for (const auto& sub : conn.subscriptions) {
    // getSubscribers: a subscription matches through any of its channels that the event
    // carries, with that channel's queries.
    const bool matched = std::any_of(
        sub.channels.begin(), sub.channels.end(), [&](const SubscribedChannel& channel) {
          return std::find(event.fanout.channels.begin(), event.fanout.channels.end(),
                           channel.name) != event.fanout.channels.end() &&
                 matches_all(channel.queries, payload);
        });
    if (!matched)
      continue;
    suffix += any ? "," : R"(,"subscriptions":[)";
    append_json_string(suffix, sub.id);
    any = true;
  }
  if (any)
    suffix += ']';
  return any;
}

std::variant<PublishRequest, std::string> Engine::parse_publish(const json::value& body) const {
  if (!body.is_object())
    return std::string("the body must be a JSON object");
  const auto& o = body.as_object();
  PublishRequest request;
  const auto* event = o.if_contains("event");
  if (event == nullptr || !event->is_string())
    return std::string("`event` (a string) is required");
  request.event = std::string(event->as_string());
  if (const auto* params = o.if_contains("params"); params != nullptr && !params->is_null()) {
    if (!params->is_object())
      return std::string("`params` must be an object");
    for (const auto& [key, value] : params->as_object()) {
      if (value.is_string()) {
        request.params[std::string(key)] = std::string(value.as_string());
      } else if (value.is_number()) {
        request.params[std::string(key)] = json::serialize(value);
      } else {
        return std::string("`params` values must be strings");
      }
    }
  }
  if (const auto* type = o.if_contains("database_type"); type != nullptr && !type->is_null()) {
    if (!type->is_string())
      return std::string("`database_type` must be a string");
    request.database_type = std::string(type->as_string());
  }
  if (const auto* payload = o.if_contains("payload"); payload != nullptr && !payload->is_null()) {
    if (!payload->is_object())
      return std::string("`payload` must be an object");
    request.payload = payload->as_object();
  }
  if (const auto* read = o.if_contains("read")) {
    auto roles = strings_of(read);
    if (!roles)
      return std::string("`read` must be an array of strings");
    request.read = std::move(*roles);
  }
  request.project = options_.projects.front().id;
  if (const auto* project = o.if_contains("project"); project != nullptr && !project->is_null()) {
    if (!project->is_string())
      return std::string("`project` must be a string");
    request.project = std::string(project->as_string());
  }
  if (find_project(request.project) == nullptr)
    return "unknown project " + request.project;
  return request;
}

std::variant<PreparedEvent, std::string> Engine::prepare(const PublishRequest& request) const {
  auto computed =
      compute_fanout(options_.profile, request.event, request.params, request.database_type,
                     request.read, *find_project(request.project), request.payload);
  if (auto* error = std::get_if<std::string>(&computed))
    return std::move(*error);
  PreparedEvent event;
  event.project = request.project;
  event.fanout = std::get<Fanout>(std::move(computed));
  if (const auto user = request.params.find("userId"); user != request.params.end())
    event.user_id = user->second;
  event.head = R"({"type":"event","data":{"events":)";
  append_string_array(event.head, event.fanout.events);
  event.head += R"(,"channels":)";
  append_string_array(event.head, event.fanout.channels);
  event.head += R"(,"timestamp":")";
  const auto text = json::serialize(request.payload);
  event.payload.reserve(text.size() + kJsonPadding);
  event.payload = text;
  return event;
}

json::object Engine::publish(const PreparedEvent& event) {
  // Appwrite refreshes the roles before it looks for receivers (app/realtime.php), so the
  // team change itself already reaches the user as a member.
  if (event.fanout.permissions_changed && !event.user_id.empty())
    refresh_permissions(event.project, event.user_id);
  const auto timestamp = format_timestamp(std::chrono::system_clock::now());
  const JsonBytes payload{event.payload.data(), event.payload.size(), event.payload.capacity()};
  std::int64_t delivered = 0;
  std::string suffix;
  for (const auto& [id, peer] : peers_) {
    suffix.clear();
    if (!route(peer->connection(), event, payload, suffix))
      continue;
    std::string frame;
    build_event_frame(frame, event, timestamp, event.payload, suffix);
    peer->send(std::move(frame));
    ++delivered;
  }
  json::object answer;
  answer["events"] = string_array(event.fanout.events);
  answer["channels"] = string_array(event.fanout.channels);
  answer["timestamp"] = timestamp;
  answer["delivered"] = delivered;
  return answer;
}

HttpAnswer Engine::rest_error(unsigned status, std::string_view type,
                              std::string_view message) const {
  json::object body;
  body["message"] = message;
  body["code"] = status;
  body["type"] = type;
  body["version"] = version();
  return HttpAnswer{status, json::serialize(body), {}};
}

json::array Engine::connections_json() const {
  json::array list;
  for (const auto& [id, peer] : peers_) {
    const auto& conn = peer->connection();
    json::object o;
    o["id"] = conn.id;
    o["project"] = conn.project;
    o["user"] = conn.user ? json::value(conn.user->id) : json::value(nullptr);
    o["session"] = conn.session_id.empty() ? json::value(nullptr) : json::value(conn.session_id);
    o["roles"] = string_array(conn.roles);
    o["channels"] = string_array(conn.channels);
    json::array subs;
    for (const auto& sub : conn.subscriptions) {
      json::object s;
      s["subscriptionId"] = sub.id;
      json::array names;
      json::object by_channel;
      for (const auto& channel : sub.channels) {
        names.emplace_back(channel.name);
        by_channel[channel.name] = string_array(channel.query_json);
      }
      s["channels"] = std::move(names);
      // What Appwrite's subscription metadata reports: the first channel's queries.
      s["queries"] =
          sub.channels.empty() ? json::array{} : string_array(sub.channels.front().query_json);
      s["queries_by_channel"] = std::move(by_channel);
      subs.emplace_back(std::move(s));
    }
    o["subscriptions"] = std::move(subs);
    o["remote"] = conn.remote;
    list.emplace_back(std::move(o));
  }
  return list;
}

HttpAnswer Engine::create_user(const json::value& body) {
  if (!body.is_object())
    return rest_error(400, "general_argument_invalid", "expected an object");
  auto parsed = user_from_json(body.as_object());
  if (auto* error = std::get_if<std::string>(&parsed)) {
    return rest_error(400, "general_argument_invalid", *error);
  }
  auto user = std::get<User>(std::move(parsed));
  const auto id = user.id;
  if (auto error = directory_.put_user(std::move(user)); !error.empty()) {
    return rest_error(409, "user_already_exists", error);
  }
  std::string secret;
  if (const auto* s = body.as_object().if_contains("secret"); s != nullptr && s->is_string()) {
    secret = std::string(s->as_string());
  }
  const auto& session = directory_.create_session(id, std::move(secret));
  json::object answer;
  answer["userId"] = id;
  answer["session"] = Directory::session_token(session);
  answer["sessionId"] = session.id;
  return HttpAnswer{201, json::serialize(answer), {}};
}

HttpAnswer Engine::handle_http(const HttpRequest& request) {
  const std::string path = target_path(request.target);
  if (path.starts_with("/_emulator/")) {
    if (!request.loopback) {
      return rest_error(403, "general_access_forbidden",
                        "The emulator's control endpoints accept loopback clients only.");
    }
    return handle_control(request, path);
  }
  auto answer = handle_rest(request, path);
  // Appwrite's Date header, from the emulator's clock: a client that judges expiries by the
  // server's time sees the clock a test moved.
  answer.headers.emplace_back("Date", http_date(directory_.now()));
  return answer;
}

HttpAnswer Engine::handle_control(const HttpRequest& request, std::string_view path) {
  json::value body;
  if (request.method == "POST") {
    json::error_code ec;
    body = request.body.empty() ? json::value(json::object{}) : json::parse(request.body, ec);
    if (ec)
      return rest_error(400, "general_argument_invalid", "The body is not valid JSON.");
  }
  if (request.method == "GET" && path == "/_emulator/connections") {
    return HttpAnswer{200, json::serialize(connections_json()), {}};
  }
  if (request.method == "POST" && path == "/_emulator/publish") {
    auto parsed = parse_publish(body);
    if (auto* error = std::get_if<std::string>(&parsed)) {
      return rest_error(400, "general_argument_invalid", *error);
    }
    const auto& change_request = std::get<PublishRequest>(parsed);
    auto prepared = prepare(change_request);
    if (auto* error = std::get_if<std::string>(&prepared)) {
      return rest_error(400, "general_argument_invalid", *error);
    }
    const auto& event = std::get<PreparedEvent>(prepared);
    if (const auto change =
            store_change_of(change_request.event, change_request.params, change_request.payload)) {
      store_.apply(change_request.project, *change, change_request.database_type,
                   change_request.payload, event.fanout.roles, format_timestamp(directory_.now()));
    }
    return HttpAnswer{200, json::serialize(publish(event)), {}};
  }
  if (request.method == "POST" && path == "/_emulator/disconnect") {
    if (!body.is_object())
      return rest_error(400, "general_argument_invalid", "expected an object");
    const auto* user = body.as_object().if_contains("user");
    if (user != nullptr && !user->is_string() && !user->is_null()) {
      return rest_error(400, "general_argument_invalid", "`user` must be a string");
    }
    std::vector<std::shared_ptr<Peer>> victims;
    for (const auto& [id, peer] : peers_) {
      const auto& conn = peer->connection();
      if (user == nullptr || (user->is_null() && !conn.user) ||
          (user->is_string() && conn.user &&
           conn.user->id == std::string_view(user->as_string()))) {
        victims.push_back(peer);
      }
    }
    for (const auto& peer : victims)
      peer->drop();
    json::object answer;
    answer["disconnected"] = victims.size();
    return HttpAnswer{200, json::serialize(answer), {}};
  }
  if (request.method == "POST" && path == "/_emulator/users")
    return create_user(body);
  if (path == "/_emulator/outage")
    return outage_control(request.method, body);
  if (path == "/_emulator/sessions")
    return session_control(request.method, body);
  if (request.method == "POST" && path == "/_emulator/clock") {
    // One clock for everything that expires: the abuse limits' windows, sessions and JWTs.
    const auto* advance = body.is_object() ? body.as_object().if_contains("advance") : nullptr;
    if (advance == nullptr || !advance->is_number() || advance->to_number<double>() < 0 ||
        advance->to_number<double>() > kMaxClockAdvance) {
      return rest_error(400, "general_argument_invalid",
                        "`advance` must be a number of seconds between 0 and 40000000");
    }
    const auto by = std::chrono::duration<double>(advance->to_number<double>());
    clock_offset_ += std::chrono::duration_cast<RateWindow::Clock::duration>(by);
    directory_.advance(std::chrono::duration_cast<std::chrono::system_clock::duration>(by));
    json::object answer;
    answer["advanced"] = std::chrono::duration<double>(clock_offset_).count();
    answer["now"] = format_timestamp(directory_.now());
    return HttpAnswer{200, json::serialize(answer), {}};
  }
  return rest_error(404, "general_route_not_found", "Unknown control endpoint.");
}

std::optional<HttpAnswer> Engine::list_api(const HttpRequest& request, std::string_view path,
                                           std::string_view project) {
  ListCaller caller;
  const auto key = header(request.headers, "x-appwrite-key");
  // A key that is not the emulator's is no key: the request goes on as its session says.
  caller.key = !options_.api_key.empty() && key == options_.api_key;
  if (!caller.key) {
    const auto auth = authenticate(project, request.headers, "", false);
    if (auth.error != 0)
      return rest_error(auth.error, auth.type, auth.message);
    caller.roles = connection_roles(auth.user);
    // Appwrite names the user by email in a scope error, "User" when it has none.
    if (auth.user == nullptr) {
      caller.who = "User (role: guests)";
    } else {
      caller.who = (auth.user->email.empty() ? "User" : auth.user->email) + " (role: users)";
    }
  }
  return serve_list(store_.project(project), path.substr(3), query_params(request.target), caller,
                    version());
}

HttpAnswer Engine::outage_control(std::string_view method, const json::value& body) {
  if (method == "POST") {
    const auto* seconds = body.is_object() ? body.as_object().if_contains("seconds") : nullptr;
    if (seconds == nullptr || !seconds->is_number() || seconds->to_number<double>() < 0 ||
        seconds->to_number<double>() > kMaxClockAdvance) {
      return rest_error(400, "general_argument_invalid",
                        "`seconds` must be a number of seconds between 0 and 40000000");
    }
    const auto length = std::chrono::duration<double>(seconds->to_number<double>());
    if (length.count() == 0) {
      outage_until_.reset();
    } else {
      outage_until_ = now() + std::chrono::duration_cast<RateWindow::Clock::duration>(length);
      // A realtime server that goes away closes its sockets without a close frame.
      for (const auto& peer : peers())
        peer->drop();
    }
  } else if (method != "GET") {
    return rest_error(404, "general_route_not_found", "Unknown control endpoint.");
  }
  json::object answer;
  answer["active"] = realtime_down();
  answer["remaining"] =
      realtime_down() ? std::chrono::duration<double>(*outage_until_ - now()).count() : 0.0;
  return HttpAnswer{200, json::serialize(answer), {}};
}

HttpAnswer Engine::handle_rest(const HttpRequest& request, std::string_view path) {
  if (request.method == "GET" && path == "/v1/health/version") {
    json::object answer;
    answer["version"] = version();
    return HttpAnswer{200, json::serialize(answer), {}};
  }
  const bool account = path == "/v1/account" || path == "/v1/account/sessions/email";
  const bool users = path.starts_with("/v1/users/");
  const bool lists = request.method == "GET" &&
                     (path.starts_with("/v1/tablesdb") || path.starts_with("/v1/databases") ||
                      path.starts_with("/v1/storage/buckets"));
  if (!account && !users && !lists) {
    return rest_error(404, "general_route_not_found",
                      "The requested route was not found. Please refer to the API docs and try "
                      "again.");
  }
  const auto project = header(request.headers, "x-appwrite-project");
  if (find_project(project) == nullptr) {
    return rest_error(404, "project_not_found",
                      "Project with the requested ID could not be found. Please check the value "
                      "of the X-Appwrite-Project header to ensure the correct project ID is being "
                      "used.");
  }
  if (lists) {
    if (auto answer = list_api(request, path, project))
      return std::move(*answer);
    return rest_error(404, "general_route_not_found",
                      "The requested route was not found. Please refer to the API docs and try "
                      "again.");
  }
  json::value body = json::object{};
  if (request.method == "POST" && !request.body.empty()) {
    json::error_code ec;
    body = json::parse(request.body, ec);
    if (ec || !body.is_object()) {
      return rest_error(400, "general_argument_invalid", "The body is not a valid JSON object.");
    }
  }
  const auto& params = body.as_object();

  if (path == "/v1/account" && request.method == "GET") {
    const auto auth = authenticate(project, request.headers, "", false);
    if (auth.error != 0)
      return rest_error(auth.error, auth.type, auth.message);
    if (auth.user == nullptr) {
      return rest_error(401, "general_unauthorized_scope",
                        R"(User (role: guests) missing scopes (["account"]))");
    }
    return HttpAnswer{200, json::serialize(account_model(*auth.user)), {}};
  }
  if (path == "/v1/account/sessions/email" && request.method == "POST") {
    const auto* email = params.if_contains("email");
    const auto* password = params.if_contains("password");
    if (email == nullptr || !email->is_string() || password == nullptr || !password->is_string()) {
      return rest_error(400, "general_argument_invalid",
                        "Param \"email\" and \"password\" are required.");
    }
    const User* user = directory_.find_by_email(std::string_view(email->as_string()));
    if (user == nullptr || user->password != std::string_view(password->as_string())) {
      return rest_error(401, "user_invalid_credentials",
                        "Invalid credentials. Please check the email and password.");
    }
    const auto& session = directory_.create_session(user->id);
    const auto token = Directory::session_token(session);
    HttpAnswer answer{201, json::serialize(session_model(session, *user, token)), {}};
    const auto name = "a_session_" + project;
    answer.headers.emplace_back("Set-Cookie", name + "=" + token + "; path=/; httponly");
    json::object fallback;
    fallback[name] = token;
    answer.headers.emplace_back("X-Fallback-Cookies", json::serialize(fallback));
    return answer;
  }
  if (users && (request.method == "POST" || request.method == "DELETE")) {
    if (options_.api_key.empty() || header(request.headers, "x-appwrite-key") != options_.api_key) {
      return rest_error(401, "general_unauthorized_scope",
                        R"(User (role: guests) missing scopes (["users.write"]))");
    }
    return users_api(request.method, path.substr(std::string_view("/v1/users/").size()), params);
  }
  return rest_error(404, "general_route_not_found",
                    "The requested route was not found. Please refer to the API docs and try "
                    "again.");
}

}  // namespace sluice::emulator
