// The admin server's shedding policy, without sockets or a clock: time is passed in.
#include "daemon/admin/connection_slots.hpp"

#include <gtest/gtest.h>

namespace sluice::admin {
namespace {

using namespace std::chrono_literals;
using Clock = ConnectionSlots::Clock;
using Id = ConnectionSlots::Id;

const auto kProbe = boost::asio::ip::make_address("10.0.0.1");
const auto kFlood = boost::asio::ip::make_address("10.0.0.2");
const auto kScraper = boost::asio::ip::make_address("10.0.0.3");
const Clock::time_point kT0{};

Id admitted(ConnectionSlots& slots, const boost::asio::ip::address& peer, Clock::time_point now) {
  const auto admission = slots.admit(peer, now);
  EXPECT_TRUE(admission.id.has_value());
  EXPECT_TRUE(admission.shed.empty());
  return admission.id.value_or(0);
}

TEST(ConnectionSlotsTest, BelowTheCapsEveryConnectionIsAdmitted) {
  ConnectionSlots slots(4, 4);
  for (int i = 0; i < 4; ++i)
    admitted(slots, i % 2 ? kFlood : kProbe, kT0 + i * 1s);
  EXPECT_EQ(slots.size(), 4u);
}

TEST(ConnectionSlotsTest, AtTheTotalCapTheLongestWaitingIsShed) {
  ConnectionSlots slots(3, 3);
  const Id a = admitted(slots, kFlood, kT0);
  const Id b = admitted(slots, kScraper, kT0 + 1s);
  const Id c = admitted(slots, kFlood, kT0 + 2s);
  // `a` answered a request at 3 s: it now waits from then, so `b` has waited longest.
  slots.busy(a);
  slots.waiting(a, kT0 + 3s);
  const auto admission = slots.admit(kProbe, kT0 + 4s);
  ASSERT_TRUE(admission.id);
  EXPECT_EQ(admission.shed, std::vector<Id>{b});
  EXPECT_FALSE(slots.contains(b));
  EXPECT_TRUE(slots.contains(a));
  EXPECT_TRUE(slots.contains(c));
  EXPECT_EQ(slots.size(), 3u);
}

TEST(ConnectionSlotsTest, ABusyConnectionIsNeverShedAndAllBusyRefusesTheNewcomer) {
  ConnectionSlots slots(2, 2);
  const Id a = admitted(slots, kFlood, kT0);
  const Id b = admitted(slots, kFlood, kT0 + 1s);
  slots.busy(a);
  const auto newcomer = slots.admit(kProbe, kT0 + 2s);
  ASSERT_TRUE(newcomer.id);
  EXPECT_EQ(newcomer.shed, std::vector<Id>{b});
  slots.busy(*newcomer.id);
  const auto refused = slots.admit(kProbe, kT0 + 3s);
  EXPECT_FALSE(refused.id);
  EXPECT_TRUE(refused.shed.empty());
  EXPECT_EQ(slots.size(), 2u);
}

TEST(ConnectionSlotsTest, AnAddressAtItsCapShedsOnlyItsOwnConnections) {
  ConnectionSlots slots(10, 2);
  const Id scraper = admitted(slots, kScraper, kT0);  // waiting longest of all
  const Id f1 = admitted(slots, kFlood, kT0 + 1s);
  const Id f2 = admitted(slots, kFlood, kT0 + 2s);
  const auto third = slots.admit(kFlood, kT0 + 3s);
  ASSERT_TRUE(third.id);
  EXPECT_EQ(third.shed, std::vector<Id>{f1});
  EXPECT_TRUE(slots.contains(scraper));
  EXPECT_TRUE(slots.contains(f2));
  // Another address is not limited by the flood's cap.
  admitted(slots, kProbe, kT0 + 4s);
}

TEST(ConnectionSlotsTest, AnAddressWhoseConnectionsAreAllBusyIsRefusedEvenWithRoomLeft) {
  ConnectionSlots slots(10, 1);
  const Id a = admitted(slots, kFlood, kT0);
  slots.busy(a);
  EXPECT_FALSE(slots.admit(kFlood, kT0 + 1s).id);
  admitted(slots, kProbe, kT0 + 1s);
}

TEST(ConnectionSlotsTest, AFloodNeverDisplacesAProbeThatArrivedAfterIt) {
  // 128 flood connections from one address, then a probe from the same address: the probe is
  // admitted and is the last one the flood's later connections would shed.
  ConnectionSlots slots(64, 16);
  for (int i = 0; i < 128; ++i)
    ASSERT_TRUE(slots.admit(kFlood, kT0 + i * 1ms).id);
  EXPECT_EQ(slots.size(), 16u);
  const auto probe = slots.admit(kFlood, kT0 + 1s);
  ASSERT_TRUE(probe.id);
  ASSERT_EQ(probe.shed.size(), 1u);
  for (int i = 0; i < 15; ++i) {
    const auto later = slots.admit(kFlood, kT0 + 2s + i * 1ms);
    ASSERT_EQ(later.shed.size(), 1u);
    EXPECT_NE(later.shed.front(), *probe.id);
  }
  EXPECT_TRUE(slots.contains(*probe.id));
}

TEST(ConnectionSlotsTest, AClientIsAnIpv4AddressOrAnIpv6Slash64) {
  using boost::asio::ip::make_address;
  EXPECT_EQ(ConnectionSlots::client_of(make_address("10.1.2.3")), make_address("10.1.2.3"));
  EXPECT_EQ(ConnectionSlots::client_of(make_address("::ffff:10.1.2.3")), make_address("10.1.2.3"));
  EXPECT_EQ(ConnectionSlots::client_of(make_address("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            make_address("2001:db8:1:2::"));

  // Hopping between addresses of one /64 counts as one client.
  ConnectionSlots slots(10, 2);
  admitted(slots, make_address("2001:db8:1:2::1"), kT0);
  admitted(slots, make_address("2001:db8:1:2::2"), kT0 + 1s);
  EXPECT_EQ(slots.admit(make_address("2001:db8:1:2::3"), kT0 + 2s).shed.size(), 1u);
  admitted(slots, make_address("2001:db8:1:3::1"), kT0 + 3s);
}

TEST(ConnectionSlotsTest, ReleaseOfAShedIdIsIgnored) {
  ConnectionSlots slots(1, 1);
  const Id a = admitted(slots, kFlood, kT0);
  const auto b = slots.admit(kFlood, kT0 + 1s);
  ASSERT_EQ(b.shed, std::vector<Id>{a});
  slots.release(a);
  EXPECT_TRUE(slots.contains(*b.id));
  slots.release(*b.id);
  EXPECT_EQ(slots.size(), 0u);
}

}  // namespace
}  // namespace sluice::admin
