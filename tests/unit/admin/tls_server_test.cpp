// The admin server with enable_tls(), over real loopback sockets. A throw-away CA, server and
// client certificates are made with OpenSSL's API in a temporary directory for each test, so no
// key is ever committed. Every wait has a deadline; nothing sleeps.
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <stdexcept>

#include <gtest/gtest.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
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
#include <boost/beast/ssl/ssl_stream.hpp>

#include "daemon/admin/server.hpp"

namespace sluice::admin {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = asio::ssl;
namespace fs = std::filesystem;
using tcp = asio::ip::tcp;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;
using namespace std::chrono_literals;

constexpr auto kClientDeadline = 10s;  // per client operation: only a hung server reaches it
constexpr auto kTestDeadline = 30s;    // per test body

// ---- A throw-away PKI ------------------------------------------------------------------------

struct KeyFree {
  void operator()(EVP_PKEY* k) const { ::EVP_PKEY_free(k); }
};
struct CertFree {
  void operator()(X509* c) const { ::X509_free(c); }
};
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;
using Cert = std::unique_ptr<X509, CertFree>;

struct Issued {
  Key key;
  Cert cert;
};

void check(bool ok, const char* what) {
  if (!ok)
    throw std::runtime_error(std::string("OpenSSL: ") + what);
}

Key new_key() {
  Key key(::EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  check(key != nullptr, "EC key generation");
  return key;
}

void add_extension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = ::X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  check(ext != nullptr, value);
  check(::X509_add_ext(cert, ext, -1) == 1, "add extension");
  ::X509_EXTENSION_free(ext);
}

// Signs a certificate for `cn` with `issuer` (self-signed when null).
Issued issue(const std::string& cn, const Issued* issuer, bool is_ca, long serial) {
  Issued out{new_key(), Cert(::X509_new())};
  X509* cert = out.cert.get();
  check(::X509_set_version(cert, 2) == 1, "version");
  check(::ASN1_INTEGER_set(::X509_get_serialNumber(cert), serial) == 1, "serial");
  check(::X509_gmtime_adj(::X509_getm_notBefore(cert), -3600) != nullptr, "notBefore");
  check(::X509_gmtime_adj(::X509_getm_notAfter(cert), 24 * 3600) != nullptr, "notAfter");
  check(::X509_set_pubkey(cert, out.key.get()) == 1, "pubkey");
  X509_NAME* name = ::X509_get_subject_name(cert);
  check(::X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                     reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                     0) == 1,
        "CN");
  X509* signer = issuer ? issuer->cert.get() : cert;
  check(::X509_set_issuer_name(cert, ::X509_get_subject_name(signer)) == 1, "issuer");
  if (is_ca) {
    add_extension(cert, signer, NID_basic_constraints, "critical,CA:TRUE");
    add_extension(cert, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_extension(cert, signer, NID_basic_constraints, "critical,CA:FALSE");
    add_extension(cert, signer, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
  }
  EVP_PKEY* signing_key = issuer ? issuer->key.get() : out.key.get();
  check(::X509_sign(cert, signing_key, ::EVP_sha256()) > 0, "sign");
  return out;
}

void write_cert(const fs::path& path, X509* cert) {
  FILE* f = std::fopen(path.c_str(), "w");
  check(f != nullptr, "open cert file");
  const bool ok = ::PEM_write_X509(f, cert) == 1;
  std::fclose(f);
  check(ok, "write cert");
}

void write_key(const fs::path& path, EVP_PKEY* key, const char* passphrase = nullptr) {
  FILE* f = std::fopen(path.c_str(), "w");
  check(f != nullptr, "open key file");
  const EVP_CIPHER* cipher = passphrase ? ::EVP_aes_256_cbc() : nullptr;
  const bool ok =
      ::PEM_write_PKCS8PrivateKey(f, key, cipher, nullptr, 0, nullptr,
                                  const_cast<char*>(passphrase)) == 1;  // API predates const
  std::fclose(f);
  check(ok, "write key");
}

// Two CAs (the second one trusted by nobody), a server certificate for 127.0.0.1 and a client
// certificate, all from the first CA; files in a fresh directory removed at the end.
class TestPki {
 public:
  TestPki() {
    std::string pattern = (fs::temp_directory_path() / "sluice-admin-tls-XXXXXX").string();
    check(::mkdtemp(pattern.data()) != nullptr, "mkdtemp");
    dir_ = pattern;
    const auto ca = issue("sluice test CA", nullptr, true, 1);
    const auto other_ca = issue("someone else's CA", nullptr, true, 2);
    const auto server = issue("127.0.0.1", &ca, false, 3);
    const auto client = issue("admin client", &ca, false, 4);
    const auto stranger = issue("stranger", &other_ca, false, 5);
    write_cert(ca_file(), ca.cert.get());
    write_cert(other_ca_file(), other_ca.cert.get());
    write_cert(server_cert(), server.cert.get());
    write_key(server_key(), server.key.get());
    write_key(encrypted_server_key(), server.key.get(), "secret");
    write_cert(stranger_cert(), stranger.cert.get());
    write_key(stranger_key(), stranger.key.get());
    write_cert(client_cert(), client.cert.get());
    write_key(client_key(), client.key.get());
  }
  ~TestPki() {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  TestPki(const TestPki&) = delete;
  TestPki& operator=(const TestPki&) = delete;

  std::string path(const char* name) const { return (dir_ / name).string(); }
  std::string ca_file() const { return path("ca.pem"); }
  std::string other_ca_file() const { return path("other-ca.pem"); }
  std::string server_cert() const { return path("server.pem"); }
  std::string server_key() const { return path("server.key"); }
  std::string encrypted_server_key() const { return path("server-encrypted.key"); }
  std::string stranger_cert() const { return path("stranger.pem"); }
  std::string stranger_key() const { return path("stranger.key"); }
  std::string client_cert() const { return path("client.pem"); }
  std::string client_key() const { return path("client.key"); }

  config::TlsConfig server_config() const {
    config::TlsConfig tls;
    tls.cert_file = server_cert();
    tls.key_file = server_key();
    return tls;
  }

 private:
  fs::path dir_;
};

// ---- Clients ---------------------------------------------------------------------------------

struct ClientOptions {
  std::string ca_file{};
  std::string cert_file{};  // with key_file: present a client certificate
  std::string key_file{};
};

std::shared_ptr<ssl::context> client_context(const ClientOptions& options) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  ctx->load_verify_file(options.ca_file);
  ctx->set_verify_mode(ssl::verify_peer);
  if (!options.cert_file.empty()) {
    ctx->use_certificate_chain_file(options.cert_file);
    ctx->use_private_key_file(options.key_file, ssl::context::pem);
  }
  return ctx;
}

asio::awaitable<beast::tcp_stream> connect_tcp(tcp::endpoint endpoint) {
  beast::tcp_stream stream(co_await asio::this_coro::executor);
  stream.expires_after(kClientDeadline);
  co_await stream.async_connect(endpoint, asio::use_awaitable);
  co_return stream;
}

// Connects and completes the handshake, checking the server's name; returns the handshake's
// outcome so tests can expect failures.
asio::awaitable<boost::system::error_code> connect_tls(TlsStream& stream, tcp::endpoint endpoint) {
  auto& tcp_layer = stream.next_layer();
  tcp_layer.expires_after(kClientDeadline);
  co_await tcp_layer.async_connect(endpoint, asio::use_awaitable);
  stream.set_verify_callback(ssl::host_name_verification("127.0.0.1"));
  auto [ec] = co_await stream.async_handshake(ssl::stream_base::client,
                                              asio::as_tuple(asio::use_awaitable));
  co_return ec;
}

struct Reply {
  http::status status{};
  std::string body;
  bool keep_alive = false;
};

// A handshake and one GET /healthz, reporting the first failure instead of throwing.
asio::awaitable<boost::system::error_code> try_request(TlsStream& stream, tcp::endpoint endpoint) {
  if (auto ec = co_await connect_tls(stream, endpoint))
    co_return ec;
  http::request<http::empty_body> request{http::verb::get, "/healthz", 11};
  request.set(http::field::host, "127.0.0.1");
  constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
  auto [write_ec, written] = co_await http::async_write(stream, request, kNoThrow);
  if (write_ec)
    co_return write_ec;
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  auto [read_ec, read] = co_await http::async_read(stream, buffer, response, kNoThrow);
  co_return read_ec;
}

template <class Stream>
asio::awaitable<Reply> get(Stream& stream, std::string target, bool keep_alive = true) {
  http::request<http::empty_body> request{http::verb::get, target, 11};
  request.set(http::field::host, "127.0.0.1");
  request.keep_alive(keep_alive);
  beast::get_lowest_layer(stream).expires_after(kClientDeadline);
  co_await http::async_write(stream, request, asio::use_awaitable);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(16u << 20);
  co_await http::async_read(stream, buffer, parser, asio::use_awaitable);
  co_return Reply{parser.get().result(), parser.get().body(), parser.get().keep_alive()};
}

// Reads until the server ends the connection; returns how it ended.
template <class Stream>
asio::awaitable<boost::system::error_code> await_close(Stream& stream) {
  std::array<char, 512> scratch{};
  beast::get_lowest_layer(stream).expires_after(kClientDeadline);
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
  StderrCapture(const StderrCapture&) = delete;
  StderrCapture& operator=(const StderrCapture&) = delete;
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

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
    ++n;
  return n;
}

// ---- Fixture ---------------------------------------------------------------------------------

class AdminTlsTest : public ::testing::Test {
 protected:
  void start(const config::TlsConfig& tls, Limits limits = {}) {
    Handlers handlers;
    handlers.ready = [] { return true; };
    server_ = std::make_unique<AdminServer>(io_.get_executor(), metrics_, std::move(handlers),
                                            config::Secret{}, limits);
    ASSERT_EQ(server_->enable_tls(tls), "");
    ASSERT_FALSE(server_->listen("127.0.0.1", 0));
    endpoint_ = server_->local_endpoint();
    server_->start();
  }

  void run(std::function<asio::awaitable<void>()> body) {
    bool done = false;
    std::exception_ptr error;
    asio::co_spawn(io_, body(), [&](std::exception_ptr e) {
      error = std::move(e);
      done = true;
    });
    const auto deadline = std::chrono::steady_clock::now() + kTestDeadline;
    while (!done && !io_.stopped() && std::chrono::steady_clock::now() < deadline)
      io_.run_one_until(deadline);
    ASSERT_TRUE(done) << "the test did not finish within its deadline";
    if (error)
      std::rethrow_exception(error);
  }

  void stop_and_drain() {
    server_->stop();
    const auto deadline = std::chrono::steady_clock::now() + kTestDeadline;
    while (!io_.stopped() && std::chrono::steady_clock::now() < deadline)
      io_.run_one_until(deadline);
    EXPECT_TRUE(io_.stopped()) << "work left on the loop after stop()";
    EXPECT_EQ(server_->connection_count(), 0u);
  }

  void TearDown() override {
    if (server_ && !io_.stopped())
      stop_and_drain();
  }

  asio::awaitable<void> await_connections(std::size_t n) {
    asio::steady_timer tick(io_);
    const auto deadline = std::chrono::steady_clock::now() + kClientDeadline;
    while (server_->connection_count() != n) {
      if (std::chrono::steady_clock::now() > deadline)
        throw std::runtime_error("connection count never reached " + std::to_string(n));
      tick.expires_after(1ms);
      co_await tick.async_wait(asio::use_awaitable);
    }
  }

  std::string failures(const char* reason) const {
    const std::string prefix =
        std::string("sluice_admin_tls_handshake_failures_total{reason=\"") + reason + "\"} ";
    const auto body = metrics_.render();
    const auto at = body.find(prefix);
    if (at == std::string::npos)
      return "absent";
    return body.substr(at + prefix.size(), body.find('\n', at) - at - prefix.size());
  }

  TestPki pki_;
  asio::io_context io_;
  Metrics metrics_;
  std::unique_ptr<AdminServer> server_;
  tcp::endpoint endpoint_;
};

TEST_F(AdminTlsTest, ServesMetricsOverTlsVerifiedAgainstTheCa) {
  start(pki_.server_config());
  const ClientOptions trusting{.ca_file = pki_.ca_file()};
  const auto ctx = client_context(trusting);
  run([&]() -> asio::awaitable<void> {
    TlsStream stream(co_await asio::this_coro::executor, *ctx);
    const auto ec = co_await connect_tls(stream, endpoint_);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_GE(::SSL_version(stream.native_handle()), TLS1_2_VERSION);

    const auto metrics = co_await get(stream, "/metrics");
    EXPECT_EQ(metrics.status, http::status::ok);
    EXPECT_NE(metrics.body.find("sluice_build_info{version=\"" SLUICE_VERSION "\"} 1"),
              std::string::npos);
    EXPECT_NE(metrics.body.find("sluice_admin_tls_handshake_failures_total{reason=\"timeout\"} 0"),
              std::string::npos);
    EXPECT_TRUE(metrics.keep_alive);
    // Same connection, same routes.
    const auto ready = co_await get(stream, "/readyz", false);
    EXPECT_EQ(ready.status, http::status::ok);
    EXPECT_EQ(ready.body, "ready\n");
    // After `Connection: close` the server ends the TLS session properly (close_notify).
    const auto end = co_await await_close(stream);
    EXPECT_EQ(end, asio::error::eof) << end.message();
  });
}

TEST_F(AdminTlsTest, AClientTrustingAnotherCaRefusesTheServer) {
  start(pki_.server_config());
  const ClientOptions distrusting{.ca_file = pki_.other_ca_file()};
  const auto ctx = client_context(distrusting);
  run([&]() -> asio::awaitable<void> {
    TlsStream stream(co_await asio::this_coro::executor, *ctx);
    const auto ec = co_await connect_tls(stream, endpoint_);
    EXPECT_TRUE(ec);
    EXPECT_NE(ec.message().find("certificate verify failed"), std::string::npos) << ec.message();
  });
}

TEST_F(AdminTlsTest, PlainHttpIsRefusedCountedLoggedWithALimitAndServingGoesOn) {
  StderrCapture capture;
  start(pki_.server_config());
  constexpr int kAttempts = 8;
  const ClientOptions trusting{.ca_file = pki_.ca_file()};
  const auto ctx = client_context(trusting);
  run([&]() -> asio::awaitable<void> {
    for (int i = 0; i < kAttempts; ++i) {
      auto plain = co_await connect_tcp(endpoint_);
      const auto reply = co_await get(plain, "/metrics");
      EXPECT_EQ(reply.status, http::status::bad_request);
      EXPECT_EQ(reply.body, "This port serves HTTPS.\n");
      EXPECT_FALSE(reply.keep_alive);
      EXPECT_TRUE(closed_by_peer(co_await await_close(plain)));
    }
    TlsStream stream(co_await asio::this_coro::executor, *ctx);
    const auto ec = co_await connect_tls(stream, endpoint_);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ((co_await get(stream, "/healthz")).status, http::status::ok);
  });
  EXPECT_EQ(failures("plain_http"), std::to_string(kAttempts));
  EXPECT_EQ(failures("other"), "0");
  stop_and_drain();
  const auto logged = capture.text();
  // Five records per minute, however many clients get it wrong.
  EXPECT_EQ(count(logged, "TLS handshake failed"), 5u) << logged;
}

TEST_F(AdminTlsTest, ASilentClientTimesOutWhileAnotherIsServed) {
  // The request timeout is long: only the handshake timeout can end the silent connection.
  start(pki_.server_config(), Limits{.handshake_timeout = 300ms, .request_timeout = 60s});
  const ClientOptions trusting{.ca_file = pki_.ca_file()};
  const auto ctx = client_context(trusting);
  run([&]() -> asio::awaitable<void> {
    auto silent = co_await connect_tcp(endpoint_);
    co_await await_connections(1);

    TlsStream stream(co_await asio::this_coro::executor, *ctx);
    const auto ec = co_await connect_tls(stream, endpoint_);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ((co_await get(stream, "/healthz")).status, http::status::ok);

    EXPECT_TRUE(closed_by_peer(co_await await_close(silent)));
    co_await await_connections(1);  // the served client is still connected
    EXPECT_EQ((co_await get(stream, "/status")).status, http::status::ok);
  });
  EXPECT_EQ(failures("timeout"), "1");
}

TEST_F(AdminTlsTest, ClientsThatNeverSendAClientHelloDoNotStarveProbes) {
  start(pki_.server_config());  // the daemon's limits
  const ClientOptions trusting{.ca_file = pki_.ca_file()};
  const auto ctx = client_context(trusting);
  run([&]() -> asio::awaitable<void> {
    std::vector<beast::tcp_stream> silent;
    for (int i = 0; i < 128; ++i)
      silent.push_back(co_await connect_tcp(endpoint_));
    for (int i = 0; i < 25; ++i) {
      TlsStream probe(co_await asio::this_coro::executor, *ctx);
      const auto ec = co_await connect_tls(probe, endpoint_);
      EXPECT_FALSE(ec) << i << ": " << ec.message();
      if (ec)
        co_return;
      EXPECT_EQ((co_await get(probe, "/healthz", false)).status, http::status::ok) << i;
    }
  });
  // Shed connections are not handshake failures.
  EXPECT_EQ(failures("timeout"), "0");
  EXPECT_EQ(failures("other"), "0");
}

TEST_F(AdminTlsTest, GarbageInsteadOfAClientHelloIsCountedAndClosed) {
  start(pki_.server_config());
  run([&]() -> asio::awaitable<void> {
    auto garbage = co_await connect_tcp(endpoint_);
    const std::string noise(64, '\x16');
    co_await asio::async_write(garbage, asio::buffer(noise), asio::use_awaitable);
    EXPECT_TRUE(closed_by_peer(co_await await_close(garbage)));
  });
  EXPECT_EQ(failures("other"), "1");
}

TEST_F(AdminTlsTest, ClientCertificatesAreRequiredWhenACaIsGiven) {
  auto tls = pki_.server_config();
  tls.ca_file = pki_.ca_file();
  start(tls);
  const ClientOptions anonymous{.ca_file = pki_.ca_file()};
  const ClientOptions stranger{.ca_file = pki_.ca_file(),
                               .cert_file = pki_.stranger_cert(),
                               .key_file = pki_.stranger_key()};
  const ClientOptions known{
      .ca_file = pki_.ca_file(), .cert_file = pki_.client_cert(), .key_file = pki_.client_key()};
  const auto anonymous_ctx = client_context(anonymous);
  const auto stranger_ctx = client_context(stranger);
  const auto known_ctx = client_context(known);
  run([&]() -> asio::awaitable<void> {
    // With TLS 1.3 the client may finish its side before the server has judged its
    // certificate, so the refusal can surface on the request rather than the handshake.
    TlsStream without(co_await asio::this_coro::executor, *anonymous_ctx);
    EXPECT_TRUE(co_await try_request(without, endpoint_));
    TlsStream foreign(co_await asio::this_coro::executor, *stranger_ctx);
    EXPECT_TRUE(co_await try_request(foreign, endpoint_));

    TlsStream with(co_await asio::this_coro::executor, *known_ctx);
    const auto ec = co_await try_request(with, endpoint_);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ((co_await get(with, "/metrics")).status, http::status::ok);
  });
  EXPECT_EQ(failures("other"), "2");
}

TEST_F(AdminTlsTest, StopEndsHandshakingAndServingConnections) {
  start(pki_.server_config());
  const ClientOptions trusting{.ca_file = pki_.ca_file()};
  const auto ctx = client_context(trusting);
  run([&]() -> asio::awaitable<void> {
    TlsStream stream(co_await asio::this_coro::executor, *ctx);
    EXPECT_FALSE(co_await connect_tls(stream, endpoint_));
    EXPECT_EQ((co_await get(stream, "/healthz")).status, http::status::ok);
    auto silent = co_await connect_tcp(endpoint_);
    co_await await_connections(2);
    server_->stop();
    EXPECT_TRUE(co_await await_close(stream));
    EXPECT_TRUE(closed_by_peer(co_await await_close(silent)));
  });
  stop_and_drain();
  EXPECT_EQ(failures("timeout"), "0");
}

// ---- enable_tls() errors ---------------------------------------------------------------------

class EnableTlsTest : public ::testing::Test {
 protected:
  std::string enable(const config::TlsConfig& tls) {
    AdminServer server(io_.get_executor(), metrics_, Handlers{}, config::Secret{});
    return server.enable_tls(tls);
  }
  TestPki pki_;
  asio::io_context io_;
  Metrics metrics_;
};

TEST_F(EnableTlsTest, MissingCertificateFileIsNamed) {
  auto tls = pki_.server_config();
  tls.cert_file = pki_.path("missing.pem");
  const auto error = enable(tls);
  EXPECT_NE(error.find("cert_file \"" + tls.cert_file + "\": "), std::string::npos) << error;
}

TEST_F(EnableTlsTest, NotPemIsNamed) {
  auto tls = pki_.server_config();
  tls.cert_file = pki_.path("garbage.pem");
  std::ofstream(tls.cert_file) << "not a certificate\n";
  const auto error = enable(tls);
  EXPECT_NE(error.find("cert_file \"" + tls.cert_file + "\": "), std::string::npos) << error;
}

TEST_F(EnableTlsTest, KeyThatDoesNotMatchTheCertificateIsRefused) {
  auto tls = pki_.server_config();
  tls.key_file = pki_.stranger_key();
  const auto error = enable(tls);
  EXPECT_NE(error.find("key_file \"" + tls.key_file + "\": "), std::string::npos) << error;
}

TEST_F(EnableTlsTest, EncryptedKeyFailsInsteadOfPrompting) {
  auto tls = pki_.server_config();
  tls.key_file = pki_.encrypted_server_key();
  const auto error = enable(tls);
  EXPECT_NE(error.find("key_file \"" + tls.key_file + "\": "), std::string::npos) << error;
}

TEST_F(EnableTlsTest, MissingClientCaIsNamed) {
  auto tls = pki_.server_config();
  tls.ca_file = pki_.path("missing-ca.pem");
  const auto error = enable(tls);
  EXPECT_NE(error.find("ca_file \"" + tls.ca_file + "\": "), std::string::npos) << error;
}

TEST_F(EnableTlsTest, CertificateAndKeyAreRequired) {
  config::TlsConfig tls;
  EXPECT_NE(enable(tls), "");
}

TEST_F(EnableTlsTest, ValidFilesAreAccepted) {
  EXPECT_EQ(enable(pki_.server_config()), "");
}

}  // namespace
}  // namespace sluice::admin
