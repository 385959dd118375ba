#include "daemon/admin/routes.hpp"

#include <stdexcept>

#include <gtest/gtest.h>

namespace sluice::admin {
namespace {

Request make_request(http::verb method, std::string_view target, std::string_view auth = {}) {
  Request request{method, target, 11};
  request.set(http::field::host, "localhost");
  if (!auth.empty())
    request.set(http::field::authorization, auth);
  return request;
}

TEST(BearerMatches, AcceptsOnlyTheExactToken) {
  EXPECT_TRUE(bearer_matches("Bearer s3cret", "s3cret"));
  EXPECT_TRUE(bearer_matches("bearer s3cret", "s3cret"));
  EXPECT_TRUE(bearer_matches("BEARER   s3cret", "s3cret"));
  EXPECT_FALSE(bearer_matches("Bearer s3cre", "s3cret"));
  EXPECT_FALSE(bearer_matches("Bearer s3cretX", "s3cret"));
  EXPECT_FALSE(bearer_matches("Bearer S3cret", "s3cret"));
  EXPECT_FALSE(bearer_matches("Basic s3cret", "s3cret"));
  EXPECT_FALSE(bearer_matches("Bearers3cret", "s3cret"));
  EXPECT_FALSE(bearer_matches("Bearer ", "s3cret"));
  EXPECT_FALSE(bearer_matches("", "s3cret"));
  EXPECT_FALSE(bearer_matches("Bearer ", ""));
}

class RoutesTest : public ::testing::Test {
 protected:
  Routes make(std::string token = {}) {
    Handlers handlers;
    handlers.ready = [this] { return ready_; };
    handlers.status_json = [this] {
      if (status_throws_)
        throw std::runtime_error("boom");
      return std::string(R"({"upstream":"connected"})");
    };
    return Routes(metrics_, std::move(handlers), config::Secret(std::move(token)));
  }

  Metrics metrics_;
  bool ready_ = false;
  bool status_throws_ = false;
};

TEST_F(RoutesTest, MetricsRendersTheRegistryWithProcessSeries) {
  auto routes = make();
  const auto response = routes.handle(make_request(http::verb::get, "/metrics"));
  EXPECT_EQ(response.result(), http::status::ok);
  EXPECT_EQ(response[http::field::content_type], kMetricsContentType);
  EXPECT_NE(response.body().find("sluice_build_info{version=\"" SLUICE_VERSION "\"} 1"),
            std::string::npos);
  EXPECT_NE(response.body().find("\nprocess_resident_memory_bytes "), std::string::npos);
  EXPECT_EQ(response[http::field::content_length], std::to_string(response.body().size()));
}

TEST_F(RoutesTest, HealthzAndReadyz) {
  auto routes = make();
  auto health = routes.handle(make_request(http::verb::get, "/healthz"));
  EXPECT_EQ(health.result(), http::status::ok);
  EXPECT_EQ(health.body(), "ok\n");
  EXPECT_EQ(health[http::field::content_type], kTextContentType);

  auto ready = routes.handle(make_request(http::verb::get, "/readyz"));
  EXPECT_EQ(ready.result(), http::status::service_unavailable);
  EXPECT_EQ(ready.body(), "not ready\n");
  ready_ = true;
  ready = routes.handle(make_request(http::verb::get, "/readyz?verbose=1"));
  EXPECT_EQ(ready.result(), http::status::ok);
  EXPECT_EQ(ready.body(), "ready\n");
}

TEST_F(RoutesTest, ReadyzWithoutAHandlerIsNotReady) {
  Routes routes(metrics_, Handlers{}, config::Secret{});
  EXPECT_EQ(routes.handle(make_request(http::verb::get, "/readyz")).result(),
            http::status::service_unavailable);
  const auto status = routes.handle(make_request(http::verb::get, "/status"));
  EXPECT_EQ(status.result(), http::status::ok);
  EXPECT_EQ(status.body(), "{}");
}

TEST_F(RoutesTest, StatusIsJson) {
  auto routes = make();
  const auto response = routes.handle(make_request(http::verb::get, "/status"));
  EXPECT_EQ(response.result(), http::status::ok);
  EXPECT_EQ(response[http::field::content_type], kJsonContentType);
  EXPECT_EQ(response.body(), R"({"upstream":"connected"})");
}

TEST_F(RoutesTest, AFailingHandlerAnswers500) {
  auto routes = make();
  status_throws_ = true;
  const auto response = routes.handle(make_request(http::verb::get, "/status"));
  EXPECT_EQ(response.result(), http::status::internal_server_error);
  EXPECT_EQ(response.body(), "internal error\n");
}

TEST_F(RoutesTest, HeadHasTheGetHeadersAndNoBody) {
  auto routes = make();
  const auto get = routes.handle(make_request(http::verb::get, "/healthz"));
  const auto head = routes.handle(make_request(http::verb::head, "/healthz"));
  EXPECT_EQ(head.result(), http::status::ok);
  EXPECT_TRUE(head.body().empty());
  EXPECT_EQ(head[http::field::content_length], "3");
  EXPECT_EQ(head[http::field::content_type], get[http::field::content_type]);
}

TEST_F(RoutesTest, UnknownPathIs404AndOtherMethods405) {
  auto routes = make();
  const auto missing = routes.handle(make_request(http::verb::get, "/nope"));
  EXPECT_EQ(missing.result(), http::status::not_found);
  EXPECT_EQ(routes.handle(make_request(http::verb::post, "/nope")).result(),
            http::status::not_found);
  for (const auto* path : {"/metrics", "/healthz", "/readyz", "/status"}) {
    for (const auto method : {http::verb::post, http::verb::put, http::verb::delete_}) {
      const auto response = routes.handle(make_request(method, path));
      EXPECT_EQ(response.result(), http::status::method_not_allowed) << path;
      EXPECT_EQ(response[http::field::allow], "GET, HEAD") << path;
    }
  }
}

TEST_F(RoutesTest, TokenGuardsMetricsAndStatusOnly) {
  auto routes = make("s3cret");
  for (const auto* path : {"/metrics", "/status"}) {
    const auto missing = routes.handle(make_request(http::verb::get, path));
    EXPECT_EQ(missing.result(), http::status::unauthorized) << path;
    EXPECT_EQ(missing[http::field::www_authenticate], R"(Bearer realm="sluice")");
    EXPECT_EQ(missing.body().find("s3cret"), std::string::npos);
    EXPECT_EQ(routes.handle(make_request(http::verb::get, path, "Bearer wrong")).result(),
              http::status::unauthorized)
        << path;
    EXPECT_EQ(routes.handle(make_request(http::verb::get, path, "Bearer s3cret")).result(),
              http::status::ok)
        << path;
  }
  EXPECT_EQ(routes.handle(make_request(http::verb::get, "/healthz")).result(), http::status::ok);
  EXPECT_EQ(routes.handle(make_request(http::verb::get, "/readyz")).result(),
            http::status::service_unavailable);
}

TEST_F(RoutesTest, KeepsTheClientsVersionAndConnectionChoice) {
  auto routes = make();
  auto request = make_request(http::verb::get, "/healthz");
  request.keep_alive(false);
  const auto closing = routes.handle(request);
  EXPECT_FALSE(closing.keep_alive());
  Request old{http::verb::get, "/healthz", 10};
  const auto response = routes.handle(old);
  EXPECT_EQ(response.version(), 10u);
  EXPECT_FALSE(response.keep_alive());
}

TEST(ErrorResponse, ClosesTheConnection) {
  const auto response = error_response(http::status::request_header_fields_too_large, 11);
  EXPECT_EQ(response.result(), http::status::request_header_fields_too_large);
  EXPECT_FALSE(response.keep_alive());
  EXPECT_FALSE(response.body().empty());
}

}  // namespace
}  // namespace sluice::admin
