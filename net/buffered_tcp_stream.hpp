#pragma once

#include <cstddef>
#include <utility>

#include <boost/beast/core/buffered_read_stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/teardown.hpp>

namespace sluice::net {

// The stream under a plain-TCP WebSocket: a tcp_stream read through a 64 KiB buffer. Beast's
// WebSocket reads a frame's header into a 1.5 KB buffer and the rest of the payload with a
// second call, so a 4 KB event frame cost two recvmsg calls: a quarter of the event loop's
// time at 100,000 events/s. Through the buffer one call brings in many frames. (TLS needs no
// such layer: the TLS stream reads whole records.)
class BufferedTcpStream : public boost::beast::buffered_read_stream<boost::beast::tcp_stream,
                                                                    boost::beast::flat_buffer> {
 public:
  static constexpr std::size_t kReadBuffer = 64 * 1024;

  template <class... Args>
  explicit BufferedTcpStream(Args&&... args) : buffered_read_stream(std::forward<Args>(args)...) {
    capacity(kReadBuffer);
    buffer().reserve(kReadBuffer);  // each read asks for the free space: all of it from here
  }
};

// The WebSocket close handshake tears the connection down through these (found by ADL).
inline void teardown(boost::beast::role_type role, BufferedTcpStream& stream,
                     boost::system::error_code& ec) {
  using boost::beast::websocket::teardown;
  teardown(role, stream.next_layer(), ec);
}

template <class TeardownHandler>
void async_teardown(boost::beast::role_type role, BufferedTcpStream& stream,
                    TeardownHandler&& handler) {
  using boost::beast::websocket::async_teardown;
  async_teardown(role, stream.next_layer(), std::forward<TeardownHandler>(handler));
}

}  // namespace sluice::net
