#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <random>

#include "config/config.hpp"

namespace sluice::upstream {

// When to reconnect to Appwrite realtime: exponential backoff with full jitter.
//
// - Each failure (a connect that did not reach `connected`, or a disconnect) waits a delay drawn
//   uniformly from [floor, cap]. The cap starts at `initial` and is multiplied by `multiplier`
//   after every failure, up to `max`; consecutive failures never lower it.
// - floor = min(initial, 100ms): full jitter may pick a tiny delay, but never a tight loop.
// - The cap returns to `initial` only once a connection has stayed up `healthy_after` (30 s):
//   a server that accepts and then drops us at once keeps backing off.
// - A 1008 error (policy violation: unknown project, bad origin, missing channels) means the
//   configuration is wrong, so retrying soon is pointless: it waits exactly `max` (so does any
//   failure the caller knows retrying cannot heal soon).
// - Whatever the settings, at most kConnectBudget attempts start in any kConnectWindow:
//   Appwrite refuses more than 128 connects a minute from one address (1013), and the margin
//   leaves room for the first connect and a reload's second connection.
//
// Plain state machine, no I/O: the time is passed in and the randomness seeded, so tests drive it
// directly. Owned by the upstream client; used on its executor only.
class ReconnectPolicy {
 public:
  using Clock = std::chrono::steady_clock;
  using Duration = std::chrono::milliseconds;
  static constexpr std::size_t kConnectBudget = 120;
  static constexpr std::chrono::seconds kConnectWindow{60};

  struct Settings {
    Duration initial{1000};
    Duration max{60000};
    double multiplier = 2.0;  // below 1 is treated as 1 (a constant delay)
    Duration healthy_after{30000};
  };
  static Settings settings_from(const config::ReconnectConfig& config);

  ReconnectPolicy(Settings settings, std::uint64_t seed);
  ReconnectPolicy(const config::ReconnectConfig& config, std::uint64_t seed)
      : ReconnectPolicy(settings_from(config), seed) {}

  // The connection is up (the `connected` frame arrived).
  void on_connected(Clock::time_point now);
  // The connection that on_connected reported went down; returns the delay before reconnecting.
  Duration on_disconnected(Clock::time_point now, bool fatal_1008 = false);
  // A connection attempt failed before `connected`; returns the delay before the next one.
  Duration on_connect_failed(Clock::time_point now, bool fatal_1008 = false);

  // Failures since the last reset: the number of the reconnect attempt being scheduled (logs).
  std::uint32_t attempts() const { return attempts_; }
  // The cap the next delay is drawn under.
  Duration cap() const { return cap_; }
  Duration floor() const { return floor_; }
  bool connected() const { return connected_since_.has_value(); }

 private:
  Duration fail(Clock::time_point now, bool fatal_1008);
  // Postpones an attempt due after `delay` until the connect budget has room for it.
  Duration pace(Clock::time_point now, Duration delay);

  Settings settings_;
  Duration floor_;
  Duration cap_;
  std::uint32_t attempts_ = 0;
  std::optional<Clock::time_point> connected_since_;
  std::deque<Clock::time_point> attempts_at_;  // scheduled in the last kConnectWindow
  std::mt19937_64 random_;
};

}  // namespace sluice::upstream
