// The benchmarks' baseline: the least a realtime client can do with the emulator's stream.
// Connects with a session cookie and URL channels, then only counts frames until `count`
// events arrived, and prints the elapsed time from the first to the last one. Whatever sluice
// does per event shows up as its ratio to this figure measured in the same run.
//
// usage: baseline_reader HOST PORT PROJECT SESSION CHANNEL COUNT
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>

#include "net/buffered_tcp_stream.hpp"

namespace asio = boost::asio;
namespace websocket = boost::beast::websocket;

int main(int argc, char** argv) {
  if (argc != 7) {
    std::fprintf(stderr, "usage: baseline_reader HOST PORT PROJECT SESSION CHANNEL COUNT\n");
    return 2;
  }
  const std::string host = argv[1], port = argv[2], project = argv[3], session = argv[4],
                    channel = argv[5];
  const long count = std::strtol(argv[6], nullptr, 10);
  try {
    asio::io_context io;
    asio::ip::tcp::resolver resolver(io);
    // The same buffered socket as sluice's plain-TCP client, so the baseline reads as fast as
    // sluice can: a few recvmsg calls per dozen frames.
    websocket::stream<sluice::net::BufferedTcpStream> ws(io);
    asio::connect(boost::beast::get_lowest_layer(ws).socket(), resolver.resolve(host, port));
    ws.set_option(websocket::stream_base::decorator([&](websocket::request_type& req) {
      req.set("Cookie", "a_session_" + project + "=" + session);
    }));
    ws.read_message_max(16u << 20);
    ws.handshake(host + ":" + port, "/v1/realtime?project=" + project + "&channels[]=" + channel);
    std::printf("connected\n");
    std::fflush(stdout);
    boost::beast::flat_buffer buffer;
    long events = 0;
    std::size_t bytes = 0;
    std::chrono::steady_clock::time_point first;
    while (events < count) {
      buffer.clear();
      bytes += ws.read(buffer);
      // Counting needs no parse: event frames start with {"type":"event".
      const auto* p = static_cast<const char*>(buffer.data().data());
      if (buffer.size() > 16 && std::string_view(p, 16) == R"({"type":"event",)") {
        if (events++ == 0)
          first = std::chrono::steady_clock::now();
      }
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - first).count();
    std::printf("events %ld bytes %zu seconds %.6f\n", events, bytes, secs);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "baseline_reader: %s\n", e.what());
    return 1;
  }
}
