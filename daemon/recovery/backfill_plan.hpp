#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "daemon/recovery/checkpoint.hpp"
#include "emulator/fanout/fanout.hpp"

// What a backfill lists after a gap, decided as plain data from the configuration, the saved
// checkpoints, the server's version and the kind of credentials: no I/O. The runner (backfill.*)
// carries the plan out; `--check-config` prints the channels the plan cannot cover.
namespace sluice::recovery {

// Which REST API lists a resource: TablesDB (`/tablesdb/D/tables/T/rows`, Appwrite >= 1.8),
// the legacy Databases API (`/databases/D/collections/C/documents`, every version) or Storage.
enum class Api { tablesdb, databases, storage };

// One table, collection or bucket to list.
struct Target {
  std::string key;  // the checkpoint's resource key: "databases/D/tables/T" or "buckets/B"
  Api api = Api::databases;
  std::string database;       // empty for a bucket
  std::string container;      // the table/collection id, or the bucket id
  std::string database_type;  // "tablesdb" or "legacy" (the fan-out's); empty for a bucket
  // Where the gap starts for this resource: max(checkpoint, live_until). A row created at or
  // after it is recovered as a `create`, anything older as an `update`.
  Millis since{};
  Millis from{};  // the listing's lower bound: since - margin, clipped to now - max_window
  // The checkpoint's ids at exactly its updated_at: delivered already, so not synthesized again.
  Millis skip_at{};
  std::vector<std::string> skip_ids;
  // The part of the gap older than max_window: reported, not fetched.
  std::chrono::milliseconds not_fetched{0};
};

// A channel whose past changes a backfill cannot list, and why (for logs and --check-config).
struct Uncovered {
  std::string channel;
  std::string route;
  std::string reason;
};

// What the plan needs to know about the server and the run.
struct PlanContext {
  // From /health/version; unset when it could not be read (the legacy API, which every version
  // serves, is used then).
  std::optional<std::string> server_version;
  Millis now{};
  // The gap's start as the client measured it: stands in for State::live_until when the state
  // has none (a gap before the first second of live events).
  std::optional<Millis> gap_start;
};

struct Plan {
  std::vector<Target> targets;  // one per resource, in key order
  // Broad channels (`rows`, `documents`, `files`) with an api_key: the runner lists databases
  // and their tables/collections (or buckets) first, then plans each with plan_target().
  bool discover_databases = false;
  bool discover_buckets = false;
  std::vector<Uncovered> not_covered;
  emulator::Profile profile = emulator::Profile::v1_9;  // the fan-out the events are built by
};

// The fan-out profile for an Appwrite version: 1.8's rules before 1.9, 1.9's after (the `main`
// profile differs only for executions, which a backfill never builds).
emulator::Profile profile_of(const std::optional<std::string>& server_version);

// Whether the TablesDB API exists on that server (>= 1.8); unknown versions answer no.
bool has_tablesdb_api(const std::optional<std::string>& server_version);

// The channels of backfill-enabled routes that no backfill can cover, with the reason; the same
// list --check-config prints (the api_key decides whether broad channels are covered).
std::vector<Uncovered> uncovered_channels(const config::Config& config);

// The whole plan for one run. Empty (no targets, nothing to discover) when `backfill.enabled`
// is false.
Plan plan_backfill(const config::Config& config, const State& state, const PlanContext& context);

// The target for one resource (also for the tables and buckets that discovery finds); nullopt
// when neither a checkpoint nor a live_until/gap start says where its gap begins.
std::optional<Target> plan_target(std::string_view key, std::string_view database_type,
                                  bool tablesdb_form, const config::BackfillConfig& backfill,
                                  const State& state, const PlanContext& context);

}  // namespace sluice::recovery
