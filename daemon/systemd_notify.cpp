#include "daemon/systemd_notify.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include <systemd/sd-daemon.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/log.hpp"

namespace sluice {

namespace asio = boost::asio;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// STATUS= lines show up in `systemctl status`; anything longer is noise there.
constexpr std::size_t kMaxStatus = 200;

std::uint64_t monotonic_usec() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000U +
         static_cast<std::uint64_t>(ts.tv_nsec) / 1'000U;
}

}  // namespace

std::chrono::microseconds watchdog_ping_interval(std::chrono::microseconds watchdog_usec) {
  const auto half = watchdog_usec / 2;
  return half.count() > 0 ? half : std::chrono::microseconds{1};
}

std::string sanitize_status(std::string_view text) {
  std::string out;
  out.reserve(std::min(text.size(), kMaxStatus));
  for (const char c : text) {
    if (out.size() == kMaxStatus)
      break;
    out.push_back(c == '\n' || c == '\r' || c == '\0' ? ' ' : c);
  }
  return out;
}

struct SystemdNotifier::Pinger {
  explicit Pinger(const asio::any_io_executor& executor) : timer(executor) {}
  asio::steady_timer timer;
  bool stopped = false;
};

SystemdNotifier::SystemdNotifier() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  enabled_ = socket != nullptr && socket[0] != '\0';
  std::uint64_t usec = 0;
  // > 0 only when WATCHDOG_USEC is set and WATCHDOG_PID (if set) names this process, so a
  // child that inherited the environment never pings on its parent's behalf.
  if (enabled_ && sd_watchdog_enabled(0, &usec) > 0 && usec > 0)
    watchdog_ = std::chrono::microseconds{usec};
}

SystemdNotifier::~SystemdNotifier() {
  if (pinger_) {
    pinger_->stopped = true;
    pinger_->timer.cancel();
  }
}

void SystemdNotifier::send(const std::string& message) {
  if (!enabled_)
    return;
  const int r = sd_notify(0, message.c_str());
  if (r < 0 && !send_failed_) {
    // Once: a broken notify socket would otherwise log on every watchdog tick.
    send_failed_ = true;
    log::warn("systemd", "sd_notify failed", {{"error", std::strerror(-r)}});
  }
}

void SystemdNotifier::ready() {
  send("READY=1");
}

void SystemdNotifier::status(std::string_view text) {
  send("STATUS=" + sanitize_status(text));
}

void SystemdNotifier::reloading() {
  send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(monotonic_usec()));
}

void SystemdNotifier::stopping() {
  if (pinger_) {
    pinger_->stopped = true;
    pinger_->timer.cancel();
  }
  send("STOPPING=1");
}

void SystemdNotifier::watchdog() {
  send("WATCHDOG=1");
}

void SystemdNotifier::start_watchdog(const asio::any_io_executor& executor) {
  if (!watchdog_ || pinger_)
    return;
  pinger_ = std::make_shared<Pinger>(executor);
  asio::co_spawn(executor, ping_loop(pinger_, *watchdog_), asio::detached);
}

// Pings at once, then every interval. The coroutine holds the Pinger; the notifier only flags it
// stopped (and is never touched once it is), so destruction order against the frame is safe.
asio::awaitable<void> SystemdNotifier::ping_loop(std::shared_ptr<Pinger> pinger,
                                                 std::chrono::microseconds timeout) {
  const auto interval = watchdog_ping_interval(timeout);
  while (!pinger->stopped) {
    watchdog();
    pinger->timer.expires_after(interval);
    auto [ec] = co_await pinger->timer.async_wait(use_tuple);
    if (ec)
      break;
  }
}

}  // namespace sluice
