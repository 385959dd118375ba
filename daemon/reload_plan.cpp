#include "daemon/reload_plan.hpp"

#include <algorithm>

namespace sluice {

ReloadPlan plan_reload(const config::Config& old, std::span<const DrainingSinkInfo> draining,
                       const config::Config& next) {
  ReloadPlan plan;
  plan.admin_changed = !(next.admin == old.admin);
  std::vector<bool> carried(old.sinks.size(), false);  // kept or stopped first: not drained
  for (const auto& sink : next.sinks) {
    ReloadPlan::Sink step;
    const auto* before = old.find_sink(sink.name);
    const auto before_index =
        before ? static_cast<std::size_t>(before - old.sinks.data()) : old.sinks.size();
    if (before && before->same_settings(sink)) {
      step.keep = before_index;
      carried[before_index] = true;
    } else if (const auto spool = sinks::spool_path(sink); !spool.empty()) {
      if (before && sinks::spool_path(*before) == spool) {
        step.stop_old = before_index;
        carried[before_index] = true;
      }
      for (std::size_t d = 0; d < draining.size(); ++d) {
        if (draining[d].spool == spool)
          step.stop_draining.push_back(d);
      }
    }
    plan.sinks.push_back(std::move(step));
  }
  for (std::size_t i = 0; i < old.sinks.size(); ++i) {
    if (!carried[i])
      plan.drain.push_back(i);
  }
  return plan;
}

SubscriptionChange plan_subscription(const config::AppwriteConfig& before,
                                     const config::AppwriteConfig& after, const UpstreamNow& now,
                                     std::span<const std::string> next_channels) {
  const bool channels_changed = !std::equal(next_channels.begin(), next_channels.end(),
                                            now.channels.begin(), now.channels.end());
  const bool open_url_connection = now.mode == "url" && !now.backing_off;
  if (after == before && !(channels_changed && open_url_connection))
    return SubscriptionChange::in_place;
  return SubscriptionChange::second_connection;
}

}  // namespace sluice
