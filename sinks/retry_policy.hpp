#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>

#include "config/config.hpp"

// When to try a failed delivery again (the `retry` settings): exponential backoff from
// retry.initial doubling up to retry.max, with full jitter (a uniform delay in [0, ceiling]),
// raised to a server-requested retry_after (at most kMaxServerPause), and given up once the
// record has been failing for retry.max_elapsed. A server's wait is a pause, not a failure: the
// caller leaves the time spent in such pauses out of `elapsed`, and the policy never gives up
// because a server asked for a long wait (a receiver in maintenance must hold the records back,
// not turn them into dead letters). Plain value with injected randomness; owned by a SinkWorker and
// used on its executor only (the default random source is not thread-safe).
namespace sluice::sinks {

class RetryPolicy {
 public:
  using Random = std::function<double()>;  // uniform in [0, 1)

  struct Decision {
    bool give_up = false;
    std::chrono::milliseconds delay{0};  // wait this long before the next attempt
    bool server_pause = false;           // the delay is the server's retry_after
  };

  // An empty `random` uses a Mersenne Twister seeded from std::random_device.
  explicit RetryPolicy(config::RetryConfig config, Random random = {});

  // The upper bound of the jittered delay before retry number `retries + 1`:
  // min(max, initial * 2^retries).
  std::chrono::milliseconds ceiling(std::uint32_t retries) const;

  // The longest single wait a server's retry_after may impose: a date years ahead (or a
  // misconfigured receiver) must not park a sink forever.
  static constexpr std::chrono::milliseconds kMaxServerPause = std::chrono::hours{1};

  // After a retryable failure: `retries` is how many retries this record already had (0 after
  // its first attempt), `elapsed` how long it has been failing (since its first attempt, minus
  // the server-requested pauses). A backoff that would run past max_elapsed is cut to end at
  // max_elapsed (one last attempt at the limit); a server's retry_after is waited in full (up to
  // kMaxServerPause), since that time does not count against max_elapsed.
  Decision next(std::uint32_t retries, std::chrono::steady_clock::duration elapsed,
                std::optional<std::chrono::milliseconds> retry_after = std::nullopt) const;

  const config::RetryConfig& config() const { return config_; }

 private:
  config::RetryConfig config_;
  Random random_;
};

}  // namespace sluice::sinks
