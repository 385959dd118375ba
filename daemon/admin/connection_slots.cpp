#include "daemon/admin/connection_slots.hpp"

#include <algorithm>

namespace sluice::admin {

boost::asio::ip::address ConnectionSlots::client_of(const boost::asio::ip::address& peer) {
  if (!peer.is_v6())
    return peer;
  const auto v6 = peer.to_v6();
  if (v6.is_v4_mapped())
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, v6);
  auto bytes = v6.to_bytes();
  std::fill(bytes.begin() + 8, bytes.end(), 0);
  return boost::asio::ip::address_v6(bytes);
}

ConnectionSlots::ConnectionSlots(std::size_t max_total, std::size_t max_per_address)
    : max_total_(std::max<std::size_t>(max_total, 1)),
      max_per_address_(std::max<std::size_t>(max_per_address, 1)) {}

std::vector<ConnectionSlots::Slot>::iterator ConnectionSlots::longest_waiting(
    const boost::asio::ip::address* client) {
  auto best = slots_.end();
  for (auto it = slots_.begin(); it != slots_.end(); ++it) {
    if (it->busy || (client != nullptr && it->client != *client))
      continue;
    // Strictly earlier: on a tie the connection admitted first goes first.
    if (best == slots_.end() || it->waiting_since < best->waiting_since)
      best = it;
  }
  return best;
}

ConnectionSlots::Admission ConnectionSlots::admit(const boost::asio::ip::address& peer,
                                                  Clock::time_point now) {
  Admission admission;
  const auto client = client_of(peer);
  const auto same_client = static_cast<std::size_t>(std::count_if(
      slots_.begin(), slots_.end(), [&](const Slot& s) { return s.client == client; }));
  // Shedding one of the address's own connections also frees a place in the total, so at most
  // one connection is shed per admission.
  const bool address_full = same_client >= max_per_address_;
  if (address_full || slots_.size() >= max_total_) {
    const auto victim = longest_waiting(address_full ? &client : nullptr);
    if (victim == slots_.end())
      return admission;
    admission.shed.push_back(victim->id);
    slots_.erase(victim);
  }
  admission.id = next_id_++;
  slots_.push_back(Slot{*admission.id, client, false, now});
  return admission;
}

void ConnectionSlots::busy(Id id) {
  const auto it =
      std::find_if(slots_.begin(), slots_.end(), [&](const Slot& s) { return s.id == id; });
  if (it != slots_.end())
    it->busy = true;
}

void ConnectionSlots::waiting(Id id, Clock::time_point now) {
  const auto it =
      std::find_if(slots_.begin(), slots_.end(), [&](const Slot& s) { return s.id == id; });
  if (it != slots_.end()) {
    it->busy = false;
    it->waiting_since = now;
  }
}

void ConnectionSlots::release(Id id) {
  std::erase_if(slots_, [&](const Slot& s) { return s.id == id; });
}

bool ConnectionSlots::contains(Id id) const {
  return std::any_of(slots_.begin(), slots_.end(), [&](const Slot& s) { return s.id == id; });
}

}  // namespace sluice::admin
