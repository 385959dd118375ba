#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

// Every series on /metrics, registered once at start-up. Owned by the App, created before
// anything that counts and destroyed after it; prometheus-cpp's metrics are atomic, so they
// may be updated from the event loop and from blocking-pool threads alike, and read by /metrics.
namespace sluice {

// The per-sink series, resolved once per sink so the hot path never looks up labels.
struct SinkMetrics {
  prometheus::Counter* sent = nullptr;
  prometheus::Counter* bytes_sent = nullptr;
  prometheus::Counter* retries = nullptr;
  prometheus::Counter* dead_lettered = nullptr;
  prometheus::Gauge* queue_events = nullptr;
  prometheus::Gauge* queue_bytes = nullptr;
  prometheus::Gauge* capacity_events = nullptr;
  prometheus::Gauge* capacity_bytes = nullptr;
  prometheus::Histogram* delivery_seconds = nullptr;
  // sluice_sink_events_failed_total{sink, reason}: events that left the sink without being
  // delivered, each counted once ("dead_letter", "dropped_full", "disk_buffer", "stopped",
  // "corrupt"). Their sum is /status's `failed`.
  std::function<prometheus::Counter&(std::string_view reason)> events_failed;
  // sluice_sink_attempts_failed_total{sink, reason}: delivery attempts that failed, per record
  // and attempt (a record retried three times counts three); reasons are a sink's reason up to
  // its first ':' ("connect", "timeout", "http_503", "rejected", ...).
  std::function<prometheus::Counter&(std::string_view reason)> attempts_failed;
  // sluice_sink_write_errors_total{sink, file}: failed writes of the disk buffer
  // ("disk_buffer") or the dead-letter file ("dead_letter").
  std::function<prometheus::Counter&(std::string_view file)> write_errors;
  // sluice_sink_http_responses_total{sink, class}: HTTP responses by class ("2xx".."5xx",
  // "other"), per request; webhook sinks only.
  std::function<prometheus::Counter&(std::string_view status_class)> responses;
};

class Metrics {
 public:
  Metrics();

  prometheus::Registry& registry() { return *registry_; }
  std::shared_ptr<prometheus::Registry> shared_registry() { return registry_; }
  // The whole exposition in Prometheus text format (the body of /metrics).
  std::string render() const;

  // Upstream.
  prometheus::Gauge& upstream_connected();
  prometheus::Counter& connects(bool success);
  prometheus::Counter& disconnects(std::string_view reason);
  // The server refused the credentials ("rejected": a 401/403 error frame) or took them for a
  // guest's ("guest": `connected` with a null user).
  prometheus::Counter& auth_failures(std::string_view reason);
  prometheus::Counter& gap_seconds();
  prometheus::Counter& frames_invalid(
      std::string_view reason);  // sluice_upstream_frames_invalid_total

  // Events and routes.
  prometheus::Counter& events_received();
  prometheus::Counter& events_unmatched();
  prometheus::Counter& events_deduplicated();
  prometheus::Counter& routed(std::string_view route);
  prometheus::Counter& routed_bytes(std::string_view route);
  // Unix time of the last event the route matched: the one sign of "connected but silent".
  prometheus::Gauge& route_last_event(std::string_view route);

  // Sinks.
  SinkMetrics sink(std::string_view name);

  // Gap recovery (the backfill). Events recovered and dispatched; list requests by result
  // ("ok", "failed", "rate_limited"); runs by result ("ok", "failed"); 1 while one runs; what
  // a run could not know, per resource and gap ("deletes": Appwrite keeps no tombstones) or
  // per gap ("window": older than backfill.max_window, "not_covered": channels no listing
  // covers); the last successful run's duration.
  prometheus::Counter& backfill_events();
  prometheus::Counter& backfill_requests(std::string_view result);
  prometheus::Counter& backfill_runs(bool ok);
  prometheus::Gauge& backfill_running();
  prometheus::Counter& backfill_unknown(std::string_view reason);
  prometheus::Gauge& backfill_last_duration();

  prometheus::Counter& config_reloads(bool success);
  // 1 when the last reload applied (or none was tried), 0 while the running configuration is
  // older than the file because the file is invalid.
  prometheus::Gauge& config_last_reload_successful();

  // Gap recovery's checkpoints (daemon/recovery/): tables and buckets with one, saves of the
  // file, and failures by operation ("load", "save", "move_aside").
  prometheus::Gauge& checkpoint_resources();
  prometheus::Counter& checkpoint_saves();
  prometheus::Counter& checkpoint_errors(std::string_view op);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Gauge>* upstream_connected_;
  prometheus::Family<prometheus::Counter>* connects_;
  prometheus::Family<prometheus::Counter>* disconnects_;
  prometheus::Family<prometheus::Counter>* auth_failures_;
  prometheus::Family<prometheus::Counter>* gap_seconds_;
  prometheus::Family<prometheus::Counter>* frames_invalid_;
  prometheus::Family<prometheus::Counter>* events_received_;
  prometheus::Family<prometheus::Counter>* events_unmatched_;
  prometheus::Family<prometheus::Counter>* events_deduplicated_;
  prometheus::Family<prometheus::Counter>* routed_;
  prometheus::Family<prometheus::Counter>* routed_bytes_;
  prometheus::Family<prometheus::Gauge>* route_last_event_;
  prometheus::Family<prometheus::Counter>* sink_sent_;
  prometheus::Family<prometheus::Counter>* sink_bytes_sent_;
  prometheus::Family<prometheus::Counter>* sink_events_failed_;
  prometheus::Family<prometheus::Counter>* sink_attempts_failed_;
  prometheus::Family<prometheus::Counter>* sink_write_errors_;
  prometheus::Family<prometheus::Counter>* sink_responses_;
  prometheus::Family<prometheus::Counter>* sink_retries_;
  prometheus::Family<prometheus::Counter>* sink_dead_lettered_;
  prometheus::Family<prometheus::Gauge>* sink_queue_events_;
  prometheus::Family<prometheus::Gauge>* sink_queue_bytes_;
  prometheus::Family<prometheus::Gauge>* sink_capacity_events_;
  prometheus::Family<prometheus::Gauge>* sink_capacity_bytes_;
  prometheus::Family<prometheus::Histogram>* sink_delivery_seconds_;
  prometheus::Family<prometheus::Counter>* backfill_events_;
  prometheus::Family<prometheus::Counter>* backfill_requests_;
  prometheus::Family<prometheus::Counter>* backfill_runs_;
  prometheus::Family<prometheus::Gauge>* backfill_running_;
  prometheus::Family<prometheus::Counter>* backfill_unknown_;
  prometheus::Family<prometheus::Gauge>* backfill_last_duration_;
  prometheus::Family<prometheus::Counter>* config_reloads_;
  prometheus::Family<prometheus::Gauge>* config_last_reload_successful_;
  prometheus::Family<prometheus::Gauge>* checkpoint_resources_;
  prometheus::Family<prometheus::Counter>* checkpoint_saves_;
  prometheus::Family<prometheus::Counter>* checkpoint_errors_;
  prometheus::Family<prometheus::Gauge>* build_info_;
};

}  // namespace sluice
