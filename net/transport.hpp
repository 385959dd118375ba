#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "config/config.hpp"
#include "net/endpoint.hpp"

// Opening connections to Appwrite: TCP with a deadline, then TLS with SNI and host-name
// verification. Shared by the realtime client and the REST calls; free functions that run on
// the caller's executor.
namespace sluice::net {

using TlsStream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

// A client TLS context: peer verification on (system store, or `tls.ca_file`) unless
// `tls.verify` is false; an optional client certificate. Empty `error` on success.
std::shared_ptr<boost::asio::ssl::context> make_client_tls_context(const config::TlsConfig& tls,
                                                                   std::string& error);

// Resolves and connects `stream` to `endpoint` within `timeout`.
boost::asio::awaitable<boost::system::error_code> connect_tcp(boost::beast::tcp_stream& stream,
                                                              const Endpoint& endpoint,
                                                              std::chrono::milliseconds timeout);

// Sets SNI and the expected host name, then runs the TLS client handshake within `timeout`.
boost::asio::awaitable<boost::system::error_code> handshake_tls(TlsStream& stream,
                                                                const Endpoint& endpoint,
                                                                bool verify,
                                                                std::chrono::milliseconds timeout);

// A short, log-friendly description of a connection error (TLS errors include OpenSSL's reason).
std::string describe(const boost::system::error_code& ec);

}  // namespace sluice::net
