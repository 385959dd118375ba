#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>

#include "config/config.hpp"

// When to try a failed delivery again (DESIGN.md §3 `retry`): exponential backoff from
// retry.initial doubling up to retry.max, with full jitter (a uniform delay in [0, ceiling]),
// raised to a server-requested retry_after, and given up once retry.max_elapsed has passed since
// the record's first attempt. Plain value with injected randomness; owned by a SinkWorker and
// used on its executor only (the default random source is not thread-safe).
namespace sluice::sinks {

class RetryPolicy {
 public:
  using Random = std::function<double()>;  // uniform in [0, 1)

  struct Decision {
    bool give_up = false;
    std::chrono::milliseconds delay{0};  // wait this long before the next attempt
  };

  // An empty `random` uses a Mersenne Twister seeded from std::random_device.
  explicit RetryPolicy(config::RetryConfig config, Random random = {});

  // The upper bound of the jittered delay before retry number `retries + 1`:
  // min(max, initial * 2^retries).
  std::chrono::milliseconds ceiling(std::uint32_t retries) const;

  // After a retryable failure: `retries` is how many retries this record already had (0 after
  // its first attempt), `elapsed` the time since its first attempt. A delay that would run past
  // max_elapsed is cut to end at max_elapsed (one last attempt at the limit), unless the server
  // asked for a longer wait than what remains: then waiting is pointless and the policy gives up.
  Decision next(std::uint32_t retries, std::chrono::steady_clock::duration elapsed,
                std::optional<std::chrono::milliseconds> retry_after = std::nullopt) const;

  const config::RetryConfig& config() const { return config_; }

 private:
  config::RetryConfig config_;
  Random random_;
};

}  // namespace sluice::sinks
