#pragma once

#include <memory>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include "emulator/engine.hpp"

// The socket side of appwrite-emulator: one listener serving HTTP (REST and control endpoints)
// and WebSocket upgrades on /v1/realtime, plain or TLS on the same port. All protocol decisions
// are the Engine's; this file only moves bytes.
namespace sluice::emulator {

// Owned by main; runs its coroutines on the single-threaded io_context it was given.
class Server {
 public:
  // `tls`: when set, connections that start with a TLS ClientHello are served over TLS (https
  // and wss); plain ones keep working on the same port.
  Server(boost::asio::io_context& io, Engine& engine,
         std::shared_ptr<boost::asio::ssl::context> tls);

  // Binds and listens; throws boost::system::system_error at start-up. Returns the bound
  // address (port 0 resolved).
  boost::asio::ip::tcp::endpoint listen(const boost::asio::ip::tcp::endpoint& where);
  // Starts accepting. Connections run until the io_context stops.
  void start();
  void stop();

 private:
  boost::asio::io_context& io_;
  Engine& engine_;
  std::shared_ptr<boost::asio::ssl::context> tls_;
  boost::asio::ip::tcp::acceptor acceptor_;
};

}  // namespace sluice::emulator
