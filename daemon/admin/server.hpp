#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include "config/config.hpp"
#include "core/metrics.hpp"
#include "daemon/admin/routes.hpp"

namespace sluice::admin {

// Bounds that keep slow, idle or hostile clients from holding the admin server's resources or
// crowding out the health probes. Fixed (no configuration keys): they only have to be generous
// for a probe or a scraper, which send a whole request at once, and tight for a flood.
struct Limits {
  // Time allowed for a TLS handshake, so a client that connects and never sends a ClientHello
  // holds its connection only briefly (only with enable_tls()).
  std::chrono::steady_clock::duration handshake_timeout = std::chrono::seconds(5);
  // Time allowed for one whole request (head and body) to arrive: on a new connection from its
  // accept (after the handshake), on a kept-alive one from the request's first byte. Short, so
  // a client that dribbles a request head (slowloris) is dropped soon.
  std::chrono::steady_clock::duration request_timeout = std::chrono::seconds(5);
  // Time a kept-alive connection may wait for its next request.
  std::chrono::steady_clock::duration idle_timeout = std::chrono::seconds(30);
  // Time allowed to send one response to a client that does not read it.
  std::chrono::steady_clock::duration write_timeout = std::chrono::seconds(10);
  // At either cap a new connection sheds the one that has waited longest for a request (see
  // ConnectionSlots); it is refused only when all of them are busy answering.
  std::size_t max_connections = 64;
  std::size_t max_connections_per_address = 16;  // per IPv4 address or IPv6 /64
  std::uint32_t header_limit = 8 * 1024;         // bytes; larger headers get 431
  std::uint64_t body_limit = 4 * 1024;           // bytes; larger bodies get 413
};

// The HTTP/1.1 admin endpoint: /metrics, /healthz, /readyz, /status (README, "Metrics and health"),
// in plain HTTP or, after enable_tls(), HTTPS only (TLS 1.2+); both share one session code path, so
// routes, limits and timeouts are the same.
//
// Owned by the daemon's App. Every operation, and every call to the handlers, runs on the
// daemon's single-threaded event loop (`loop`); construct, listen, start and stop it from that
// thread. Requests are tiny and everything it reads is atomics or loop-owned state, so it never
// blocks the event flow; and because /healthz is answered by the loop itself, a stuck loop
// fails the probe. Each connection is its own coroutine (a handshake or a read never holds up
// the accept loop), and ConnectionSlots decides which connections stay open. Sessions share
// the server's state through a shared_ptr, so destroying the server (which stops it) while
// sessions are still unwinding on the loop is safe. `metrics` must outlive the loop's last run.
class AdminServer {
 public:
  using Handlers = admin::Handlers;

  // An empty `token` means no authentication; otherwise /metrics and /status require
  // `Authorization: Bearer <token>`. /healthz and /readyz always stay open for probes.
  AdminServer(boost::asio::any_io_executor loop, Metrics& metrics, Handlers handlers,
              config::Secret token, Limits limits = {});
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds and listens. `host` is an IP address (IPv6 may be bracketed) or a name resolved
  // once, synchronously (start-up only). Port 0 picks a free port: see local_endpoint().
  boost::system::error_code listen(const std::string& host, std::uint16_t port);
  boost::asio::ip::tcp::endpoint local_endpoint() const;

  // Serves HTTPS instead of HTTP (`admin.tls`). `tls.cert_file` (PEM chain, leaf first) and
  // `tls.key_file` (PEM, unencrypted) are required. A non-empty `tls.ca_file` with `tls.verify`
  // turns on mutual TLS: every client must present a certificate issued by that CA. Call it
  // before start(). Returns an empty string on success, otherwise a one-line reason naming the
  // file, e.g. `cert_file "/etc/sluice/admin.pem": no start line`; the server then stays as it
  // was. Handshake failures are logged (rate-limited) and counted in
  // sluice_admin_tls_handshake_failures_total{reason="timeout"|"plain_http"|"other"}.
  [[nodiscard]] std::string enable_tls(const config::TlsConfig& tls);

  // Starts accepting (after a successful listen()). Returns at once; serving happens on the loop.
  void start();
  // Closes the acceptor and every open connection at once; their coroutines finish on the
  // loop's next turns, after which the server holds no work and the loop can finish.
  // Idempotent.
  void stop();

  // Connections currently open (for /status and tests). Connections shed to make room and
  // refused are counted in sluice_admin_connections_dropped_total{reason="shed"|"refused"}.
  std::size_t connection_count() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace sluice::admin
