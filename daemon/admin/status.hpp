#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

// What /status reports, as plain data: the App fills it from the state it owns, and to_json()
// is the one place that decides the JSON layout (unit-tested without a daemon).
namespace sluice::admin {

struct StatusReport {
  struct Upstream {
    std::string state;  // "idle", "connecting", "connected", "subscribed", "backing_off", "stopped"
    std::chrono::system_clock::time_point since{};  // when `state` was entered
    std::string endpoint;                           // the realtime endpoint
    std::string project;
    std::string mode;            // "url", "message", or "" until known
    std::string server_version;  // "" unless probed
    bool tls_verify = true;
    std::uint64_t connects = 0;
    std::string last_error;
    std::vector<std::string> channels;  // what the server is asked for (after widening)
    // The subscription plan: subscribe frames and the largest one's size (message mode), the
    // request head's size (URL mode), and the broad channels subscribed to instead of exact ones.
    std::uint64_t frames = 0;
    std::uint64_t largest_frame_bytes = 0;
    std::uint64_t url_bytes = 0;
    std::vector<std::string> widened;
  };
  struct Config {
    std::string path;
    std::uint64_t reloads = 0;
    std::string last_reload_error;  // "" after a successful reload
  };
  struct Sink {
    std::string name;
    std::string type;  // "kafka", "webhook", "file"
    std::uint64_t queued_events = 0;
    std::uint64_t queued_bytes = 0;
    std::uint64_t capacity_events = 0;  // the buffer's limits: queued / capacity is how full
    std::uint64_t capacity_bytes = 0;
    std::uint64_t sent = 0;
    std::uint64_t sent_bytes = 0;
    // Events that left without delivery (dead-lettered, dropped, corrupt in the disk buffer):
    // the sum of sluice_sink_events_failed_total.
    std::uint64_t failed = 0;
    std::uint64_t retries = 0;
    std::uint64_t dead_lettered = 0;
    std::uint64_t dropped = 0;
    bool stuck = false;
    std::string last_error;
    // Set while the sink sends nothing because its server asked for a pause (Retry-After).
    std::optional<std::chrono::system_clock::time_point> paused_until;
    // False while a disk buffer cannot write: the sink then accepts nothing new.
    bool buffer_persisting = true;
    // Queued records that a crash now would lose: all of them with a memory buffer, those
    // not yet committed with a disk buffer.
    std::uint64_t unpersisted = 0;
  };

  // Gap recovery: whether a backfill runs, what the last finished one did and what it could
  // not know, and how many tables and buckets have a checkpoint.
  struct Recovery {
    bool enabled = false;
    bool running = false;  // a backfill is pending or running (also while it retries)
    std::uint64_t checkpoints = 0;
    std::string last_error;  // of the current run's last failed attempt; "" when none
    struct Run {
      std::chrono::system_clock::time_point from{};  // the earliest listed $updatedAt
      std::chrono::system_clock::time_point to{};    // the latest (the run's start)
      double seconds = 0;                            // how long it took
      std::uint64_t recovered = 0;                   // events dispatched
      std::uint64_t duplicates = 0;                  // rows the checkpoints had delivered
      std::uint64_t pages = 0;
      // Unknown: tables and buckets whose deletes cannot be listed, seconds older than
      // max_window, and channels no listing covers.
      std::uint64_t unknown_deletes = 0;
      double not_fetched_seconds = 0;
      std::vector<std::string> not_covered;
    };
    std::optional<Run> last_run;
  };

  std::string version;
  bool ready = false;
  Upstream upstream;
  Config config;
  std::vector<Sink> sinks;
  Recovery recovery;
};

// The /status body: one JSON object with the members in the order declared above, `since` as
// `YYYY-MM-DDTHH:MM:SSZ`; a sink's `paused_until` is null when it is not paused, and so is
// `recovery.last_run` before the first backfill finished.
std::string to_json(const StatusReport& report);

}  // namespace sluice::admin
