// The admin server over real loopback sockets: the server and a Beast client share one
// io_context, as the daemon's single loop would. Every wait has a deadline (a client-side
// expiry on each operation and a bound on the whole test); nothing sleeps.
#include "daemon/admin/server.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>

#include <gtest/gtest.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

namespace sluice::admin {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

constexpr auto kClientDeadline = 10s;  // per client operation: only a hung server reaches it
constexpr auto kTestDeadline = 30s;    // per test body

struct Reply {
  http::status status{};
  std::string content_type;
  std::string content_length;
  std::string allow;
  std::string www_authenticate;
  std::string body;
  bool keep_alive = false;
};

struct RequestOptions {
  http::verb method = http::verb::get;
  std::string authorization{};
  bool keep_alive = true;
};

asio::awaitable<beast::tcp_stream> connect(tcp::endpoint endpoint) {
  beast::tcp_stream stream(co_await asio::this_coro::executor);
  stream.expires_after(kClientDeadline);
  co_await stream.async_connect(endpoint, asio::use_awaitable);
  co_return stream;
}

const RequestOptions kPlainGet{};

// GCC 12 double-destroys class-type temporaries created inside a co_await expression (and
// coroutine parameters copied from them), so callers pass named options by reference.
asio::awaitable<Reply> send(beast::tcp_stream& stream, std::string target,
                            const RequestOptions& options = kPlainGet) {
  http::request<http::empty_body> request{options.method, target, 11};
  request.set(http::field::host, "127.0.0.1");
  if (!options.authorization.empty()) {
    request.set(http::field::authorization, options.authorization);
  }
  request.keep_alive(options.keep_alive);
  stream.expires_after(kClientDeadline);
  co_await http::async_write(stream, request, asio::use_awaitable);

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.skip(options.method == http::verb::head);
  parser.body_limit(16u << 20);
  co_await http::async_read(stream, buffer, parser, asio::use_awaitable);
  const auto& response = parser.get();
  Reply reply;
  reply.status = response.result();
  reply.content_type = std::string(response[http::field::content_type]);
  reply.content_length = std::string(response[http::field::content_length]);
  reply.allow = std::string(response[http::field::allow]);
  reply.www_authenticate = std::string(response[http::field::www_authenticate]);
  reply.body = response.body();
  reply.keep_alive = response.keep_alive();
  co_return reply;
}

// Reads until the server closes the connection; returns how it ended.
asio::awaitable<boost::system::error_code> await_close(beast::tcp_stream& stream) {
  std::array<char, 512> scratch{};
  stream.expires_after(kClientDeadline);
  for (;;) {
    auto [ec, n] =
        co_await stream.async_read_some(asio::buffer(scratch), asio::as_tuple(asio::use_awaitable));
    if (ec)
      co_return ec;
  }
}

bool closed_by_peer(const boost::system::error_code& ec) {
  return ec == asio::error::eof || ec == asio::error::connection_reset;
}

// Runs `promtool check metrics` with `body` on its standard input.
std::pair<int, std::string> promtool_check(const std::string& body) {
  char path[] = "/tmp/sluice-promtool-XXXXXX";
  const int fd = ::mkstemp(path);
  if (fd < 0)
    return {-1, "mkstemp failed"};
  ::close(fd);
  const std::string command = "promtool check metrics > " + std::string(path) + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "w");
  if (pipe == nullptr)
    return {-1, "popen failed"};
  std::fwrite(body.data(), 1, body.size(), pipe);
  const int status = ::pclose(pipe);
  std::ifstream in(path);
  std::stringstream output;
  output << in.rdbuf();
  ::unlink(path);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output.str()};
}

// Sends this process's stderr to a file for the object's lifetime.
class StderrCapture {
 public:
  StderrCapture() {
    char path[] = "/tmp/sluice-stderr-XXXXXX";
    fd_ = ::mkstemp(path);
    path_ = path;
    saved_ = ::dup(STDERR_FILENO);
    ::dup2(fd_, STDERR_FILENO);
  }
  ~StderrCapture() {
    restore();
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  std::string text() {
    restore();
    std::ifstream in(path_);
    std::stringstream out;
    out << in.rdbuf();
    return out.str();
  }

 private:
  void restore() {
    if (saved_ >= 0) {
      ::dup2(saved_, STDERR_FILENO);
      ::close(saved_);
      saved_ = -1;
    }
  }
  int fd_ = -1;
  int saved_ = -1;
  std::string path_;
};

class AdminServerTest : public ::testing::Test {
 protected:
  void start(std::string token = {}, Limits limits = {}) {
    Handlers handlers;
    handlers.ready = [this] { return ready_; };
    handlers.status_json = [] { return std::string(R"({"upstream":{"connected":true}})"); };
    server_ = std::make_unique<AdminServer>(io_.get_executor(), metrics_, std::move(handlers),
                                            config::Secret(std::move(token)), limits);
    ASSERT_FALSE(server_->listen("127.0.0.1", 0));
    endpoint_ = server_->local_endpoint();
    ASSERT_NE(endpoint_.port(), 0);
    server_->start();
  }

  // Runs `body` on the loop until it completes; fails the test if it has not by the deadline.
  void run(std::function<asio::awaitable<void>()> body) {
    bool done = false;
    std::exception_ptr error;
    asio::co_spawn(io_, body(), [&](std::exception_ptr e) {
      error = std::move(e);
      done = true;
    });
    const auto deadline = std::chrono::steady_clock::now() + kTestDeadline;
    while (!done && !io_.stopped() && std::chrono::steady_clock::now() < deadline) {
      io_.run_one_until(deadline);
    }
    ASSERT_TRUE(done) << "the test did not finish within its deadline";
    if (error)
      std::rethrow_exception(error);
  }

  // Stops the server and runs the loop until it has no work left: nothing may keep it alive.
  void stop_and_drain() {
    server_->stop();
    const auto deadline = std::chrono::steady_clock::now() + kTestDeadline;
    while (!io_.stopped() && std::chrono::steady_clock::now() < deadline) {
      io_.run_one_until(deadline);
    }
    EXPECT_TRUE(io_.stopped()) << "work left on the loop after stop()";
    EXPECT_EQ(server_->connection_count(), 0u);
  }

  void TearDown() override {
    if (server_ && !io_.stopped())
      stop_and_drain();
  }

  // Waits (with the test's deadline) until the server counts `n` connections.
  asio::awaitable<void> await_connections(std::size_t n) {
    asio::steady_timer tick(io_);
    const auto deadline = std::chrono::steady_clock::now() + kClientDeadline;
    while (server_->connection_count() != n) {
      if (std::chrono::steady_clock::now() > deadline) {
        throw std::runtime_error("connection count never reached " + std::to_string(n));
      }
      tick.expires_after(1ms);
      co_await tick.async_wait(asio::use_awaitable);
    }
  }

  asio::io_context io_;
  Metrics metrics_;
  bool ready_ = false;
  std::unique_ptr<AdminServer> server_;
  tcp::endpoint endpoint_;
};

TEST_F(AdminServerTest, ServesEveryRoute) {
  start();
  run([&]() -> asio::awaitable<void> {
    auto stream = co_await connect(endpoint_);

    const auto metrics = co_await send(stream, "/metrics");
    EXPECT_EQ(metrics.status, http::status::ok);
    EXPECT_EQ(metrics.content_type, "text/plain; version=0.0.4; charset=utf-8");
    EXPECT_NE(metrics.body.find("sluice_build_info{version=\"" SLUICE_VERSION "\"} 1"),
              std::string::npos);

    const auto health = co_await send(stream, "/healthz");
    EXPECT_EQ(health.status, http::status::ok);
    EXPECT_EQ(health.content_type, "text/plain; charset=utf-8");
    EXPECT_EQ(health.body, "ok\n");

    const auto ready = co_await send(stream, "/readyz");
    EXPECT_EQ(ready.status, http::status::service_unavailable);
    EXPECT_EQ(ready.body, "not ready\n");

    const auto status = co_await send(stream, "/status");
    EXPECT_EQ(status.status, http::status::ok);
    EXPECT_EQ(status.content_type, "application/json");
    EXPECT_EQ(status.body, R"({"upstream":{"connected":true}})");
  });
}

TEST_F(AdminServerTest, HeadAnswersHeadersOnly) {
  start();
  run([&]() -> asio::awaitable<void> {
    auto stream = co_await connect(endpoint_);
    const RequestOptions as_head{.method = http::verb::head};
    const auto head = co_await send(stream, "/metrics", as_head);
    EXPECT_EQ(head.status, http::status::ok);
    EXPECT_EQ(head.content_type, "text/plain; version=0.0.4; charset=utf-8");
    EXPECT_TRUE(head.body.empty());
    EXPECT_GT(std::stoul(head.content_length), 100u);
    // The connection is still in step: a GET on it works.
    const auto health = co_await send(stream, "/healthz");
    EXPECT_EQ(health.body, "ok\n");
  });
}

TEST_F(AdminServerTest, ReadinessFollowsTheHandler) {
  start();
  run([&]() -> asio::awaitable<void> {
    auto stream = co_await connect(endpoint_);
    EXPECT_EQ((co_await send(stream, "/readyz")).status, http::status::service_unavailable);
    ready_ = true;
    const auto ready = co_await send(stream, "/readyz");
    EXPECT_EQ(ready.status, http::status::ok);
    EXPECT_EQ(ready.body, "ready\n");
    ready_ = false;
    EXPECT_EQ((co_await send(stream, "/readyz")).status, http::status::service_unavailable);
  });
}

TEST_F(AdminServerTest, UnknownPathAndMethod) {
  start();
  run([&]() -> asio::awaitable<void> {
    auto stream = co_await connect(endpoint_);
    const auto missing = co_await send(stream, "/favicon.ico");
    EXPECT_EQ(missing.status, http::status::not_found);
    const RequestOptions as_post{.method = http::verb::post};
    const RequestOptions as_delete{.method = http::verb::delete_};
    const auto post = co_await send(stream, "/metrics", as_post);
    EXPECT_EQ(post.status, http::status::method_not_allowed);
    EXPECT_EQ(post.allow, "GET, HEAD");
    const auto del = co_await send(stream, "/healthz", as_delete);
    EXPECT_EQ(del.status, http::status::method_not_allowed);
  });
}

TEST_F(AdminServerTest, TokenIsRequiredOnMetricsAndStatusAndNeverLogged) {
  const std::string token = "tok-4f1d9c2a";
  StderrCapture capture;
  start(token);
  run([&]() -> asio::awaitable<void> {
    auto stream = co_await connect(endpoint_);
    const RequestOptions wrong_token{.authorization = "Bearer tok-4f1d9c2b"};
    const RequestOptions right_token{.authorization = "Bearer " + token};
    for (const auto* path : {"/metrics", "/status"}) {
      const auto none = co_await send(stream, path);
      EXPECT_EQ(none.status, http::status::unauthorized) << path;
      EXPECT_EQ(none.www_authenticate, R"(Bearer realm="sluice")");
      const auto wrong = co_await send(stream, path, wrong_token);
      EXPECT_EQ(wrong.status, http::status::unauthorized) << path;
      const auto right = co_await send(stream, path, right_token);
      EXPECT_EQ(right.status, http::status::ok) << path;
      EXPECT_FALSE(right.body.empty());
    }
    EXPECT_EQ((co_await send(stream, "/healthz")).status, http::status::ok);
    EXPECT_EQ((co_await send(stream, "/readyz")).status, http::status::service_unavailable);
  });
  stop_and_drain();
  const auto logged = capture.text();
  EXPECT_NE(logged.find("listening"), std::string::npos) << logged;
  EXPECT_EQ(logged.find(token), std::string::npos) << logged;
}

TEST_F(AdminServerTest, KeepAliveServesTwoRequestsOnOneConnection) {
  start();
  run([&]() -> asio::awaitable<void> {
    auto stream = co_await connect(endpoint_);
    const auto first = co_await send(stream, "/healthz");
    EXPECT_TRUE(first.keep_alive);
    co_await await_connections(1);
    const auto second = co_await send(stream, "/status");
    EXPECT_EQ(second.status, http::status::ok);
    EXPECT_EQ(server_->connection_count(), 1u);

    // Connection: close is honoured: the server closes after answering.
    const RequestOptions closing{.keep_alive = false};
    const auto last = co_await send(stream, "/healthz", closing);
    EXPECT_FALSE(last.keep_alive);
    EXPECT_TRUE(closed_by_peer(co_await await_close(stream)));
  });
}

TEST_F(AdminServerTest, AStalledHalfRequestIsDropped) {
  start({}, Limits{.request_timeout = 200ms});
  run([&]() -> asio::awaitable<void> {
    auto stream = co_await connect(endpoint_);
    const std::string half = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    co_await asio::async_write(stream, asio::buffer(half), asio::use_awaitable);
    const auto ec = co_await await_close(stream);
    EXPECT_TRUE(closed_by_peer(ec)) << ec.message();
    EXPECT_EQ(server_->connection_count(), 0u);

    // An idle connection that never sends anything is dropped the same way.
    auto idle = co_await connect(endpoint_);
    const auto idle_ec = co_await await_close(idle);
    EXPECT_TRUE(closed_by_peer(idle_ec)) << idle_ec.message();
  });
}

TEST_F(AdminServerTest, AKeptAliveConnectionWaitsForItsIdleTimeoutNotTheRequestTimeout) {
  start({}, Limits{.request_timeout = 100ms, .idle_timeout = 10s});
  run([&]() -> asio::awaitable<void> {
    auto stream = co_await connect(endpoint_);
    EXPECT_EQ((co_await send(stream, "/healthz")).status, http::status::ok);
    // Waiting between requests for several request timeouts is fine.
    asio::steady_timer pause(co_await asio::this_coro::executor);
    pause.expires_after(500ms);
    co_await pause.async_wait(asio::use_awaitable);
    EXPECT_EQ((co_await send(stream, "/healthz")).status, http::status::ok);
  });
}

TEST_F(AdminServerTest, AKeptAliveConnectionIsClosedAfterItsIdleTimeout) {
  start({}, Limits{.idle_timeout = 200ms});
  run([&]() -> asio::awaitable<void> {
    auto stream = co_await connect(endpoint_);
    EXPECT_EQ((co_await send(stream, "/healthz")).status, http::status::ok);
    const auto ec = co_await await_close(stream);
    EXPECT_TRUE(closed_by_peer(ec)) << ec.message();
  });
}

TEST_F(AdminServerTest, AtTheLimitTheConnectionThatWaitedLongestIsShed) {
  start({}, Limits{.max_connections = 2});
  run([&]() -> asio::awaitable<void> {
    auto a = co_await connect(endpoint_);
    auto b = co_await connect(endpoint_);
    EXPECT_EQ((co_await send(a, "/healthz")).status, http::status::ok);
    EXPECT_EQ((co_await send(b, "/healthz")).status, http::status::ok);
    // `a` has waited for its next request longest: the newcomer takes its place.
    auto c = co_await connect(endpoint_);
    EXPECT_EQ((co_await send(c, "/healthz")).status, http::status::ok);
    EXPECT_TRUE(closed_by_peer(co_await await_close(a)));
    EXPECT_EQ((co_await send(b, "/healthz")).status, http::status::ok);
    EXPECT_EQ(server_->connection_count(), 2u);
    const auto metrics = co_await send(c, "/metrics");
    EXPECT_NE(metrics.body.find("sluice_admin_connections_dropped_total{reason=\"shed\"} 1"),
              std::string::npos)
        << metrics.body;
  });
}

TEST_F(AdminServerTest, AFloodOfIdleAndSlowConnectionsDoesNotStarveProbes) {
  start();  // the daemon's limits
  run([&]() -> asio::awaitable<void> {
    // 64 connections that never send, 64 that sent part of a request head and stall.
    std::vector<beast::tcp_stream> flood;
    for (int i = 0; i < 128; ++i) {
      flood.push_back(co_await connect(endpoint_));
      if (i % 2 == 1) {
        const std::string part = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
        co_await asio::async_write(flood.back(), asio::buffer(part), asio::use_awaitable);
      }
    }
    for (int i = 0; i < 25; ++i) {
      auto probe = co_await connect(endpoint_);
      const RequestOptions close_after{.keep_alive = false};
      EXPECT_EQ((co_await send(probe, "/healthz", close_after)).status, http::status::ok) << i;
    }
    EXPECT_LE(server_->connection_count(), Limits{}.max_connections_per_address);
  });
}

TEST_F(AdminServerTest, OversizedHeadersAreRefused) {
  start({}, Limits{.header_limit = 1024});
  run([&]() -> asio::awaitable<void> {
    auto stream = co_await connect(endpoint_);
    http::request<http::empty_body> request{http::verb::get, "/healthz", 11};
    request.set(http::field::host, "127.0.0.1");
    request.set("X-Padding", std::string(4096, 'a'));
    stream.expires_after(kClientDeadline);
    co_await http::async_write(stream, request, asio::use_awaitable);
    beast::flat_buffer buffer;
    http::response<http::string_body> response;
    co_await http::async_read(stream, buffer, response, asio::use_awaitable);
    EXPECT_EQ(response.result(), http::status::request_header_fields_too_large);
    EXPECT_FALSE(response.keep_alive());
    EXPECT_TRUE(closed_by_peer(co_await await_close(stream)));
  });
}

TEST_F(AdminServerTest, StopClosesOpenConnectionsAndReleasesTheLoop) {
  start();
  run([&]() -> asio::awaitable<void> {
    auto stream = co_await connect(endpoint_);
    EXPECT_EQ((co_await send(stream, "/healthz")).status, http::status::ok);
    co_await await_connections(1);
    server_->stop();
    EXPECT_TRUE(closed_by_peer(co_await await_close(stream)));
    // The port no longer accepts.
    beast::tcp_stream late(co_await asio::this_coro::executor);
    late.expires_after(kClientDeadline);
    auto [ec] = co_await late.async_connect(endpoint_, asio::as_tuple(asio::use_awaitable));
    EXPECT_EQ(ec, asio::error::connection_refused);
  });
  stop_and_drain();
}

TEST_F(AdminServerTest, MetricsBodyPassesPromtool) {
  // Labelled series of every kind, as a running daemon has them.
  metrics_.sink("orders").sent->Increment(3);
  metrics_.sink("orders").delivery_seconds->Observe(0.02);
  metrics_.sink("orders").attempts_failed("timeout").Increment();
  metrics_.routed("paid-orders").Increment();
  metrics_.disconnects("eof").Increment();
  metrics_.upstream_connected().Set(1);
  start();
  std::string body;
  run([&]() -> asio::awaitable<void> {
    auto stream = co_await connect(endpoint_);
    const auto reply = co_await send(stream, "/metrics");
    EXPECT_EQ(reply.status, http::status::ok);
    body = reply.body;
  });
  for (const auto* series :
       {"\nprocess_cpu_seconds_total ", "\nprocess_resident_memory_bytes ",
        "\nprocess_virtual_memory_bytes ", "\nprocess_open_fds ", "\nprocess_max_fds ",
        "\nprocess_start_time_seconds ", "\nsluice_build_info{version=\"" SLUICE_VERSION "\"} 1",
        "\nsluice_sink_delivery_seconds_bucket{sink=\"orders\",le=\"+Inf\"} 1"}) {
    EXPECT_NE(body.find(series), std::string::npos) << series << "\n" << body;
  }
  const auto [code, output] = promtool_check(body);
  EXPECT_EQ(code, 0) << "promtool check metrics failed:\n" << output << "\n--- body ---\n" << body;
}

TEST_F(AdminServerTest, ListenReportsBindErrors) {
  start();
  AdminServer other(io_.get_executor(), metrics_, Handlers{}, config::Secret{});
  const auto ec = other.listen("127.0.0.1", endpoint_.port());
  EXPECT_EQ(ec, asio::error::address_in_use);
  EXPECT_TRUE(other.listen("not an address", 0));
}

}  // namespace
}  // namespace sluice::admin
