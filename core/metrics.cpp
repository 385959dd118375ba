#include "core/metrics.hpp"

#include <prometheus/text_serializer.h>

namespace sluice {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      upstream_connected_(&BuildGauge()
                               .Name("sluice_upstream_connected")
                               .Help("1 while the realtime socket is connected and subscribed")
                               .Register(*registry_)),
      connects_(&BuildCounter()
                     .Name("sluice_upstream_connects_total")
                     .Help("Connection attempts to Appwrite Realtime by result")
                     .Register(*registry_)),
      disconnects_(&BuildCounter()
                        .Name("sluice_upstream_disconnects_total")
                        .Help("Lost realtime connections by reason")
                        .Register(*registry_)),
      auth_failures_(&BuildCounter()
                          .Name("sluice_upstream_auth_failures_total")
                          .Help("Realtime connections whose credentials the server refused "
                                "(rejected) or took for a guest's (guest), by reason")
                          .Register(*registry_)),
      gap_seconds_(&BuildCounter()
                        .Name("sluice_upstream_gap_seconds_total")
                        .Help("Seconds spent disconnected since the first connect (events in "
                              "this time are lost upstream: Realtime has no replay)")
                        .Register(*registry_)),
      frames_invalid_(&BuildCounter()
                           .Name("sluice_upstream_frames_invalid_total")
                           .Help("Frames skipped because they could not be decoded, by reason")
                           .Register(*registry_)),
      events_received_(&BuildCounter()
                            .Name("sluice_events_received_total")
                            .Help("Realtime events decoded")
                            .Register(*registry_)),
      events_unmatched_(&BuildCounter()
                             .Name("sluice_events_unmatched_total")
                             .Help("Events that matched no route")
                             .Register(*registry_)),
      events_deduplicated_(&BuildCounter()
                                .Name("sluice_events_deduplicated_total")
                                .Help("Events dropped as repeats of a recent event id")
                                .Register(*registry_)),
      routed_(&BuildCounter()
                   .Name("sluice_events_routed_total")
                   .Help("Events matched by each route")
                   .Register(*registry_)),
      routed_bytes_(&BuildCounter()
                         .Name("sluice_events_routed_bytes_total")
                         .Help("Bytes of the events matched by each route (the data object)")
                         .Register(*registry_)),
      route_last_event_(&BuildGauge()
                             .Name("sluice_route_last_event_timestamp_seconds")
                             .Help("Unix time of the last event each route matched")
                             .Register(*registry_)),
      sink_sent_(&BuildCounter()
                      .Name("sluice_sink_events_sent_total")
                      .Help("Events a sink confirmed as delivered")
                      .Register(*registry_)),
      sink_bytes_sent_(&BuildCounter()
                            .Name("sluice_sink_bytes_sent_total")
                            .Help("Bytes of the events a sink confirmed as delivered")
                            .Register(*registry_)),
      sink_events_failed_(&BuildCounter()
                               .Name("sluice_sink_events_failed_total")
                               .Help("Events that left a sink without being delivered "
                                     "(dead-lettered or dropped), by reason")
                               .Register(*registry_)),
      sink_attempts_failed_(&BuildCounter()
                                 .Name("sluice_sink_attempts_failed_total")
                                 .Help("Failed delivery attempts, per record and attempt, by "
                                       "reason")
                                 .Register(*registry_)),
      sink_write_errors_(&BuildCounter()
                              .Name("sluice_sink_write_errors_total")
                              .Help("Failed writes of a sink's disk buffer or dead-letter file")
                              .Register(*registry_)),
      sink_responses_(&BuildCounter()
                           .Name("sluice_sink_http_responses_total")
                           .Help("HTTP responses received by webhook sinks, by status class")
                           .Register(*registry_)),
      sink_retries_(&BuildCounter()
                         .Name("sluice_sink_retries_total")
                         .Help("Delivery attempts repeated after a retryable failure")
                         .Register(*registry_)),
      sink_dead_lettered_(&BuildCounter()
                               .Name("sluice_sink_dead_lettered_total")
                               .Help("Events given up on and written to the dead-letter file")
                               .Register(*registry_)),
      sink_queue_events_(&BuildGauge()
                              .Name("sluice_sink_queue_events")
                              .Help("Events queued for a sink and not yet acknowledged")
                              .Register(*registry_)),
      sink_queue_bytes_(&BuildGauge()
                             .Name("sluice_sink_queue_bytes")
                             .Help("Bytes queued for a sink and not yet acknowledged")
                             .Register(*registry_)),
      sink_capacity_events_(&BuildGauge()
                                 .Name("sluice_sink_queue_capacity_events")
                                 .Help("Events a sink's buffer holds at most (buffer.max_events)")
                                 .Register(*registry_)),
      sink_capacity_bytes_(&BuildGauge()
                                .Name("sluice_sink_queue_capacity_bytes")
                                .Help("Bytes a sink's buffer holds at most (buffer.max_bytes)")
                                .Register(*registry_)),
      sink_delivery_seconds_(&BuildHistogram()
                                  .Name("sluice_sink_delivery_seconds")
                                  .Help("Time from receiving an event to its acknowledgement")
                                  .Register(*registry_)),
      backfill_events_(&BuildCounter()
                            .Name("sluice_backfill_events_total")
                            .Help("Events recovered by the backfill after a gap and dispatched")
                            .Register(*registry_)),
      backfill_requests_(&BuildCounter()
                              .Name("sluice_backfill_requests_total")
                              .Help("REST list requests of the backfill by result")
                              .Register(*registry_)),
      backfill_runs_(&BuildCounter()
                          .Name("sluice_backfill_runs_total")
                          .Help("Backfill runs by result (a failed run is retried)")
                          .Register(*registry_)),
      backfill_running_(&BuildGauge()
                             .Name("sluice_backfill_running")
                             .Help("1 while a backfill is pending or running")
                             .Register(*registry_)),
      backfill_unknown_(&BuildCounter()
                             .Name("sluice_backfill_unknown_total")
                             .Help("What a gap's backfill could not recover, by reason: deletes "
                                   "(per resource and gap), window (gaps older than max_window), "
                                   "not_covered (channels no listing covers, per gap)")
                             .Register(*registry_)),
      backfill_last_duration_(&BuildGauge()
                                   .Name("sluice_backfill_last_duration_seconds")
                                   .Help("How long the last successful backfill took")
                                   .Register(*registry_)),
      config_reloads_(&BuildCounter()
                           .Name("sluice_config_reloads_total")
                           .Help("Configuration reloads by result")
                           .Register(*registry_)),
      config_last_reload_successful_(&BuildGauge()
                                          .Name("sluice_config_last_reload_successful")
                                          .Help("0 while the last reload failed, else 1")
                                          .Register(*registry_)),
      checkpoint_resources_(&BuildGauge()
                                 .Name("sluice_checkpoint_resources")
                                 .Help("Tables and buckets with a recovery checkpoint")
                                 .Register(*registry_)),
      checkpoint_saves_(&BuildCounter()
                             .Name("sluice_checkpoint_saves_total")
                             .Help("Checkpoint files written to state_dir")
                             .Register(*registry_)),
      checkpoint_errors_(&BuildCounter()
                              .Name("sluice_checkpoint_errors_total")
                              .Help("Failures to read, write or move aside the checkpoint file")
                              .Register(*registry_)),
      build_info_(&BuildGauge()
                       .Name("sluice_build_info")
                       .Help("Always 1; the version is a label")
                       .Register(*registry_)) {
  build_info_->Add({{"version", SLUICE_VERSION}}).Set(1);
  upstream_connected_->Add({});
  gap_seconds_->Add({});
  events_received_->Add({});
  events_unmatched_->Add({});
  events_deduplicated_->Add({});
  connects_->Add({{"result", "success"}});
  connects_->Add({{"result", "failure"}});
  auth_failures_->Add({{"reason", "guest"}});
  auth_failures_->Add({{"reason", "rejected"}});
  config_reloads_->Add({{"result", "success"}});
  config_reloads_->Add({{"result", "failure"}});
  backfill_events_->Add({});
  for (const auto* result : {"ok", "failed", "rate_limited"})
    backfill_requests_->Add({{"result", result}});
  backfill_runs_->Add({{"result", "ok"}});
  backfill_runs_->Add({{"result", "failed"}});
  backfill_running_->Add({});
  for (const auto* reason : {"deletes", "window", "not_covered"})
    backfill_unknown_->Add({{"reason", reason}});
  backfill_last_duration_->Add({});
  config_last_reload_successful_->Add({}).Set(1);
  checkpoint_resources_->Add({});
  checkpoint_saves_->Add({});
  for (const char* op : {"load", "save", "move_aside"})
    checkpoint_errors_->Add({{"op", op}});
}

std::string Metrics::render() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

prometheus::Gauge& Metrics::upstream_connected() {
  return upstream_connected_->Add({});
}
prometheus::Counter& Metrics::connects(bool success) {
  return connects_->Add({{"result", success ? "success" : "failure"}});
}
prometheus::Counter& Metrics::auth_failures(std::string_view reason) {
  return auth_failures_->Add({{"reason", std::string(reason)}});
}

prometheus::Counter& Metrics::disconnects(std::string_view reason) {
  return disconnects_->Add({{"reason", std::string(reason)}});
}
prometheus::Counter& Metrics::gap_seconds() {
  return gap_seconds_->Add({});
}
prometheus::Counter& Metrics::backfill_events() {
  return backfill_events_->Add({});
}
prometheus::Counter& Metrics::backfill_requests(std::string_view result) {
  return backfill_requests_->Add({{"result", std::string(result)}});
}
prometheus::Counter& Metrics::backfill_runs(bool ok) {
  return backfill_runs_->Add({{"result", ok ? "ok" : "failed"}});
}
prometheus::Gauge& Metrics::backfill_running() {
  return backfill_running_->Add({});
}
prometheus::Counter& Metrics::backfill_unknown(std::string_view reason) {
  return backfill_unknown_->Add({{"reason", std::string(reason)}});
}
prometheus::Gauge& Metrics::backfill_last_duration() {
  return backfill_last_duration_->Add({});
}
prometheus::Counter& Metrics::frames_invalid(std::string_view reason) {
  return frames_invalid_->Add({{"reason", std::string(reason)}});
}
prometheus::Counter& Metrics::events_received() {
  return events_received_->Add({});
}
prometheus::Counter& Metrics::events_unmatched() {
  return events_unmatched_->Add({});
}

prometheus::Counter& Metrics::events_deduplicated() {
  return events_deduplicated_->Add({});
}
prometheus::Counter& Metrics::routed(std::string_view route) {
  return routed_->Add({{"route", std::string(route)}});
}
prometheus::Counter& Metrics::routed_bytes(std::string_view route) {
  return routed_bytes_->Add({{"route", std::string(route)}});
}
prometheus::Gauge& Metrics::route_last_event(std::string_view route) {
  return route_last_event_->Add({{"route", std::string(route)}});
}
prometheus::Gauge& Metrics::config_last_reload_successful() {
  return config_last_reload_successful_->Add({});
}
prometheus::Counter& Metrics::config_reloads(bool success) {
  return config_reloads_->Add({{"result", success ? "success" : "failure"}});
}

prometheus::Gauge& Metrics::checkpoint_resources() {
  return checkpoint_resources_->Add({});
}
prometheus::Counter& Metrics::checkpoint_saves() {
  return checkpoint_saves_->Add({});
}
prometheus::Counter& Metrics::checkpoint_errors(std::string_view op) {
  return checkpoint_errors_->Add({{"op", std::string(op)}});
}

SinkMetrics Metrics::sink(std::string_view name) {
  const std::string n(name);
  SinkMetrics m;
  m.sent = &sink_sent_->Add({{"sink", n}});
  m.bytes_sent = &sink_bytes_sent_->Add({{"sink", n}});
  m.retries = &sink_retries_->Add({{"sink", n}});
  m.dead_lettered = &sink_dead_lettered_->Add({{"sink", n}});
  m.queue_events = &sink_queue_events_->Add({{"sink", n}});
  m.queue_bytes = &sink_queue_bytes_->Add({{"sink", n}});
  m.capacity_events = &sink_capacity_events_->Add({{"sink", n}});
  m.capacity_bytes = &sink_capacity_bytes_->Add({{"sink", n}});
  // Sub-millisecond local writes up to minutes of webhook retries.
  m.delivery_seconds = &sink_delivery_seconds_->Add(
      {{"sink", n}},
      prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                              0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300});
  m.events_failed = [family = sink_events_failed_,
                     n](std::string_view reason) -> prometheus::Counter& {
    return family->Add({{"sink", n}, {"reason", std::string(reason)}});
  };
  m.attempts_failed = [family = sink_attempts_failed_,
                       n](std::string_view reason) -> prometheus::Counter& {
    return family->Add({{"sink", n}, {"reason", std::string(reason)}});
  };
  m.write_errors = [family = sink_write_errors_, n](std::string_view file) -> prometheus::Counter& {
    return family->Add({{"sink", n}, {"file", std::string(file)}});
  };
  auto* responses = sink_responses_;
  m.responses = [responses, n](std::string_view status_class) -> prometheus::Counter& {
    return responses->Add({{"sink", n}, {"class", std::string(status_class)}});
  };
  return m;
}

}  // namespace sluice
