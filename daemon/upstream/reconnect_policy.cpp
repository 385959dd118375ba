#include "daemon/upstream/reconnect_policy.hpp"

#include <algorithm>

namespace sluice::upstream {

namespace {
constexpr ReconnectPolicy::Duration kFloorLimit{100};
}  // namespace

ReconnectPolicy::Settings ReconnectPolicy::settings_from(const config::ReconnectConfig& config) {
  Settings s;
  s.initial = config.initial;
  s.max = config.max;
  s.multiplier = config.multiplier;
  return s;
}

ReconnectPolicy::ReconnectPolicy(Settings settings, std::uint64_t seed)
    : settings_(settings), random_(seed) {
  // Defensive against values the loader should already have rejected.
  settings_.initial = std::max(settings_.initial, Duration{1});
  settings_.max = std::max(settings_.max, settings_.initial);
  if (!(settings_.multiplier >= 1.0))
    settings_.multiplier = 1.0;
  floor_ = std::min(settings_.initial, kFloorLimit);
  cap_ = settings_.initial;
}

void ReconnectPolicy::on_connected(Clock::time_point now) {
  connected_since_ = now;
}

ReconnectPolicy::Duration ReconnectPolicy::on_disconnected(Clock::time_point now, bool fatal_1008) {
  if (connected_since_ && now - *connected_since_ >= settings_.healthy_after) {
    cap_ = settings_.initial;
    attempts_ = 0;
  }
  connected_since_.reset();
  return fail(now, fatal_1008);
}

ReconnectPolicy::Duration ReconnectPolicy::on_connect_failed(Clock::time_point now,
                                                             bool fatal_1008) {
  connected_since_.reset();
  return fail(now, fatal_1008);
}

ReconnectPolicy::Duration ReconnectPolicy::pace(Clock::time_point now, Duration delay) {
  auto at = now + delay;
  while (!attempts_at_.empty() && attempts_at_.front() + kConnectWindow <= at)
    attempts_at_.pop_front();
  if (attempts_at_.size() >= kConnectBudget) {
    at = attempts_at_.front() + kConnectWindow;
    attempts_at_.pop_front();
    delay = std::chrono::ceil<Duration>(at - now);
  }
  attempts_at_.push_back(at);
  return delay;
}

ReconnectPolicy::Duration ReconnectPolicy::fail(Clock::time_point now, bool fatal_1008) {
  ++attempts_;
  Duration delay = settings_.max;
  if (!fatal_1008) {
    std::uniform_int_distribution<Duration::rep> pick(floor_.count(), cap_.count());
    delay = Duration{pick(random_)};
  }
  const double grown = static_cast<double>(cap_.count()) * settings_.multiplier;
  cap_ = grown >= static_cast<double>(settings_.max.count())
             ? settings_.max
             : std::max(cap_, Duration{static_cast<Duration::rep>(grown)});
  return pace(now, delay);
}

}  // namespace sluice::upstream
