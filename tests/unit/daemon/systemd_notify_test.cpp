// SystemdNotifier against a real AF_UNIX datagram socket named by NOTIFY_SOCKET, which is what
// systemd gives a Type=notify service.
#include "daemon/systemd_notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/datagram_protocol.hpp>
#include <boost/asio/steady_timer.hpp>

namespace sluice {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

TEST(WatchdogPingInterval, IsHalfTheTimeout) {
  EXPECT_EQ(watchdog_ping_interval(30s), 15s);
  EXPECT_EQ(watchdog_ping_interval(std::chrono::microseconds{3}), std::chrono::microseconds{1});
  EXPECT_EQ(watchdog_ping_interval(std::chrono::microseconds{1}), std::chrono::microseconds{1});
}

TEST(SanitizeStatus, KeepsOneLineAndCapsLength) {
  EXPECT_EQ(sanitize_status("upstream: subscribed"), "upstream: subscribed");
  EXPECT_EQ(sanitize_status("a\nb\rc"), "a b c");
  EXPECT_EQ(sanitize_status(std::string(500, 'x')).size(), 200U);
}

// Owns a bound datagram socket in a fresh directory and points NOTIFY_SOCKET at it.
class NotifySocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir_template[] = "/tmp/sluice-notify-XXXXXX";
    ASSERT_NE(mkdtemp(dir_template), nullptr);
    dir_ = dir_template;
    path_ = dir_ + "/notify";
    socket_.open();
    socket_.bind(asio::local::datagram_protocol::endpoint(path_));
    setenv("NOTIFY_SOCKET", path_.c_str(), 1);
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
  }

  void TearDown() override {
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    socket_.close();
    std::filesystem::remove_all(dir_);
  }

  // The datagram already queued (sd_notify sends synchronously), or "" if there is none.
  std::string take() {
    char buffer[4096];
    boost::system::error_code ec;
    socket_.non_blocking(true);
    const auto n = socket_.receive(asio::buffer(buffer), 0, ec);
    return ec ? std::string() : std::string(buffer, n);
  }

  asio::io_context io_;
  asio::local::datagram_protocol::socket socket_{io_};
  std::string dir_;
  std::string path_;
};

TEST_F(NotifySocketTest, SendsTheLifecycleMessages) {
  SystemdNotifier notifier;
  ASSERT_TRUE(notifier.enabled());
  EXPECT_FALSE(notifier.watchdog_timeout());

  notifier.ready();
  EXPECT_EQ(take(), "READY=1");
  notifier.status("upstream subscribed\n3 sinks");
  EXPECT_EQ(take(), "STATUS=upstream subscribed 3 sinks");
  notifier.reloading();
  const auto reloading = take();
  EXPECT_EQ(reloading.rfind("RELOADING=1\nMONOTONIC_USEC=", 0), 0U) << reloading;
  EXPECT_GT(std::stoull(reloading.substr(reloading.find('=', 12) + 1)), 0U);
  notifier.watchdog();
  EXPECT_EQ(take(), "WATCHDOG=1");
  notifier.stopping();
  EXPECT_EQ(take(), "STOPPING=1");
  EXPECT_EQ(take(), "");
}

TEST_F(NotifySocketTest, DoesNothingWithoutNotifySocket) {
  unsetenv("NOTIFY_SOCKET");
  setenv("WATCHDOG_USEC", "100000", 1);
  SystemdNotifier notifier;
  EXPECT_FALSE(notifier.enabled());
  EXPECT_FALSE(notifier.watchdog_timeout());
  notifier.ready();
  notifier.start_watchdog(io_.get_executor());
  EXPECT_EQ(io_.poll(), 0U);  // no pinger was spawned
  EXPECT_EQ(take(), "");
}

TEST_F(NotifySocketTest, IgnoresAWatchdogMeantForAnotherProcess) {
  setenv("WATCHDOG_USEC", "100000", 1);
  setenv("WATCHDOG_PID", std::to_string(getpid() + 1).c_str(), 1);
  SystemdNotifier notifier;
  EXPECT_TRUE(notifier.enabled());
  EXPECT_FALSE(notifier.watchdog_timeout());
}

TEST_F(NotifySocketTest, PingsTheWatchdogFromTheLoopUntilStopping) {
  setenv("WATCHDOG_USEC", "20000", 1);  // 20 ms: pings every 10 ms
  setenv("WATCHDOG_PID", std::to_string(getpid()).c_str(), 1);
  SystemdNotifier notifier;
  ASSERT_EQ(notifier.watchdog_timeout(), std::chrono::microseconds{20000});

  std::vector<std::string> received;
  bool timed_out = false;
  asio::steady_timer deadline(io_, 10s);
  deadline.async_wait([&](boost::system::error_code ec) {
    if (!ec) {
      timed_out = true;
      io_.stop();
    }
  });
  char buffer[256];
  std::function<void()> receive = [&] {
    socket_.async_receive(asio::buffer(buffer), [&](boost::system::error_code ec, std::size_t n) {
      ASSERT_FALSE(ec) << ec.message();
      received.emplace_back(buffer, n);
      if (received.back() == "STOPPING=1") {
        deadline.cancel();
        return;
      }
      if (received.size() == 3)
        notifier.stopping();
      receive();
    });
  };
  receive();
  notifier.start_watchdog(io_.get_executor());
  io_.run();  // returns once the pinger, the receiver and the deadline are all done

  ASSERT_FALSE(timed_out);
  // A ping may already be queued when the third one is read, so "at least three".
  ASSERT_GE(received.size(), 4U);
  EXPECT_EQ(received.back(), "STOPPING=1");
  for (std::size_t i = 0; i + 1 < received.size(); ++i)
    EXPECT_EQ(received[i], "WATCHDOG=1") << i;
  // Stopped: the loop is idle and no ping follows.
  EXPECT_EQ(take(), "");
}

}  // namespace
}  // namespace sluice
