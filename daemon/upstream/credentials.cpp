#include "daemon/upstream/credentials.hpp"

#include <algorithm>
#include <utility>

#include <fmt/chrono.h>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

#include "core/log.hpp"
#include "daemon/upstream/decoder.hpp"

namespace sluice::upstream {

namespace http = boost::beast::http;
using Awaitable = boost::asio::awaitable<std::optional<Headers>>;

namespace {

constexpr std::chrono::milliseconds kRestTimeout{10000};

Headers one_header(std::string name, std::string value) {
  Headers h;
  h.emplace_back(std::move(name), std::move(value));
  return h;
}

Headers session_headers(const std::string& project, const std::string& token) {
  // The cookie works on every Appwrite version; X-Appwrite-Session only since 1.5.
  return one_header("Cookie", "a_session_" + project + "=" + token);
}

std::string json_string_field(const std::string& body, std::string_view key) {
  boost::system::error_code ec;
  const auto v = boost::json::parse(body, ec);
  if (ec || !v.is_object())
    return {};
  const auto* f = v.as_object().if_contains(key);
  return f != nullptr && f->is_string() ? std::string(f->as_string()) : std::string{};
}

// A server-side failure summarised without echoing the body, which may hold a secret.
std::string rest_failure(const RestResponse& r) {
  if (!r.error.empty())
    return r.error;
  const auto message = json_string_field(r.body, "message");
  return "HTTP " + std::to_string(r.status) + (message.empty() ? "" : ": " + message);
}

std::string format_time(Credentials::TimePoint t) {
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}Z", std::chrono::floor<std::chrono::seconds>(t));
}

class StaticCredentials final : public Credentials {
 public:
  StaticCredentials(Headers headers, std::string_view kind)
      : headers_(std::move(headers)), kind_(kind) {}
  Awaitable headers(std::string&) override { co_return headers_; }
  std::string_view kind() const override { return kind_; }

 private:
  Headers headers_;
  std::string_view kind_;
};

// Acts as the service user through a session of its own: creates it with the Users API
// (POST /users/{userId}/sessions, which needs the API key), mints JWTs bound to it
// (POST /users/{userId}/jwts with its sessionId) and presents the JWT at the handshake. Binding
// the JWT to sluice's own session, not to the user's most recent one, means a login of the
// same user elsewhere cannot change or end what sluice runs on. Expiries are judged by the
// server's clock (the Date header of its answers), so a skewed local clock does not matter.
class ApiKeyCredentials final : public Credentials {
 public:
  ApiKeyCredentials(const config::AppwriteConfig& a, RestTarget rest)
      : project_(a.project),
        user_id_(a.auth.user_id),
        key_(a.auth.api_key),
        rest_(std::move(rest)) {}

  Awaitable headers(std::string& error) override {
    auto plan = plan_tokens(tokens_, server_now());
    if (plan.step == TokenPlan::Step::create_session) {
      if (!co_await create_session(error))
        co_return std::nullopt;
      plan = plan_tokens(tokens_, server_now());
      if (plan.step == TokenPlan::Step::create_session) {
        error = "creating a session for user " + user_id_ +
                ": the server made one that is about to expire (expire " +
                format_time(*tokens_.session_expire) + ")";
        co_return std::nullopt;
      }
    }
    if (plan.step == TokenPlan::Step::mint_jwt && !co_await mint_jwt(plan.jwt_duration, error))
      co_return std::nullopt;
    co_return one_header("X-Appwrite-JWT", jwt_.reveal());
  }

  void rejected() override {
    // The server no longer takes the session (revoked, expired, or a JWT of it made us a
    // guest): the next connect starts over with a new one, and deletes this one if it is left.
    tokens_ = {};
    jwt_ = {};
  }

  bool current_at(TimePoint server) override {
    adopt_clock(server);
    return plan_tokens(tokens_, server).step == TokenPlan::Step::use_jwt;
  }

  std::string_view kind() const override { return "api_key"; }

 private:
  Headers key_headers() const {
    Headers headers;
    headers.emplace_back("X-Appwrite-Project", project_);
    headers.emplace_back("X-Appwrite-Key", key_.reveal());
    return headers;
  }

  std::string user_path() const {
    return "/users/" + boost::urls::encode(user_id_, boost::urls::unreserved_chars);
  }

  TimePoint server_now() const { return std::chrono::system_clock::now() + offset_; }

  void adopt_clock(TimePoint server) {
    offset_ =
        std::chrono::duration_cast<std::chrono::seconds>(server - std::chrono::system_clock::now());
  }

  boost::asio::awaitable<bool> create_session(std::string& error) {
    const auto headers = key_headers();  // a local: GCC 12 miscompiles temporaries in co_await
    const auto r =
        co_await rest_call(rest_.endpoint, rest_.tls.get(), rest_.verify, http::verb::post,
                           user_path() + "/sessions", headers, "{}", kRestTimeout);
    if (r.date)
      adopt_clock(*r.date);
    if (r.status / 100 != 2) {
      error = "creating a session for user " + user_id_ + " failed: " + rest_failure(r);
      co_return false;
    }
    boost::system::error_code ec;
    const auto body = boost::json::parse(r.body, ec);
    const auto text = [&](std::string_view key) {
      const auto* f = !ec && body.is_object() ? body.as_object().if_contains(key) : nullptr;
      return f != nullptr && f->is_string() ? std::string(f->as_string()) : std::string{};
    };
    const auto id = text("$id");
    const auto created = parse_timestamp(text("$createdAt"));
    const auto expire = parse_timestamp(text("expire"));
    if (id.empty() || !created || !expire) {
      error = "creating a session for user " + user_id_ +
              ": the response lacks $id, $createdAt or expire";
      co_return false;
    }
    const auto replaced = std::exchange(session_id_, id);
    tokens_ = ServiceTokens{};
    tokens_.session_created = *created;
    tokens_.session_expire = *expire;
    jwt_ = {};
    log::info("upstream", "created a session for the service user",
              {{"user", user_id_}, {"session", id}, {"expire", format_time(*expire)}});
    if (!replaced.empty())
      co_await delete_session(replaced);
    co_return true;
  }

  // Sessions sluice replaced would otherwise stay on the server until they expire.
  boost::asio::awaitable<void> delete_session(const std::string& id) {
    const auto headers = key_headers();
    const auto path =
        user_path() + "/sessions/" + boost::urls::encode(id, boost::urls::unreserved_chars);
    std::string no_body;
    const auto r =
        co_await rest_call(rest_.endpoint, rest_.tls.get(), rest_.verify, http::verb::delete_, path,
                           headers, std::move(no_body), kRestTimeout);
    if (r.status / 100 == 2) {
      log::info("upstream", "deleted the session it replaced", {{"session", id}});
    } else if (r.status != 404) {  // 404: already gone (revoked, or deleted as expired)
      log::warn("upstream", "could not delete the session it replaced; it stays until it expires",
                {{"session", id}, {"error", rest_failure(r)}});
    }
  }

  boost::asio::awaitable<bool> mint_jwt(std::chrono::seconds duration, std::string& error) {
    const auto headers = key_headers();
    std::string body = boost::json::serialize(
        boost::json::object{{"sessionId", session_id_}, {"duration", duration.count()}});
    const auto r =
        co_await rest_call(rest_.endpoint, rest_.tls.get(), rest_.verify, http::verb::post,
                           user_path() + "/jwts", headers, std::move(body), kRestTimeout);
    if (r.date)
      adopt_clock(*r.date);
    if (r.status / 100 != 2) {
      error = "minting a JWT for user " + user_id_ + " failed: " + rest_failure(r);
      co_return false;
    }
    auto jwt = json_string_field(r.body, "jwt");
    if (jwt.empty()) {
      error = "minting a JWT: the response has no jwt";
      co_return false;
    }
    jwt_ = config::Secret(std::move(jwt));
    tokens_.jwt_expire = server_now() + duration;
    co_return true;
  }

  std::string project_, user_id_;
  config::Secret key_;
  RestTarget rest_;
  std::string session_id_;  // not a secret: only the API key can mint a JWT for it
  ServiceTokens tokens_;
  config::Secret jwt_;
  std::chrono::seconds offset_{0};  // the server's clock minus ours
};

// Creates an email session once and reuses it until the server rejects it.
class EmailCredentials final : public Credentials {
 public:
  EmailCredentials(const config::AppwriteConfig& a, RestTarget rest)
      : project_(a.project),
        email_(a.auth.email),
        password_(a.auth.password),
        rest_(std::move(rest)) {}

  Awaitable headers(std::string& error) override {
    if (session_.empty()) {
      std::string body = boost::json::serialize(
          boost::json::object{{"email", email_}, {"password", password_.reveal()}});
      const Headers headers = one_header("X-Appwrite-Project", project_);
      const auto r =
          co_await rest_call(rest_.endpoint, rest_.tls.get(), rest_.verify, http::verb::post,
                             "/account/sessions/email", headers, std::move(body), kRestTimeout);
      if (r.status / 100 != 2) {
        error = "creating an email session for " + email_ + " failed: " + rest_failure(r);
        co_return std::nullopt;
      }
      session_ = config::Secret(json_string_field(r.body, "secret"));
      if (session_.empty()) {
        error = "creating an email session: the response has no secret";
        co_return std::nullopt;
      }
    }
    co_return session_headers(project_, session_.reveal());
  }
  void rejected() override { session_ = {}; }
  std::string_view kind() const override { return "email"; }

 private:
  std::string project_, email_;
  config::Secret password_;
  config::Secret session_;
  RestTarget rest_;
};

// Checks the headers with GET /v1/account before they are used for a connect. Appwrite's realtime
// handshake treats an unknown or revoked session as a guest instead of refusing it, so without
// this check a forgotten session would connect, report "subscribed" and silently receive only
// public events (the session can still end between this check and the handshake: the Session
// treats a guest `connected` as a rejection too). A 401/403 drops what the inner form cached
// and, for the forms that can renew (email, api_key), tries once more with fresh credentials;
// so does an answer whose Date shows the credentials near their expiry. Other answers (a proxy that
// serves only /realtime, a transport error) do not block the connect: the handshake decides then.
class AccountCheckedCredentials final : public Credentials {
 public:
  AccountCheckedCredentials(std::unique_ptr<Credentials> inner, std::string project,
                            RestTarget rest, bool renewable)
      : inner_(std::move(inner)),
        project_(std::move(project)),
        rest_(std::move(rest)),
        renewable_(renewable) {}

  Awaitable headers(std::string& error) override {
    for (int attempt = 0;; ++attempt) {
      auto headers = co_await inner_->headers(error);
      if (!headers)
        co_return std::nullopt;
      Headers request = *headers;
      request.emplace_back("X-Appwrite-Project", project_);
      std::string no_body;  // a local: GCC 12 miscompiles class temporaries inside co_await
      const auto r =
          co_await rest_call(rest_.endpoint, rest_.tls.get(), rest_.verify, http::verb::get,
                             "/account", request, std::move(no_body), kRestTimeout);
      if (r.status / 100 == 2) {
        if (r.date && !inner_->current_at(*r.date) && attempt == 0) {
          log::info("upstream",
                    "the credentials are near their expiry by the server's clock; "
                    "renewing them before connecting",
                    {{"auth", std::string(kind())}});
          continue;
        }
        if (!accepted_) {
          log::info("upstream", "credentials accepted",
                    {{"auth", std::string(kind())}, {"user", json_string_field(r.body, "$id")}});
        }
        accepted_ = true;
        co_return headers;
      }
      if (r.status != 401 && r.status != 403) {
        log::debug("upstream", "could not check the credentials with GET /account",
                   {{"status", std::to_string(r.status)}, {"error", r.error}});
        co_return headers;
      }
      accepted_ = false;
      inner_->rejected();
      if (renewable_ && attempt == 0) {
        log::warn("upstream", "the server rejected the cached credentials; renewing",
                  {{"auth", std::string(kind())}, {"error", rest_failure(r)}});
        continue;
      }
      error = "the server rejected the " + std::string(kind()) +
              " credentials (GET /account: " + rest_failure(r) + ")";
      log::error("upstream", "the server rejected our credentials",
                 {{"auth", std::string(kind())}, {"error", rest_failure(r)}});
      co_return std::nullopt;
    }
  }
  void rejected() override {
    accepted_ = false;
    inner_->rejected();
  }
  bool current_at(TimePoint server_now) override { return inner_->current_at(server_now); }
  std::string_view kind() const override { return inner_->kind(); }

 private:
  std::unique_ptr<Credentials> inner_;
  std::string project_;
  RestTarget rest_;
  bool renewable_;
  bool accepted_ = false;  // logs "accepted" once per change, not on every reconnect
};

std::unique_ptr<Credentials> make_form(const config::AppwriteConfig& a, RestTarget rest) {
  switch (a.auth.kind) {
    case config::AuthConfig::Kind::session:
      return std::make_unique<StaticCredentials>(
          session_headers(a.project, a.auth.session.reveal()), "session");
    case config::AuthConfig::Kind::jwt:
      return std::make_unique<StaticCredentials>(one_header("X-Appwrite-JWT", a.auth.jwt.reveal()),
                                                 "jwt");
    case config::AuthConfig::Kind::api_key:
      return std::make_unique<ApiKeyCredentials>(a, std::move(rest));
    case config::AuthConfig::Kind::email_password:
      return std::make_unique<EmailCredentials>(a, std::move(rest));
  }
  return nullptr;
}

}  // namespace

TokenPlan plan_tokens(const ServiceTokens& tokens, Credentials::TimePoint server_now) {
  using std::chrono::seconds;
  const auto left = [&](Credentials::TimePoint until) {
    return std::chrono::duration_cast<seconds>(until - server_now);
  };
  TokenPlan plan;
  if (!tokens.session_created || !tokens.session_expire) {
    plan.step = TokenPlan::Step::create_session;
    return plan;
  }
  const auto lifetime =
      std::chrono::duration_cast<seconds>(*tokens.session_expire - *tokens.session_created);
  const auto session_left = left(*tokens.session_expire);
  if (session_left <= std::min(TokenPlan::kSessionMargin, lifetime / 2)) {
    plan.step = TokenPlan::Step::create_session;
    return plan;
  }
  plan.jwt_duration = std::max(seconds{1}, std::min(TokenPlan::kJwtLifetime, session_left / 2));
  const auto margin = std::min(TokenPlan::kJwtMargin, plan.jwt_duration / 3);
  const bool fresh = tokens.jwt_expire && left(*tokens.jwt_expire) > margin &&
                     *tokens.jwt_expire <= *tokens.session_expire;
  plan.step = fresh ? TokenPlan::Step::use_jwt : TokenPlan::Step::mint_jwt;
  return plan;
}

std::unique_ptr<Credentials> make_credentials(const config::AppwriteConfig& a, RestTarget rest) {
  auto form = make_form(a, rest);
  if (!form)
    return nullptr;
  // The forms that obtain their credentials can renew them; a configured session or JWT cannot.
  const bool renewable = a.auth.kind == config::AuthConfig::Kind::email_password ||
                         a.auth.kind == config::AuthConfig::Kind::api_key;
  return std::make_unique<AccountCheckedCredentials>(std::move(form), a.project, std::move(rest),
                                                     renewable);
}

}  // namespace sluice::upstream
