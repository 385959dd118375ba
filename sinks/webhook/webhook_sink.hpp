#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/system/error_code.hpp>

#include "config/config.hpp"
#include "net/endpoint.hpp"
#include "net/proxy.hpp"
#include "sinks/sink.hpp"
#include "sinks/webhook/webhook_config.hpp"

// The webhook sink: POSTs each record (or, with `batch`, a JSON array of
// records) to `url` over HTTP/1.1 or HTTPS, signed per `signing.scheme`, and classifies the
// answer (webhook_policy.hpp). It never retries or waits on its own: the SinkWorker does.
//
// Owned by its SinkWorker; deliver() and close() run on the daemon's event loop, one call at a
// time. Within a deliver() up to `concurrency` requests are in flight, each on its own
// keep-alive connection taken from (and returned to) a pool of idle connections to `url`'s
// origin. Every connect, TLS handshake and request/response exchange is bounded by `timeout`,
// so a slow or dead endpoint holds only this sink's worker. Interim 1xx answers are skipped; a
// connection goes back to the pool only when its answer was read to the end with nothing left
// over. With `follow_redirects`, https never leads to plain http, and another origin gets
// neither the configured headers nor the signature (webhook_policy.hpp). Through an HTTP proxy
// (`proxy`, or the environment: net/proxy.hpp) an https target is reached by a CONNECT tunnel
// with TLS verified end to end inside it, an http target by absolute-form requests; the
// proxy's credentials go to the proxy only.
namespace sluice::sinks {

struct WebhookSinkOptions {
  std::function<std::chrono::system_clock::time_point()> now;  // webhook-timestamp, Retry-After
  std::size_t max_redirects = 5;                               // with follow_redirects
  std::function<void(unsigned status)> on_response;            // every HTTP response (metrics)
};

class WebhookSink final : public Sink {
 public:
  using Options = WebhookSinkOptions;

  // Returns nullptr with `error` set when the URL or the TLS files are unusable.
  static std::unique_ptr<WebhookSink> create(boost::asio::any_io_executor loop,
                                             WebhookSinkConfig config, std::string name,
                                             std::string project, std::string& error,
                                             Options options = {});
  ~WebhookSink() override;
  WebhookSink(const WebhookSink&) = delete;
  WebhookSink& operator=(const WebhookSink&) = delete;

  std::size_t max_batch() const override;
  std::chrono::milliseconds max_wait() const override;
  boost::asio::awaitable<void> deliver(std::span<const Record> batch,
                                       std::span<Result> results) override;
  boost::asio::awaitable<void> close() override;

  // Counters for tests and logs; read between deliveries.
  struct Stats {
    std::uint64_t requests = 0;
    std::uint64_t connections_opened = 0;
  };
  Stats stats() const { return stats_; }

  // The request for records [first, first + count) of `batch`, fully built and signed.
  // Public for the unit tests.
  boost::beast::http::request<boost::beast::http::string_body> build_request(
      std::span<const Record> records) const;

 private:
  struct Connection;
  struct Target {
    net::Endpoint endpoint;
    std::string target;  // path and query
  };
  using Request = boost::beast::http::request<boost::beast::http::string_body>;

  WebhookSink(boost::asio::any_io_executor loop, WebhookSinkConfig config, std::string name,
              std::string project, Target target, std::shared_ptr<boost::asio::ssl::context> tls,
              net::ProxyChoice proxies, Options options);

  // By reference: a by-value class argument inside co_await trips GCC 12 (double destruction).
  boost::asio::awaitable<Result> send(Request& request);
  boost::asio::awaitable<Result> send_to(const Target& target, Request& request, bool pooled,
                                         unsigned& status, std::string& location);
  boost::asio::awaitable<std::unique_ptr<Connection>> open(const net::Endpoint& endpoint,
                                                           std::string& error);
  std::chrono::system_clock::time_point now() const;
  bool batching() const;

  boost::asio::any_io_executor loop_;
  WebhookSinkConfig config_;
  std::string name_;
  std::string project_;
  Target target_;
  std::shared_ptr<boost::asio::ssl::context> tls_;  // null until an https connection needs it
  net::ProxyChoice proxies_;
  Options options_;
  std::string key_;                                   // the HMAC key (decoded for whsec_ secrets)
  std::vector<std::string_view> configured_headers_;  // names, views into config_.headers
  std::vector<std::unique_ptr<Connection>> idle_;
  Stats stats_;
};

}  // namespace sluice::sinks
