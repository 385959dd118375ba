#include "daemon/upstream/credentials.hpp"

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

#include "core/log.hpp"

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

// Mints a fresh JWT for the service user before every connect, so a long-running daemon
// never depends on a token that expires (Appwrite checks a JWT only at handshake).
class ApiKeyCredentials final : public Credentials {
 public:
  ApiKeyCredentials(const config::AppwriteConfig& a, RestTarget rest)
      : project_(a.project),
        user_id_(a.auth.user_id),
        key_(a.auth.api_key),
        rest_(std::move(rest)) {}

  Awaitable headers(std::string& error) override {
    const auto path =
        "/users/" + boost::urls::encode(user_id_, boost::urls::unreserved_chars) + "/jwts";
    Headers headers;  // a local: GCC 12 miscompiles braced temporaries inside co_await
    headers.emplace_back("X-Appwrite-Project", project_);
    headers.emplace_back("X-Appwrite-Key", key_.reveal());
    const auto r = co_await rest_call(rest_.endpoint, rest_.tls.get(), rest_.verify,
                                      http::verb::post, path, headers, "{}", kRestTimeout);
    if (r.status / 100 != 2) {
      error = "minting a JWT for user " + user_id_ + " failed: " + rest_failure(r);
      co_return std::nullopt;
    }
    auto jwt = json_string_field(r.body, "jwt");
    if (jwt.empty()) {
      error = "minting a JWT: the response has no jwt";
      co_return std::nullopt;
    }
    co_return one_header("X-Appwrite-JWT", std::move(jwt));
  }
  std::string_view kind() const override { return "api_key"; }

 private:
  std::string project_, user_id_;
  config::Secret key_;
  RestTarget rest_;
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
// public events. A 401/403 drops what the inner form cached and, for the forms that can renew
// (email session), tries once more with fresh credentials. Other answers (a proxy that serves
// only /realtime, a transport error) do not block the connect: the handshake decides then.
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

std::unique_ptr<Credentials> make_credentials(const config::AppwriteConfig& a, RestTarget rest) {
  auto form = make_form(a, rest);
  if (!form)
    return nullptr;
  // A minted JWT is fresh on every call anyway; only the email session is worth renewing here.
  const bool renewable = a.auth.kind == config::AuthConfig::Kind::email_password;
  return std::make_unique<AccountCheckedCredentials>(std::move(form), a.project, std::move(rest),
                                                     renewable);
}

}  // namespace sluice::upstream
