#include "sinks/webhook/webhook_sink.hpp"

#include <algorithm>
#include <exception>
#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>

#include "core/log.hpp"
#include "core/template.hpp"
#include "net/transport.hpp"
#include "sinks/webhook/webhook_policy.hpp"

namespace sluice::sinks {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using boost::system::error_code;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
using Scheme = WebhookSinkConfig::Signing::Scheme;

namespace {

// Responses are only read to be classified; a huge body must not exhaust memory.
constexpr std::uint64_t kResponseBodyLimit = 1u << 20;

std::optional<std::string> request_target(std::string_view url) {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed)
    return std::nullopt;
  std::string target(parsed->encoded_path());
  if (target.empty())
    target = "/";
  if (parsed->has_query())
    target += "?" + std::string(parsed->encoded_query());
  return target;
}

std::string url_of(const net::Endpoint& e, std::string_view target) {
  return std::string(e.secure ? "https://" : "http://") + e.host_header() + std::string(target);
}

// A kept-alive connection the server closed while it sat idle shows up as one of these on the
// next exchange; the request is then sent again on a fresh connection.
bool stale_connection(const error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == asio::ssl::error::stream_truncated;
}

using ResponseParser = http::response_parser<http::string_body>;

// Writes the request and reads answers until the final one: interim answers (1xx, which carry
// no body) are read to their end and discarded, however many come, all within the deadline the
// caller set on the stream.
template <class Stream>
asio::awaitable<error_code> exchange(Stream& stream, beast::flat_buffer& buffer,
                                     http::request<http::string_body>& request,
                                     std::optional<ResponseParser>& parser) {
  auto [wec, written] = co_await http::async_write(stream, request, use_tuple);
  if (wec)
    co_return wec;
  for (;;) {
    parser.emplace();
    parser->body_limit(kResponseBodyLimit);
    auto [rec, read] = co_await http::async_read(stream, buffer, *parser, use_tuple);
    if (rec || !webhook::is_interim(parser->get().result_int()))
      co_return rec;
  }
}

}  // namespace

struct WebhookSink::Connection {
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<net::TlsStream> tls;
  beast::flat_buffer buffer;
  beast::tcp_stream& lowest() { return plain ? *plain : beast::get_lowest_layer(*tls); }
};

std::unique_ptr<WebhookSink> WebhookSink::create(asio::any_io_executor loop,
                                                 WebhookSinkConfig config, std::string name,
                                                 std::string project, std::string& error,
                                                 Options options) {
  auto endpoint = net::parse_endpoint(config.url);
  auto target = request_target(config.url);
  if (!endpoint || !target || endpoint->host.empty()) {
    error = "sink \"" + name + "\": not an http(s) URL (see its url)";
    return nullptr;
  }
  // The environment is read once, here: a sink keeps the proxies it started with.
  auto proxies =
      net::ProxyChoice::make(config.proxy.reveal(), net::ProxyEnvironment::from_process(), error);
  if (!proxies) {
    error = "sink \"" + name + "\": " + error;
    return nullptr;
  }
  // An https URL loads its CA certificates now, so a bad `tls` section fails at start. An
  // http URL only needs them if a redirect leads to https: loading the system store costs
  // ~4 MB of resident memory, so that waits for the first such redirect (open()).
  std::shared_ptr<asio::ssl::context> tls;
  if (endpoint->secure) {
    tls = net::make_client_tls_context(config.tls, error);
    if (!tls) {
      error = "sink \"" + name + "\": " + error;
      return nullptr;
    }
  }
  return std::unique_ptr<WebhookSink>(
      new WebhookSink(std::move(loop), std::move(config), std::move(name), std::move(project),
                      Target{std::move(*endpoint), std::move(*target)}, std::move(tls),
                      std::move(*proxies), std::move(options)));
}

WebhookSink::WebhookSink(asio::any_io_executor loop, WebhookSinkConfig config, std::string name,
                         std::string project, Target target,
                         std::shared_ptr<asio::ssl::context> tls, net::ProxyChoice proxies,
                         Options options)
    : loop_(std::move(loop)),
      config_(std::move(config)),
      name_(std::move(name)),
      project_(std::move(project)),
      target_(std::move(target)),
      tls_(std::move(tls)),
      proxies_(std::move(proxies)),
      options_(std::move(options)) {
  if (config_.concurrency == 0)
    config_.concurrency = 1;
  for (const auto& [header, value] : config_.headers)
    configured_headers_.push_back(header);
  if (config_.signing.scheme == Scheme::standard)
    key_ = webhook::standard_key(config_.signing.secret.reveal());
  else
    key_ = config_.signing.secret.reveal();
  if (config_.signing.scheme == Scheme::appwrite && config_.batch.max_events > 0) {
    log::warn("webhook",
              "batching is ignored with signing scheme appwrite (one payload per request)",
              {{"sink", name_}});
  }
}

WebhookSink::~WebhookSink() = default;

std::chrono::system_clock::time_point WebhookSink::now() const {
  return options_.now ? options_.now() : std::chrono::system_clock::now();
}

bool WebhookSink::batching() const {
  // Appwrite's receivers expect exactly one payload object per request.
  return config_.batch.max_events > 0 && config_.signing.scheme != Scheme::appwrite;
}

std::chrono::milliseconds WebhookSink::max_wait() const {
  return batching() ? config_.batch.max_wait : std::chrono::milliseconds{0};
}

std::size_t WebhookSink::max_batch() const {
  return batching() ? std::size_t{config_.concurrency} * config_.batch.max_events
                    : std::size_t{config_.concurrency};
}

WebhookSink::Request WebhookSink::build_request(std::span<const Record> records) const {
  const Record& first = records.front();
  const Event& event = *first.event;
  Request req{http::verb::post, target_.target, 11};
  req.set(http::field::host, target_.endpoint.host_header());
  req.set(http::field::content_type, "application/json");
  req.set(http::field::user_agent, config_.signing.scheme == Scheme::appwrite
                                       ? webhook::appwrite_user_agent()
                                       : std::string("sluice/" SLUICE_VERSION));
  const TemplateContext context = first.template_context(project_);
  for (const auto& [name, value] : config_.headers)
    req.set(name, value.render(event, context));

  switch (config_.signing.scheme) {
    case Scheme::appwrite: {
      // What src/Appwrite/Platform/Workers/Webhooks.php (appwrite/appwrite) sends: the body is
      // json_encode($payload['payload']) alone; the signature is
      // base64_encode(hash_hmac('sha1', rawurldecode($url) . $payload, $signatureKey, true));
      // X-Appwrite-Webhook-{Id,Events (implode(',')),Name,User-Id,Project-Id,Signature}. The
      // sink's name stands in for the webhook's id and name; realtime events carry no user, so
      // User-Id is empty, as Appwrite sends it for events without a user.
      req.body() = std::string(event.payload);
      std::string events;
      for (std::size_t i = 0; i < event.events.size(); ++i) {
        if (i > 0)
          events += ',';
        events.append(event.events[i]);
      }
      req.set("X-Appwrite-Webhook-Id", name_);
      req.set("X-Appwrite-Webhook-Events", events);
      req.set("X-Appwrite-Webhook-Name", name_);
      req.set("X-Appwrite-Webhook-User-Id", "");
      req.set("X-Appwrite-Webhook-Project-Id", project_);
      req.set("X-Appwrite-Webhook-Signature",
              webhook::appwrite_signature(key_, config_.url, req.body()));
      break;
    }
    case Scheme::standard:
    case Scheme::none: {
      std::vector<std::string_view> data;
      std::vector<std::string_view> ids;
      data.reserve(records.size());
      ids.reserve(records.size());
      for (const auto& r : records) {
        data.push_back(r.event->data);
        ids.push_back(r.event->id);
      }
      req.body() = webhook::make_body(data, batching());
      if (config_.signing.scheme == Scheme::standard) {
        const std::string id = webhook::batch_id(ids);
        const auto secs =
            std::chrono::duration_cast<std::chrono::seconds>(now().time_since_epoch()).count();
        const std::string timestamp = std::to_string(secs);
        req.set("webhook-id", id);
        req.set("webhook-timestamp", timestamp);
        req.set("webhook-signature", webhook::standard_signature(key_, id, timestamp, req.body()));
      }
      break;
    }
  }
  req.keep_alive(true);
  req.prepare_payload();
  return req;
}

asio::awaitable<std::unique_ptr<WebhookSink::Connection>> WebhookSink::open(
    const net::Endpoint& endpoint, std::string& error) {
  auto conn = std::make_unique<Connection>();
  if (endpoint.secure) {
    if (!tls_) {
      tls_ = net::make_client_tls_context(config_.tls, error);
      if (!tls_) {
        error = "tls: " + error;
        co_return nullptr;
      }
    }
    conn->tls = std::make_unique<net::TlsStream>(loop_, *tls_);
  } else {
    conn->plain = std::make_unique<beast::tcp_stream>(loop_);
  }
  // Through a proxy the TCP connection goes to the proxy; for https it then carries a tunnel
  // to the target, and TLS runs inside it with the target's name, as on a direct connection.
  const net::Proxy* proxy = proxies_.for_target(endpoint);
  const error_code ec = co_await net::connect_tcp(
      conn->lowest(), proxy ? proxy->endpoint : endpoint, config_.timeout);
  if (ec) {
    const std::string what =
        ec == beast::error::timeout ? "timeout: connect" : "connect: " + ec.message();
    error = proxy ? "proxy: " + proxy->shown + ": " + what : what;
    co_return nullptr;
  }
  if (proxy && endpoint.secure) {
    if (auto refused = co_await net::open_tunnel(conn->lowest(), *proxy, endpoint, config_.timeout);
        !refused.empty()) {
      error = "proxy: " + proxy->shown + ": " + refused;
      co_return nullptr;
    }
  }
  if (endpoint.secure) {
    if (auto hec = co_await net::handshake_tls(*conn->tls, endpoint, config_.tls.verify,
                                               config_.timeout)) {
      error = "tls: " + net::describe(hec);
      co_return nullptr;
    }
  }
  ++stats_.connections_opened;
  co_return conn;
}

asio::awaitable<Result> WebhookSink::send_to(const Target& target, Request& request, bool pooled,
                                             unsigned& status, std::string& location) {
  std::unique_ptr<Connection> conn;
  while (pooled && !conn && !idle_.empty()) {
    conn = std::move(idle_.back());
    idle_.pop_back();
    // Bytes that arrived while the connection sat idle answer no request of ours: read, they
    // would be taken for the next answer. Such a connection is closed.
    error_code ec;
    if (conn->lowest().socket().available(ec) > 0 || ec)
      conn.reset();
  }
  bool reused = conn != nullptr;
  for (;;) {
    if (!conn) {
      std::string error;
      conn = co_await open(target.endpoint, error);
      if (!conn)
        co_return Result{Outcome::retry, error, {}};
    }
    // An http target behind a proxy is named in full on the request line, and only such a
    // request carries the proxy's credentials (an https target's went with CONNECT).
    const net::Proxy* proxy = proxies_.for_target(target.endpoint);
    if (proxy && !target.endpoint.secure) {
      request.target(url_of(target.endpoint, target.target));
      if (!proxy->authorization.empty())
        request.set(http::field::proxy_authorization, proxy->authorization);
    } else {
      request.target(target.target);
      request.erase(http::field::proxy_authorization);
    }
    std::optional<ResponseParser> parser;
    conn->lowest().expires_after(config_.timeout);
    error_code ec = conn->tls ? co_await exchange(*conn->tls, conn->buffer, request, parser)
                              : co_await exchange(*conn->plain, conn->buffer, request, parser);
    ++stats_.requests;
    const bool header_only = ec == http::error::body_limit && parser && parser->is_header_done();
    if (ec && !header_only) {
      if (reused && stale_connection(ec)) {
        conn.reset();
        reused = false;
        continue;
      }
      if (ec == beast::error::timeout)
        co_return Result{Outcome::retry, "timeout: no answer within the timeout", {}};
      co_return Result{Outcome::retry, "http: " + net::describe(ec), {}};
    }
    conn->lowest().expires_never();
    const auto& response = parser->get();
    status = response.result_int();
    if (options_.on_response)
      options_.on_response(status);
    location = std::string(response[http::field::location]);
    Result result = webhook::classify_status(status, response[http::field::retry_after], now());
    if (proxy && !target.endpoint.secure && status == 407) {
      // The proxy refused our credentials, not the receiver the record: retried (as when a
      // CONNECT is refused), never dead-lettered.
      co_return Result{
          Outcome::retry, "proxy: " + proxy->shown + ": 407 Proxy Authentication Required", {}};
    }
    if (pooled && idle_.size() < config_.concurrency &&
        webhook::reusable(status, response.keep_alive(), parser->is_done(), conn->buffer.size()))
      idle_.push_back(std::move(conn));
    co_return result;
  }
}

asio::awaitable<Result> WebhookSink::send(Request& request) {
  Target current = target_;
  bool pooled = true;
  for (std::size_t hops = 0;; ++hops) {
    unsigned status = 0;
    std::string location;
    Result result = co_await send_to(current, request, pooled, status, location);
    const bool redirect = status >= 300 && status < 400;
    if (!redirect || !config_.follow_redirects)
      co_return result;
    if (location.empty())
      co_return Result{
          Outcome::failed, "redirect: http " + std::to_string(status) + " without Location", {}};
    if (hops >= options_.max_redirects)
      co_return Result{Outcome::failed,
                       "redirect: more than " + std::to_string(options_.max_redirects) + " hops",
                       {}};
    // parse_uri() returns a view: the URL text must outlive `base`.
    const std::string current_url = url_of(current.endpoint, current.target);
    auto base = boost::urls::parse_uri(current_url);
    auto ref = boost::urls::parse_uri_reference(location);
    boost::urls::url next;
    if (!base || !ref || !boost::urls::resolve(*base, *ref, next))
      co_return Result{Outcome::failed, "redirect: bad Location: " + location, {}};
    auto endpoint = net::parse_endpoint(next.buffer());
    auto target = request_target(next.buffer());
    if (!endpoint || !target)
      co_return Result{Outcome::failed, "redirect: not http(s): " + location, {}};
    if (auto refused = webhook::refuse_redirect(current.endpoint, *endpoint))
      co_return Result{Outcome::failed, std::move(*refused), {}};
    current = Target{std::move(*endpoint), std::move(*target)};
    // Only the configured origin gets the configured headers and the signature, and only its
    // connections are pooled. Once dropped, they stay dropped for this request.
    pooled = webhook::same_origin(current.endpoint, target_.endpoint);
    if (!pooled)
      webhook::drop_for_other_origin(request, configured_headers_);
    request.set(http::field::host, current.endpoint.host_header());
  }
}

asio::awaitable<void> WebhookSink::deliver(std::span<const Record> batch,
                                           std::span<Result> results) {
  // One job per request: a record, or a run of records within batch.max_events/max_bytes.
  struct Job {
    std::size_t first = 0;
    std::size_t count = 0;
  };
  std::vector<Job> jobs;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (!batch[i].event) {
      results[i] = Result{Outcome::failed, "record: no event", {}};
      continue;
    }
    results[i] = Result{Outcome::retry, "not sent", {}};
    const std::uint64_t size = batch[i].event->data.size();
    if (batching() && !jobs.empty()) {
      Job& last = jobs.back();
      std::uint64_t bytes = 2;
      for (std::size_t k = last.first; k < last.first + last.count; ++k)
        bytes += batch[k].event->data.size() + 1;
      if (last.first + last.count == i && last.count < config_.batch.max_events &&
          bytes + size + 1 <= config_.batch.max_bytes) {
        ++last.count;
        continue;
      }
    }
    jobs.push_back(Job{i, 1});
  }
  if (jobs.empty())
    co_return;

  // Runners pull jobs until none is left; at most `concurrency` requests are in flight.
  std::size_t next = 0;
  std::size_t active = 0;
  asio::steady_timer done(loop_, asio::steady_timer::time_point::max());
  auto runner = [this, &jobs, &next, batch, results]() -> asio::awaitable<void> {
    while (next < jobs.size()) {
      const Job job = jobs[next++];
      Request request = build_request(batch.subspan(job.first, job.count));
      Result result = co_await send(request);
      for (std::size_t k = job.first; k < job.first + job.count; ++k)
        results[k] = result;
    }
  };
  const std::size_t runners = std::min<std::size_t>(config_.concurrency, jobs.size());
  for (std::size_t r = 0; r < runners; ++r) {
    ++active;
    asio::co_spawn(loop_, runner(), [this, &active, &done](std::exception_ptr e) {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          log::error("webhook", "request failed unexpectedly",
                     {{"sink", name_}, {"error", ex.what()}});
        } catch (...) {
          log::error("webhook", "request failed unexpectedly", {{"sink", name_}});
        }
      }
      if (--active == 0)
        done.cancel();
    });
  }
  while (active > 0)
    co_await done.async_wait(use_tuple);
}

asio::awaitable<void> WebhookSink::close() {
  // Idle connections are just closed: there is nothing in flight to finish.
  idle_.clear();
  co_return;
}

std::unique_ptr<Sink> build_sink(const WebhookSinkConfig& settings, const config::SinkConfig& sink,
                                 SinkContext context, std::string& error) {
  WebhookSink::Options options;
  if (context.metrics && context.metrics->responses) {
    options.on_response = [responses = context.metrics->responses](unsigned status) {
      static constexpr std::string_view kClasses[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
      const bool known = status >= 100 && status < 600;
      responses(known ? kClasses[status / 100 - 1] : "other").Increment();
    };
  }
  return WebhookSink::create(std::move(context.loop), settings, sink.name,
                             std::move(context.project), error, std::move(options));
}

}  // namespace sluice::sinks
