#include "daemon/recovery/checkpoint.hpp"

#include <algorithm>
#include <mutex>
#include <utility>

#include "core/text.hpp"
#include "core/utc.hpp"

namespace sluice::recovery {

namespace {}  // namespace

std::string resource_key_of_channel(std::string_view channel) {
  const auto s = split(channel, '.');
  if (std::any_of(s.begin(), s.end(), [](std::string_view part) { return part.empty(); }))
    return {};
  // After the collection segment a channel may add a resource id and an action (≥ 1.9.5):
  // `…rows`, `…rows.R`, `…rows.update`, `…rows.R.update`.
  const auto table = [&](std::string_view kind, std::string_view items) -> std::string {
    if (s.size() < 5 || s.size() > 7 || s[2] != kind || s[4] != items)
      return {};
    return "databases/" + std::string(s[1]) + "/tables/" + std::string(s[3]);
  };
  if (s[0] == "tablesdb")
    return table("tables", "rows");
  if (s[0] == "databases") {
    auto key = table("tables", "rows");
    return key.empty() ? table("collections", "documents") : key;
  }
  if (s[0] == "buckets" && s.size() >= 3 && s.size() <= 5 && s[2] == "files")
    return "buckets/" + std::string(s[1]);
  return {};
}

std::string resource_key_of_event(const Event& event) {
  for (const auto channel : event.channels) {
    if (auto key = resource_key_of_channel(channel); !key.empty())
      return key;
  }
  return {};
}

std::optional<Millis> updated_at_of(const Event& event) {
  if (event.updated_at.empty())
    return std::nullopt;
  return parse_timestamp(event.updated_at);
}

std::string resource_id_of(const Event& event) {
  return std::string(event.resource_id);
}

// The tracker's state, shared with every tracked event's holder so that an event released after
// the tracker is gone (a sink draining at shutdown) still finds it.
struct CheckpointTracker::Shared {
  struct Resource {
    // Tracked events not yet released, by `$updatedAt`: how many at each instant.
    std::map<Millis, std::size_t> in_flight;
    // Released events not yet folded into `done` because an older or equal one is in flight.
    std::map<Millis, std::vector<std::string>> released;
    std::optional<Checkpoint> done;
  };

  mutable std::mutex mutex;
  std::map<std::string, Resource, std::less<>> resources;
  std::optional<Millis> live_until;
  std::optional<Millis> floor;
  std::size_t in_flight = 0;

  static void add_ids(std::vector<std::string>& to, std::vector<std::string>&& ids) {
    for (auto& id : ids) {
      if (to.size() >= kMaxIdsPerCheckpoint)
        return;
      if (std::find(to.begin(), to.end(), id) == to.end())
        to.push_back(std::move(id));
    }
  }

  // Folds every released instant older than the oldest in flight into the checkpoint.
  static void fold(Resource& r) {
    const auto limit = r.in_flight.empty() ? Millis::max() : r.in_flight.begin()->first;
    while (!r.released.empty() && r.released.begin()->first < limit) {
      auto node = r.released.extract(r.released.begin());
      if (!r.done || r.done->updated_at < node.key()) {
        r.done = Checkpoint{node.key(), {}};
        add_ids(r.done->ids, std::move(node.mapped()));
      } else if (r.done->updated_at == node.key()) {
        add_ids(r.done->ids, std::move(node.mapped()));
      }
      // Older than the checkpoint: released late, already covered.
    }
  }

  // Between two instants still in flight only the newest released one can become the
  // checkpoint (fold() takes the newest below the oldest in flight at once), so the others are
  // dropped: one event stuck in flight does not make the tracker keep every later instant.
  static void compact(Resource& r, Millis at) {
    auto above = r.in_flight.upper_bound(at);
    if (above == r.in_flight.begin())
      return;  // nothing in flight at or before `at`: fold() takes it now
    const Millis low = std::prev(above)->first;
    const Millis high = above == r.in_flight.end() ? Millis::max() : above->first;
    const auto first = r.released.lower_bound(low);
    const auto last = r.released.lower_bound(high);
    if (first != last)
      r.released.erase(first, std::prev(last));
  }

  void release(const std::string& key, Millis at, std::string id) {
    const std::lock_guard lock(mutex);
    --in_flight;
    auto& r = resources[key];
    if (auto it = r.in_flight.find(at); it != r.in_flight.end() && --it->second == 0)
      r.in_flight.erase(it);
    auto& ids = r.released[at];
    if (!id.empty() && ids.size() < kMaxIdsPerCheckpoint)
      ids.push_back(std::move(id));
    compact(r, at);
    fold(r);
  }
};

// Keeps the event alive and tells the tracker when the last copy of the wrapped pointer is gone.
struct CheckpointTracker::Holder {
  Holder(EventPtr e, std::shared_ptr<Shared> s, std::string k, Millis t, std::string i)
      : event(std::move(e)), shared(std::move(s)), key(std::move(k)), at(t), id(std::move(i)) {}
  Holder(const Holder&) = delete;
  Holder& operator=(const Holder&) = delete;

  EventPtr event;
  std::shared_ptr<Shared> shared;
  std::string key;
  Millis at;
  std::string id;

  ~Holder() { shared->release(key, at, std::move(id)); }
};

CheckpointTracker::CheckpointTracker() : shared_(std::make_shared<Shared>()) {}
CheckpointTracker::~CheckpointTracker() = default;

EventPtr CheckpointTracker::track(EventPtr event) {
  if (!event)
    return event;
  auto key = resource_key_of_event(*event);
  if (key.empty())
    return event;
  const auto at = updated_at_of(*event);
  if (!at)
    return event;
  auto id = resource_id_of(*event);
  {
    const std::lock_guard lock(shared_->mutex);
    ++shared_->resources[key].in_flight[*at];
    ++shared_->in_flight;
  }
  const Event* raw = event.get();
  auto holder =
      std::make_shared<Holder>(std::move(event), shared_, std::move(key), *at, std::move(id));
  return EventPtr(std::move(holder), raw);
}

void CheckpointTracker::advance_live(std::chrono::system_clock::time_point now) {
  auto live = std::chrono::floor<std::chrono::milliseconds>(now);
  const std::lock_guard lock(shared_->mutex);
  for (const auto& [key, r] : shared_->resources) {
    // An event in flight at T may be lost by a crash: live_until must stay before it.
    if (!r.in_flight.empty())
      live = std::min(live, r.in_flight.begin()->first - std::chrono::milliseconds{1});
  }
  shared_->live_until = live;
}

void CheckpointTracker::set_floor(std::optional<Millis> from) {
  const std::lock_guard lock(shared_->mutex);
  shared_->floor = from;
}

State CheckpointTracker::snapshot() const {
  State out;
  const std::lock_guard lock(shared_->mutex);
  const auto& floor = shared_->floor;
  out.live_until = shared_->live_until;
  if (floor && out.live_until && *floor < *out.live_until)
    out.live_until = floor;
  for (const auto& [key, r] : shared_->resources) {
    if (!r.done)
      continue;
    Checkpoint cp = *r.done;
    // An older or equal event still in flight: only what precedes it is known delivered.
    if (!r.in_flight.empty() && r.in_flight.begin()->first <= cp.updated_at) {
      cp.updated_at = r.in_flight.begin()->first - std::chrono::milliseconds{1};
      cp.ids.clear();
    }
    if (floor && *floor < cp.updated_at) {
      cp.updated_at = *floor;
      cp.ids.clear();
    }
    out.resources.emplace(key, std::move(cp));
  }
  return out;
}

void CheckpointTracker::restore(State state) {
  const std::lock_guard lock(shared_->mutex);
  shared_->live_until = state.live_until;
  for (auto& [key, cp] : state.resources) {
    auto& r = shared_->resources[key];
    if (!r.done || r.done->updated_at < cp.updated_at)
      r.done = std::move(cp);
  }
}

std::size_t CheckpointTracker::in_flight() const {
  const std::lock_guard lock(shared_->mutex);
  return shared_->in_flight;
}

std::size_t CheckpointTracker::waiting_instants() const {
  const std::lock_guard lock(shared_->mutex);
  std::size_t n = 0;
  for (const auto& [key, r] : shared_->resources)
    n += r.released.size();
  return n;
}

}  // namespace sluice::recovery
