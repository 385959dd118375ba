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
void read_routes(Reader& reader, const Field& f, std::vector<std::string> sink_names,
                 std::vector<RouteConfig>& out);

}  // namespace sluice::config
