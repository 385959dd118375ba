#include "sinks/retry_policy.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>

namespace sluice::sinks {

using std::chrono::milliseconds;

RetryPolicy::RetryPolicy(config::RetryConfig config, Random random)
    : config_(config), random_(std::move(random)) {
  if (!random_) {
    auto engine = std::make_shared<std::mt19937_64>(std::random_device{}());
    random_ = [engine] { return std::uniform_real_distribution<double>(0.0, 1.0)(*engine); };
  }
}

milliseconds RetryPolicy::ceiling(std::uint32_t retries) const {
  const auto max = std::max(config_.max, milliseconds{0});
  auto c = std::max(config_.initial, milliseconds{0});
  if (c.count() == 0)
    return c;
  // Doubling stops as soon as the cap is reached, so a huge retry count cannot overflow.
  for (std::uint32_t i = 0; i < retries && c < max; ++i)
    c *= 2;
  return std::min(c, max);
}

RetryPolicy::Decision RetryPolicy::next(std::uint32_t retries,
                                        std::chrono::steady_clock::duration elapsed,
                                        std::optional<milliseconds> retry_after) const {
  Decision d;
  if (elapsed >= config_.max_elapsed) {
    d.give_up = true;
    return d;
  }
  const double r = std::clamp(random_(), 0.0, 1.0);
  const auto top = ceiling(retries);
  d.delay = milliseconds{
      static_cast<milliseconds::rep>(std::floor(r * static_cast<double>(top.count())))};
  if (retry_after && *retry_after > d.delay) {
    d.delay = std::max(d.delay, std::min(*retry_after, kMaxServerPause));
    d.server_pause = true;
    return d;
  }
  // Round the remaining budget up so the last attempt lands at (not just before) the limit.
  d.delay = std::min(d.delay, std::chrono::ceil<milliseconds>(config_.max_elapsed - elapsed));
  return d;
}

}  // namespace sluice::sinks
