#include "daemon/admin/status.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>

#include "core/utc.hpp"

namespace sluice::admin {

namespace json = boost::json;

namespace {

std::string iso_time(std::chrono::system_clock::time_point t) {
  const auto u = to_utc(t);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", u.tm.tm_year + 1900, u.tm.tm_mon + 1,
                     u.tm.tm_mday, u.tm.tm_hour, u.tm.tm_min, u.tm.tm_sec);
}

json::object upstream_json(const StatusReport::Upstream& u) {
  json::array channels;
  for (const auto& c : u.channels)
    channels.emplace_back(c);
  json::array widened;
  for (const auto& w : u.widened)
    widened.emplace_back(w);
  json::object plan{{"frames", u.frames},
                    {"largest_frame_bytes", u.largest_frame_bytes},
                    {"url_bytes", u.url_bytes},
                    {"widened", std::move(widened)}};
  return {{"state", u.state},
          {"since", iso_time(u.since)},
          {"endpoint", u.endpoint},
          {"project", u.project},
          {"mode", u.mode},
          {"server_version", u.server_version},
          {"tls_verify", u.tls_verify},
          {"connects", u.connects},
          {"last_error", u.last_error},
          {"channels", std::move(channels)},
          {"plan", std::move(plan)}};
}

json::object sink_json(const StatusReport::Sink& s) {
  return {{"name", s.name},
          {"type", s.type},
          {"queued_events", s.queued_events},
          {"queued_bytes", s.queued_bytes},
          {"capacity_events", s.capacity_events},
          {"capacity_bytes", s.capacity_bytes},
          {"sent", s.sent},
          {"sent_bytes", s.sent_bytes},
          {"failed", s.failed},
          {"retries", s.retries},
          {"dead_lettered", s.dead_lettered},
          {"dropped", s.dropped},
          {"stuck", s.stuck},
          {"last_error", s.last_error},
          {"paused", s.paused_until.has_value()},
          {"paused_until", s.paused_until ? json::value(iso_time(*s.paused_until)) : json::value()},
          {"buffer_persisting", s.buffer_persisting},
          {"unpersisted", s.unpersisted}};
}

json::object recovery_json(const StatusReport::Recovery& r) {
  json::value last_run;
  if (r.last_run) {
    const auto& run = *r.last_run;
    json::array not_covered;
    for (const auto& c : run.not_covered)
      not_covered.emplace_back(c);
    last_run = json::object{{"from", iso_time(run.from)},
                            {"to", iso_time(run.to)},
                            {"seconds", run.seconds},
                            {"recovered", run.recovered},
                            {"duplicates", run.duplicates},
                            {"pages", run.pages},
                            {"unknown",
                             {{"deletes", run.unknown_deletes},
                              {"not_fetched_seconds", run.not_fetched_seconds},
                              {"not_covered", std::move(not_covered)}}}};
  }
  return {{"enabled", r.enabled},
          {"running", r.running},
          {"checkpoints", r.checkpoints},
          {"last_error", r.last_error},
          {"last_run", std::move(last_run)}};
}

}  // namespace

std::string to_json(const StatusReport& report) {
  json::array sinks;
  for (const auto& s : report.sinks)
    sinks.emplace_back(sink_json(s));
  const json::object out{{"version", report.version},
                         {"ready", report.ready},
                         {"upstream", upstream_json(report.upstream)},
                         {"config",
                          {{"path", report.config.path},
                           {"reloads", report.config.reloads},
                           {"last_reload_error", report.config.last_reload_error}}},
                         {"sinks", std::move(sinks)},
                         {"recovery", recovery_json(report.recovery)}};
  return json::serialize(out);
}

}  // namespace sluice::admin
