#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

// Talks to the service manager through sd_notify(3): READY=1, STATUS=, RELOADING=1, STOPPING=1
// and the watchdog. Without NOTIFY_SOCKET (not started by systemd, or Type= is not notify) every
// call is a cheap no-op, so the App calls it unconditionally.
namespace sluice {

// The interval at which the watchdog is pinged for a given WatchdogSec: half of it, as
// sd_watchdog_enabled(3) recommends, so one late tick of the loop does not kill the service.
std::chrono::microseconds watchdog_ping_interval(std::chrono::microseconds watchdog_usec);

// A STATUS= value must be one line: newlines end the assignment in the notify protocol, so
// they become spaces; the text is also capped so a long error message stays one datagram.
std::string sanitize_status(std::string_view text);

// Owned by the App for the whole run. Every method is called on the App's event loop; the
// watchdog pinger is a coroutine on that same loop, which is the point: a loop stuck in a
// blocking call stops pinging and systemd restarts the service after WatchdogSec.
class SystemdNotifier {
 public:
  // Reads NOTIFY_SOCKET and WATCHDOG_USEC/WATCHDOG_PID once; the environment is left intact.
  SystemdNotifier();
  ~SystemdNotifier();
  SystemdNotifier(const SystemdNotifier&) = delete;
  SystemdNotifier& operator=(const SystemdNotifier&) = delete;

  bool enabled() const { return enabled_; }  // NOTIFY_SOCKET is set
  // Set when the service manager expects watchdog pings (WatchdogSec= for this process).
  std::optional<std::chrono::microseconds> watchdog_timeout() const { return watchdog_; }

  void ready();                        // READY=1
  void status(std::string_view text);  // STATUS=<text>
  void reloading();                    // RELOADING=1 with MONOTONIC_USEC (systemd ≥ 253 wants it)
  void stopping();                     // STOPPING=1; also stops the watchdog pinger
  void watchdog();                     // WATCHDOG=1, once

  // Pings every watchdog_ping_interval() on `executor` until stopping() or destruction. Does
  // nothing when no watchdog is configured. Call once, after the App's loop objects exist.
  void start_watchdog(const boost::asio::any_io_executor& executor);

 private:
  struct Pinger;
  void send(const std::string& message);
  boost::asio::awaitable<void> ping_loop(std::shared_ptr<Pinger> pinger,
                                         std::chrono::microseconds timeout);

  bool enabled_ = false;
  bool send_failed_ = false;
  std::optional<std::chrono::microseconds> watchdog_;
  std::shared_ptr<Pinger> pinger_;  // shared with the pinger coroutine, which outlives a cancel
};

}  // namespace sluice
