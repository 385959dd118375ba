#include "daemon/recovery/backfill_synth.hpp"

#include <algorithm>
#include <map>

#include <boost/json.hpp>

#include "core/utc.hpp"

namespace sluice::recovery {

namespace json = boost::json;

namespace {

void append_strings(std::string& out, const std::vector<std::string>& items) {
  out += '[';
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0)
      out += ',';
    out += json::serialize(json::string_view(items[i]));
  }
  out += ']';
}

}  // namespace

Synthesizer::Synthesizer(emulator::Profile profile, std::string project)
    : profile_(profile), project_(std::move(project)), decoder_(project_) {}

Synthesizer::Result Synthesizer::make(const Target& target, const ListedRow& row) {
  Result result;
  const std::string id(row.row.at("$id").as_string());
  if (row.updated_at == target.skip_at &&
      std::find(target.skip_ids.begin(), target.skip_ids.end(), id) != target.skip_ids.end()) {
    result.duplicate = true;
    return result;
  }
  const std::string action = row.created_at >= target.since ? "create" : "update";
  std::map<std::string, std::string> params;
  std::string pattern;
  if (target.api == Api::storage) {
    pattern = "buckets.[bucketId].files.[fileId]." + action;
    params = {{"bucketId", target.container}, {"fileId", id}};
  } else if (target.database_type == "tablesdb" || target.api == Api::tablesdb) {
    // As a write through the TablesDB API publishes it (on 1.8 the event strings follow the
    // API's words); a legacy collection's as the Databases API does.
    pattern = "databases.[databaseId].tables.[tableId].rows.[rowId]." + action;
    params = {{"databaseId", target.database}, {"tableId", target.container}, {"rowId", id}};
  } else {
    pattern = "databases.[databaseId].collections.[collectionId].documents.[documentId]." + action;
    params = {
        {"databaseId", target.database}, {"collectionId", target.container}, {"documentId", id}};
  }
  // The read roles decide who receives an event, not its channels: a backfill lists only what
  // its own credentials may read.
  const auto computed = emulator::compute_fanout(profile_, pattern, params, target.database_type,
                                                 {"any"}, emulator::Project{project_, ""}, row.row);
  if (const auto* error = std::get_if<std::string>(&computed)) {
    result.error = *error;
    return result;
  }
  const auto& fanout = std::get<emulator::Fanout>(computed);
  std::string frame = R"({"type":"event","data":{"events":)";
  append_strings(frame, fanout.events);
  frame += R"(,"channels":)";
  append_strings(frame, fanout.channels);
  frame += R"(,"timestamp":)";
  frame += json::serialize(json::string_view(format_utc_millis(row.updated_at, "+00:00")));
  frame += R"(,"payload":)";
  frame += json::serialize(row.row);
  frame += R"(,"recovered":true}})";
  const auto decoded = decoder_.decode(std::move(frame), false, std::chrono::steady_clock::now(),
                                       std::chrono::system_clock::now());
  if (decoded.kind != upstream::FrameKind::event) {
    result.error =
        "the recovered event does not decode (" + std::string(decoded.invalid_reason) + ")";
    return result;
  }
  result.event = decoded.event;
  return result;
}

}  // namespace sluice::recovery
