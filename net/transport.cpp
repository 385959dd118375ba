#include "net/transport.hpp"

#include <openssl/ssl.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace sluice::net {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using boost::system::error_code;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

std::shared_ptr<ssl::context> make_client_tls_context(const config::TlsConfig& tls,
                                                      std::string& error) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  error_code ec;
  if (!tls.verify) {
    ctx->set_verify_mode(ssl::verify_none);
  } else {
    ctx->set_verify_mode(ssl::verify_peer);
    if (tls.ca_file.empty()) {
      ctx->set_default_verify_paths(ec);
    } else {
      ctx->load_verify_file(tls.ca_file, ec);
    }
    if (ec) {
      error = "cannot load CA certificates: " + ec.message();
      return nullptr;
    }
  }
  if (!tls.cert_file.empty()) {
    ctx->use_certificate_chain_file(tls.cert_file, ec);
    if (!ec)
      ctx->use_private_key_file(tls.key_file, ssl::context::pem, ec);
    if (ec) {
      error = "cannot load client certificate: " + ec.message();
      return nullptr;
    }
  }
  return ctx;
}

asio::awaitable<error_code> connect_tcp(boost::beast::tcp_stream& stream, const Endpoint& endpoint,
                                        std::chrono::milliseconds timeout) {
  asio::ip::tcp::resolver resolver(co_await asio::this_coro::executor);
  auto [rec, results] = co_await resolver.async_resolve(endpoint.host, endpoint.port, use_tuple);
  if (rec)
    co_return rec;
  stream.expires_after(timeout);
  auto [cec, ep] = co_await stream.async_connect(results, use_tuple);
  stream.expires_never();
  if (!cec)
    stream.socket().set_option(asio::ip::tcp::no_delay(true));
  co_return cec;
}

asio::awaitable<error_code> handshake_tls(TlsStream& stream, const Endpoint& endpoint, bool verify,
                                          std::chrono::milliseconds timeout) {
  // SNI: without it, virtual-hosted servers and CDNs present the wrong certificate.
  // SSL_set_tlsext_host_name() is a macro with a C cast; this is the call it expands to.
  if (SSL_ctrl(stream.native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
               const_cast<char*>(endpoint.host.c_str())) != 1) {
    co_return error_code(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category());
  }
  if (verify)
    stream.set_verify_callback(ssl::host_name_verification(endpoint.host));
  boost::beast::get_lowest_layer(stream).expires_after(timeout);
  auto [ec] = co_await stream.async_handshake(ssl::stream_base::client, use_tuple);
  boost::beast::get_lowest_layer(stream).expires_never();
  co_return ec;
}

std::string describe(const error_code& ec) {
  if (ec.category() == asio::error::get_ssl_category()) {
    char buf[256];
    ::ERR_error_string_n(static_cast<unsigned long>(ec.value()), buf, sizeof buf);
    return std::string("TLS: ") + ec.message() + " (" + buf + ")";
  }
  return ec.message();
}

}  // namespace sluice::net
