#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/event.hpp"

// What sluice has delivered, per table and bucket, so that after a gap (an outage, a restart, a
// crash) the backfill lists from Appwrite only what may be missing. The tracker learns when an
// event's last copy is released by the sinks; the store (checkpoint_store.hpp) persists its
// snapshots in state_dir.
namespace sluice::recovery {

using Millis = std::chrono::sys_time<std::chrono::milliseconds>;

// "databases/D/tables/T" for every channel form naming table/collection T of database D
// (tablesdb.D.tables.T.rows, databases.D.tables.T.rows, databases.D.collections.T.documents, and
// each with a row id, with or without an action suffix); "buckets/B" for buckets.B.files[...];
// "" otherwise.
std::string resource_key_of_channel(std::string_view channel);

// The table/bucket of a resource event (from its channels); "" when it is not a
// row/document/file event.
std::string resource_key_of_event(const Event& event);

// The payload's `$updatedAt` (Event::updated_at), parsed; nullopt when absent or malformed.
std::optional<Millis> updated_at_of(const Event& event);

// The payload's `$id` (Event::resource_id); "" when absent.
std::string resource_id_of(const Event& event);

// How far a resource is known to be delivered: every change up to `updated_at` (Appwrite's
// clock), and of the changes at exactly `updated_at` those whose `$id` is in `ids` (the others
// at that instant may be missing).
struct Checkpoint {
  Millis updated_at{};
  std::vector<std::string> ids;
  bool operator==(const Checkpoint&) const = default;
};

struct State {
  // Everything the subscription could have delivered up to here was delivered (sluice's clock,
  // capped by the oldest `$updatedAt` still in flight); covers resources without a checkpoint.
  std::optional<Millis> live_until;
  std::map<std::string, Checkpoint, std::less<>> resources;  // by resource key
  bool operator==(const State&) const = default;
};

// At most this many ids are kept at one instant; more would only save a few duplicates.
inline constexpr std::size_t kMaxIdsPerCheckpoint = 1000;

// Owned by the App; one per process, kept across reloads. Thread-safe: track() runs on the event
// loop, releases happen on whichever thread drops an event's last copy (sink threads, the
// blocking pool), advance_live/snapshot on the event loop. Plain code, no I/O.
class CheckpointTracker {
 public:
  CheckpointTracker();
  ~CheckpointTracker();
  CheckpointTracker(const CheckpointTracker&) = delete;
  CheckpointTracker& operator=(const CheckpointTracker&) = delete;

  // Returns `event` wrapped (shared_ptr aliasing constructor) so that when the last copy is
  // released (delivered, durably spooled, dead-lettered or dropped) the tracker learns it;
  // non-resource events, and events without `$updatedAt`, come back unchanged. The Dispatcher
  // calls it for every event it routes to at least one sink. Copies may outlive the tracker.
  EventPtr track(EventPtr event);

  // Called by the App about once a second while the subscription is up and no backfill is
  // pending or running: live_until = min(now, oldest `$updatedAt` still in flight).
  void advance_live(std::chrono::system_clock::time_point now);

  // While a backfill from `from` is pending or running, nothing persisted may claim more than
  // `from`: snapshot() caps live_until and every resource's updated_at at `from` (clearing its
  // ids). nullopt lifts the floor.
  void set_floor(std::optional<Millis> from);

  // Per resource: the newest `$updatedAt` completed, capped below the oldest still in flight.
  State snapshot() const;

  // At start, from the store: the checkpoints and live_until to continue from.
  void restore(State state);

  // Events tracked and not yet released (for tests and /status).
  std::size_t in_flight() const;
  // Released instants kept because an older event is still in flight (bounded by in_flight()).
  std::size_t waiting_instants() const;

 private:
  struct Shared;
  struct Holder;
  std::shared_ptr<Shared> shared_;
};

}  // namespace sluice::recovery
