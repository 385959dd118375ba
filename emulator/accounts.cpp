// The Engine's Users API and the test hooks for sessions. Apart from engine.cpp,
// which holds the realtime protocol, because these answer REST and control requests only.
#include <boost/json/serialize.hpp>

#include "emulator/engine.hpp"

namespace sluice::emulator {

namespace json = boost::json;

namespace {

HttpAnswer route_not_found(const Engine& engine) {
  return engine.rest_error(404, "general_route_not_found",
                           "The requested route was not found. Please refer to the API docs and "
                           "try again.");
}

}  // namespace

HttpAnswer Engine::users_api(std::string_view method, std::string_view rest,
                             const json::object& params) {
  // {userId}/sessions, {userId}/jwts or {userId}/sessions/{sessionId}
  const auto slash = rest.find('/');
  const auto user_id = rest.substr(0, slash);
  const auto action = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
  const User* user = directory_.find_user(user_id);
  const bool known_route = (method == "POST" && (action == "/sessions" || action == "/jwts")) ||
                           (method == "DELETE" && action.starts_with("/sessions/"));
  if (!known_route)
    return route_not_found(*this);
  if (user == nullptr)
    return rest_error(404, "user_not_found", "User with the requested ID could not be found.");

  if (method == "DELETE") {
    const auto session_id = action.substr(std::string_view("/sessions/").size());
    if (!directory_.delete_session(user->id, session_id)) {
      return rest_error(404, "user_session_not_found",
                        "The current user session could not be found.");
    }
    return HttpAnswer{204, {}, {}};
  }
  if (action == "/sessions") {
    const auto& session = directory_.create_session(user->id, {}, "server");
    return HttpAnswer{
        201, json::serialize(session_model(session, *user, Directory::session_token(session))), {}};
  }
  std::int64_t duration = 900;
  if (const auto* d = params.if_contains("duration"); d != nullptr && !d->is_null()) {
    if (!d->is_int64() || d->as_int64() < 0 || d->as_int64() > 3600) {
      return rest_error(400, "general_argument_invalid",
                        "Invalid `duration` param: Value must be a valid range between 0 and "
                        "3,600");
    }
    duration = d->as_int64();
  }
  // 1.9.6 binds a JWT to no session unless `sessionId` names one of the user's sessions (or is
  // "recent"): its default is "".
  std::string session_id;
  if (const auto* s = params.if_contains("sessionId"); s != nullptr && s->is_string())
    session_id = std::string(s->as_string());
  json::object answer;
  answer["jwt"] = directory_.mint_jwt(*user, session_id, std::chrono::seconds(duration));
  return HttpAnswer{201, json::serialize(answer), {}};
}

HttpAnswer Engine::session_control(std::string_view method, const json::value& body) {
  if (method == "GET")
    return HttpAnswer{200, json::serialize(directory_.sessions_json()), {}};
  if (method != "POST" || !body.is_object())
    return rest_error(400, "general_argument_invalid", "expected a JSON object");
  const auto& o = body.as_object();
  const auto* session = o.if_contains("session");
  const auto* action = o.if_contains("action");
  const auto* when = o.if_contains("when");
  if (session == nullptr || !session->is_string() || action == nullptr || !action->is_string() ||
      (action->as_string() != "revoke" && action->as_string() != "expire") ||
      (when != nullptr &&
       (!when->is_string() || (when->as_string() != "now" && when->as_string() != "handshake")))) {
    return rest_error(400, "general_argument_invalid",
                      R"(expected {"session": ID, "action": "revoke"|"expire", )"
                      R"("when": "now"|"handshake"})");
  }
  const auto change = action->as_string() == "revoke" ? SessionRecord::AtHandshake::revoke
                                                      : SessionRecord::AtHandshake::expire;
  const bool at_handshake = when != nullptr && when->as_string() == "handshake";
  if (!directory_.change_session(std::string_view(session->as_string()), change, at_handshake))
    return rest_error(404, "user_session_not_found", "No session with this id.");
  return HttpAnswer{200, R"({"changed":true})", {}};
}

}  // namespace sluice::emulator
