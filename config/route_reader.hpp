#pragma once

#include <string>
#include <vector>

#include "config/config.hpp"
#include "config/reader.hpp"

// The `routes` list of routes.yaml: channels, event patterns, `where` conditions (Appwrite's
// query methods) and the sinks each route feeds. Called by the loader, on its thread.
namespace sluice::config {

// Reads the list under `f` into `out`; a route with any error is left out. `sink_names` are
// all the sinks declared, valid or not, so a route naming a broken sink is not reported a second
// time as naming a missing one.
// YAML 1.2 core schema resolution of a plain (unquoted) scalar: `where` values, and the
// payloads of route test cases, so both read `100`, `true` and `null` the same way.
Query::Value plain_value(const std::string& s);

void read_routes(Reader& reader, const Field& f, std::vector<std::string> sink_names,
                 std::vector<RouteConfig>& out);

}  // namespace sluice::config
