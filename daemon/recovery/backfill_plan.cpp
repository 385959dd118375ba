#include "daemon/recovery/backfill_plan.hpp"

#include <algorithm>
#include <map>

#include "core/text.hpp"
#include "daemon/upstream/realtime_url.hpp"

namespace sluice::recovery {

namespace {

// What one channel asks a backfill for.
struct ChannelNeed {
  enum class Kind { resource, broad_databases, broad_buckets, uncovered, ignored } kind;
  std::string key;             // resource
  std::string database_type;   // resource: "tablesdb" or "legacy"; "" for buckets
  bool tablesdb_form = false;  // resource: named with `tables`/`rows` (the TablesDB words)
  std::string reason;          // uncovered
};

ChannelNeed classify(std::string_view channel) {
  using K = ChannelNeed::Kind;
  const auto s = split(channel, '.');
  const auto resource = [&](std::size_t fixed) {
    return s.size() >= fixed && s.size() <= fixed + 2;
  };
  if (resource(5) && (s[0] == "tablesdb" || s[0] == "databases") && s[2] == "tables" &&
      s[4] == "rows") {
    return {K::resource, "databases/" + std::string(s[1]) + "/tables/" + std::string(s[3]),
            s[0] == "tablesdb" ? "tablesdb" : "legacy", true, ""};
  }
  if (resource(5) && s[0] == "databases" && s[2] == "collections" && s[4] == "documents") {
    return {K::resource, "databases/" + std::string(s[1]) + "/tables/" + std::string(s[3]),
            "legacy", false, ""};
  }
  if (resource(3) && s[0] == "buckets" && s[2] == "files")
    return {K::resource, "buckets/" + std::string(s[1]), "", false, ""};
  // Broad channels, also with 1.9's action suffix (`rows.create`).
  const bool broad = s.size() == 1 || (s.size() == 2 && (s[1] == "create" || s[1] == "update" ||
                                                         s[1] == "upsert" || s[1] == "delete"));
  if (broad && (s[0] == "rows" || s[0] == "documents"))
    return {K::broad_databases, "", "", false, ""};
  if (broad && s[0] == "files")
    return {K::broad_buckets, "", "", false, ""};
  std::string family;
  for (const auto profile : {emulator::Profile::v1_9, emulator::Profile::v1_8}) {
    if (family = emulator::channel_family(profile, channel); !family.empty())
      break;
  }
  if (family.empty())
    return {K::ignored, "", "", false, ""};  // Appwrite publishes nothing there: lint says so
  if (family == "documents" || family == "files") {
    return {K::uncovered, "", "", false,
            "sluice lists only TablesDB tables, legacy collections and buckets, not " +
                std::string(s[0]) + " databases"};
  }
  return {K::uncovered, "", "", false,
          "Appwrite keeps no listable history of " + family + " changes"};
}

bool has_api_key(const config::Config& config) {
  return config.appwrite.auth.kind == config::AuthConfig::Kind::api_key;
}

}  // namespace

emulator::Profile profile_of(const std::optional<std::string>& server_version) {
  const auto v = server_version ? upstream::parse_version(*server_version) : std::nullopt;
  return v && *v < upstream::Version{1, 9, 0} ? emulator::Profile::v1_8 : emulator::Profile::v1_9;
}

bool has_tablesdb_api(const std::optional<std::string>& server_version) {
  const auto v = server_version ? upstream::parse_version(*server_version) : std::nullopt;
  return v && *v >= upstream::Version{1, 8, 0};
}

std::vector<Uncovered> uncovered_channels(const config::Config& config) {
  std::vector<Uncovered> out;
  if (!config.backfill.enabled)
    return out;
  for (const auto& route : config.routes) {
    if (!route.backfill)
      continue;
    for (const auto& channel : route.channels) {
      const auto need = classify(channel);
      using K = ChannelNeed::Kind;
      if (need.kind == K::uncovered) {
        out.push_back({channel, route.name, need.reason});
      } else if ((need.kind == K::broad_databases || need.kind == K::broad_buckets) &&
                 !has_api_key(config)) {
        out.push_back({channel, route.name,
                       std::string("listing every ") +
                           (need.kind == K::broad_buckets ? "bucket" : "database and table") +
                           " needs an api_key; name the tables or buckets instead"});
      }
    }
  }
  return out;
}

std::optional<Target> plan_target(std::string_view key, std::string_view database_type,
                                  bool tablesdb_form, const config::BackfillConfig& backfill,
                                  const State& state, const PlanContext& context) {
  Target target;
  target.key = std::string(key);
  const auto parts = split(key, '/');
  if (parts.size() == 2 && parts[0] == "buckets") {
    target.api = Api::storage;
    target.container = parts[1];
  } else if (parts.size() == 4 && parts[0] == "databases" && parts[2] == "tables") {
    target.database = parts[1];
    target.container = parts[3];
    target.database_type = database_type == "tablesdb" ? "tablesdb" : "legacy";
    target.api =
        (database_type == "tablesdb" || tablesdb_form) && has_tablesdb_api(context.server_version)
            ? Api::tablesdb
            : Api::databases;
  } else {
    return std::nullopt;
  }

  std::optional<Millis> since = state.live_until ? state.live_until : context.gap_start;
  if (const auto checkpoint = state.resources.find(key); checkpoint != state.resources.end()) {
    const auto& cp = checkpoint->second;
    since = since ? std::max(*since, cp.updated_at) : cp.updated_at;
    target.skip_at = cp.updated_at;
    target.skip_ids = cp.ids;
  }
  if (!since)
    return std::nullopt;
  target.since = *since;
  const Millis wanted =
      *since - std::chrono::duration_cast<std::chrono::milliseconds>(backfill.margin);
  const Millis window_start =
      context.now - std::chrono::duration_cast<std::chrono::milliseconds>(backfill.max_window);
  target.from = std::max(wanted, window_start);
  // Only the gap itself counts as not fetched, not the margin in front of it.
  if (*since < window_start)
    target.not_fetched = window_start - *since;
  return target;
}

Plan plan_backfill(const config::Config& config, const State& state, const PlanContext& context) {
  Plan plan;
  plan.profile = profile_of(context.server_version);
  if (!config.backfill.enabled)
    return plan;
  plan.not_covered = uncovered_channels(config);
  struct Wanted {
    std::string database_type;
    bool tablesdb_form = false;
  };
  std::map<std::string, Wanted, std::less<>> wanted;
  for (const auto& route : config.routes) {
    if (!route.backfill)
      continue;
    for (const auto& channel : route.channels) {
      const auto need = classify(channel);
      using K = ChannelNeed::Kind;
      if (need.kind == K::resource) {
        auto& w = wanted[need.key];
        if (need.database_type == "tablesdb")
          w.database_type = "tablesdb";
        else if (w.database_type.empty())
          w.database_type = need.database_type;
        w.tablesdb_form = w.tablesdb_form || need.tablesdb_form;
      } else if (need.kind == K::broad_databases && has_api_key(config)) {
        plan.discover_databases = true;
      } else if (need.kind == K::broad_buckets && has_api_key(config)) {
        plan.discover_buckets = true;
      }
    }
  }
  for (const auto& [key, w] : wanted) {
    if (auto target =
            plan_target(key, w.database_type, w.tablesdb_form, config.backfill, state, context))
      plan.targets.push_back(std::move(*target));
  }
  return plan;
}

}  // namespace sluice::recovery
