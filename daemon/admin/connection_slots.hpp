#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include <boost/asio/ip/address.hpp>

namespace sluice::admin {

// Which admin connections stay open when a new one arrives: the policy that keeps health probes
// answered under a flood of idle or slow connections, as plain code (no sockets, no clock).
//
// A connection is either answering a request (busy) or waiting for one: for its TLS handshake,
// for a first request, for the rest of a request that is arriving slowly, or for the next
// request on a kept-alive connection. When the total or the new connection's address is at its
// cap, the connection that has waited longest (within that address, or overall) is shed to
// make room, as Apache's event MPM sheds kept-alive connections under load: a probe arrives
// last, sends its request at once and is answered before it could become the oldest, while a
// flood only ever displaces itself. A connection is refused only when every candidate is busy.
// The per-address cap keeps one client from displacing another's connections (a scraper's
// kept-alive connection, the kubelet's probes). A client is an IPv4 address or an IPv6 /64,
// the block one host usually holds, so hopping between addresses of its own /64 gains it
// nothing.
//
// Owned by the AdminServer's state, used on the event loop only.
class ConnectionSlots {
 public:
  // The address the per-address cap counts `peer` under: an IPv4 address as it is (also when
  // it arrives v4-mapped on a dual-stack socket), an IPv6 address with its last 64 bits zeroed.
  static boost::asio::ip::address client_of(const boost::asio::ip::address& peer);

  using Id = std::uint64_t;
  using Clock = std::chrono::steady_clock;

  struct Admission {
    std::optional<Id> id;  // empty: refused, every candidate for shedding is busy
    std::vector<Id> shed;  // to close now; they are no longer counted
  };

  // Both caps are at least 1.
  ConnectionSlots(std::size_t max_total, std::size_t max_per_address);

  Admission admit(const boost::asio::ip::address& peer, Clock::time_point now);
  // A whole request arrived: the connection is answering it and is not shed meanwhile.
  void busy(Id id);
  // The answer is sent: the connection waits for its next request from `now`.
  void waiting(Id id, Clock::time_point now);
  // The connection closed. An id already shed is ignored.
  void release(Id id);

  bool contains(Id id) const;
  std::size_t size() const { return slots_.size(); }

 private:
  struct Slot {
    Id id;
    boost::asio::ip::address client;  // see client_of()
    bool busy;
    Clock::time_point waiting_since;
  };

  // The slot (of `client` if given) that has waited longest; end() if all are busy.
  std::vector<Slot>::iterator longest_waiting(const boost::asio::ip::address* client);

  std::size_t max_total_;
  std::size_t max_per_address_;
  Id next_id_ = 1;
  std::vector<Slot> slots_;  // in admission order; a few dozen at most, so scans are cheap
};

}  // namespace sluice::admin
