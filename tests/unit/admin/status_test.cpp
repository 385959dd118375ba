#include "daemon/admin/status.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace sluice::admin {
namespace {

using namespace std::chrono_literals;

TEST(StatusTest, RendersEveryFieldInOrder) {
  StatusReport report;
  report.version = "1.2.3";
  report.ready = true;
  report.upstream = {
      .state = "subscribed",
      .since = std::chrono::sys_days{std::chrono::year{2026} / 11 / 22} + 10h + 4min + 5s + 678ms,
      .endpoint = "wss://appwrite.example/v1/realtime",
      .project = "shop",
      .mode = "message",
      .server_version = "1.9.5",
      .tls_verify = false,
      .connects = 3,
      .last_error = "",
      .channels = {"a", "rows"},
      .frames = 1,
      .largest_frame_bytes = 120,
      .url_bytes = 0,
      .widened = {"rows (1000 channels, e.g. tablesdb.shop.tables.t0.rows)"}};
  report.config = {.path = "/etc/sluice/routes.yaml", .reloads = 2, .last_reload_error = ""};
  report.sinks.push_back(
      {.name = "orders",
       .type = "kafka",
       .queued_events = 4,
       .queued_bytes = 512,
       .capacity_events = 100,
       .capacity_bytes = 4096,
       .sent = 10,
       .sent_bytes = 2048,
       .failed = 2,
       .retries = 5,
       .dead_lettered = 1,
       .dropped = 1,
       .stuck = true,
       .last_error = "broker down",
       .paused_until = std::chrono::sys_days{std::chrono::year{2026} / 11 / 22} + 11h,
       .buffer_persisting = false,
       .unpersisted = 3});
  report.sinks.emplace_back();
  report.sinks.back().name = "audit";
  report.sinks.back().type = "file";
  report.recovery = {.enabled = true,
                     .running = false,
                     .checkpoints = 2,
                     .last_error = "",
                     .last_run = StatusReport::Recovery::Run{
                         .from = std::chrono::sys_days{std::chrono::year{2026} / 11 / 22} + 9h,
                         .to = std::chrono::sys_days{std::chrono::year{2026} / 11 / 22} + 10h,
                         .seconds = 1.5,
                         .recovered = 40,
                         .duplicates = 2,
                         .pages = 3,
                         .unknown_deletes = 2,
                         .not_fetched_seconds = 0,
                         .not_covered = {"account"}}};
  EXPECT_EQ(
      to_json(report),
      R"({"version":"1.2.3","ready":true,"upstream":{"state":"subscribed",)"
      R"("since":"2026-11-22T10:04:05Z","endpoint":"wss://appwrite.example/v1/realtime",)"
      R"("project":"shop","mode":"message","server_version":"1.9.5","tls_verify":false,)"
      R"("connects":3,"last_error":"","channels":["a","rows"],"plan":{"frames":1,)"
      R"("largest_frame_bytes":120,"url_bytes":0,"widened":)"
      R"x(["rows (1000 channels, e.g. tablesdb.shop.tables.t0.rows)"]}},"config":{"path":)x"
      R"("/etc/sluice/routes.yaml","reloads":2,"last_reload_error":""},"sinks":[{"name":)"
      R"("orders","type":"kafka","queued_events":4,"queued_bytes":512,"capacity_events":100,)"
      R"("capacity_bytes":4096,"sent":10,"sent_bytes":2048,"failed":2,)"
      R"("retries":5,"dead_lettered":1,"dropped":1,"stuck":true,"last_error":"broker down",)"
      R"("paused":true,"paused_until":"2026-11-22T11:00:00Z","buffer_persisting":false,"unpersisted":3},)"
      R"({"name":"audit","type":"file","queued_events":0,"queued_bytes":0,"capacity_events":0,)"
      R"("capacity_bytes":0,"sent":0,"sent_bytes":0,"failed":0,)"
      R"("retries":0,"dead_lettered":0,"dropped":0,"stuck":false,"last_error":"","paused":false,)"
      R"("paused_until":null,"buffer_persisting":true,"unpersisted":0}],)"
      R"("recovery":{"enabled":true,"running":false,"checkpoints":2,"last_error":"",)"
      R"("last_run":{"from":"2026-11-22T09:00:00Z","to":"2026-11-22T10:00:00Z","seconds":1.5E0,)"
      R"("recovered":40,"duplicates":2,"pages":3,"unknown":{"deletes":2,)"
      R"("not_fetched_seconds":0E0,"not_covered":["account"]}}}})");
}

TEST(StatusTest, EscapesStringsAndKeepsEmptyLists) {
  StatusReport report;
  report.upstream.last_error = "bad \"frame\"\n\x01";
  report.config.last_reload_error = "routes.yaml:3:5: unknown key";
  const auto text = to_json(report);
  EXPECT_NE(text.find(R"("last_error":"bad \"frame\"\n\u0001")"), std::string::npos) << text;
  EXPECT_NE(text.find(R"("channels":[])"), std::string::npos) << text;
  EXPECT_NE(text.find(R"("sinks":[])"), std::string::npos) << text;
  EXPECT_NE(text.find(R"("last_run":null)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"("since":"1970-01-01T00:00:00Z")"), std::string::npos) << text;
}

}  // namespace
}  // namespace sluice::admin
