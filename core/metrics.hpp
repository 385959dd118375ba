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
  prometheus::Counter* retries = nullptr;
  prometheus::Counter* dead_lettered = nullptr;
  prometheus::Gauge* queue_events = nullptr;
  prometheus::Gauge* queue_bytes = nullptr;
  prometheus::Histogram* delivery_seconds = nullptr;
  // sluice_sink_events_failed_total{sink, reason}; reasons are a small fixed set
  // (e.g. "write", "timeout", "http_5xx", "rejected", "dropped_full").
  std::function<prometheus::Counter&(std::string_view reason)> failed;
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
  prometheus::Counter& routed(std::string_view route);

  // Sinks.
  SinkMetrics sink(std::string_view name);

  prometheus::Counter& config_reloads(bool success);

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
  prometheus::Family<prometheus::Counter>* routed_;
  prometheus::Family<prometheus::Counter>* sink_sent_;
  prometheus::Family<prometheus::Counter>* sink_failed_;
  prometheus::Family<prometheus::Counter>* sink_responses_;
  prometheus::Family<prometheus::Counter>* sink_retries_;
  prometheus::Family<prometheus::Counter>* sink_dead_lettered_;
  prometheus::Family<prometheus::Gauge>* sink_queue_events_;
  prometheus::Family<prometheus::Gauge>* sink_queue_bytes_;
  prometheus::Family<prometheus::Histogram>* sink_delivery_seconds_;
  prometheus::Family<prometheus::Counter>* config_reloads_;
  prometheus::Family<prometheus::Gauge>* build_info_;
};

}  // namespace sluice
