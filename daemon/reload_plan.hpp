#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "sinks/spool/spool_path.hpp"

// What a reload changes, decided from the configurations alone (README "Changing routes while
// running"): plain functions without I/O, carried out by the App's reload coroutine.
namespace sluice {

// A sink that an earlier reload removed or replaced and that is still delivering what it holds.
struct DrainingSinkInfo {
  std::string_view name;
  std::string_view spool;  // spool_path() of its settings
};

struct ReloadPlan {
  // One per sink of the new configuration, in its order.
  struct Sink {
    // The old sink whose worker carries over (same settings: queue and connections kept).
    // When empty, a new worker is created.
    std::optional<std::size_t> keep;
    // One disk buffer, one writer: before the new worker opens its buffer, the workers that
    // write it now stop (what they hold stays on disk and the new worker delivers it first):
    // the old sink of the same name and disk buffer, and draining sinks with that buffer
    // (indices into the `draining` argument of plan_reload).
    std::optional<std::size_t> stop_old;
    std::vector<std::size_t> stop_draining;
  };
  std::vector<Sink> sinks;
  // Old sinks the new configuration no longer uses (removed, or replaced without handing over
  // a disk buffer): they drain in the background.
  std::vector<std::size_t> drain;
  // The `admin` section changed: it takes effect at the next restart, so the new configuration
  // keeps the old one (with a warning).
  bool admin_changed = false;
};

ReloadPlan plan_reload(const config::Config& old, std::span<const DrainingSinkInfo> draining,
                       const config::Config& next);

// How the upstream subscription follows a reload. In message mode the open connection changes
// its subscriptions in place (subscribe, then unsubscribe). A URL-mode connection cannot: a
// second connection opens with the new channels and the first closes once the second is
// subscribed. New Appwrite settings (endpoint, project, credentials) take the second path too.
enum class SubscriptionChange { in_place, second_connection };

// The primary connection as it is when the new subscription is applied.
struct UpstreamNow {
  std::string_view mode;                  // "url", "message", or "" before the first connect
  bool backing_off = false;               // no connection open: the next connect uses the new set
  std::span<const std::string> channels;  // what it listens to now
};

SubscriptionChange plan_subscription(const config::AppwriteConfig& before,
                                     const config::AppwriteConfig& after, const UpstreamNow& now,
                                     std::span<const std::string> next_channels);

}  // namespace sluice
