#include "emulator/fanout/fanout.hpp"

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <cstdint>
#include <unordered_set>
#include <utility>

#include "core/text.hpp"

// Every rule here restates Appwrite's PHP (references are to files of Appwrite's repository,
// e.g. src/Appwrite/Messaging/Adapter/Realtime.php); where the source left a detail open, the
// choice is commented.
namespace sluice::emulator {
namespace {

using Segments = std::vector<std::string>;

constexpr std::array<std::string_view, 4> kActions = {"create", "update", "upsert", "delete"};

// Channels whose last or second-to-last segment is one of these get an action-suffixed sibling
// (≥1.9.5, Adapter/Realtime.php:959-999).
constexpr std::array<std::string_view, 9> kSuffixable = {"documents",  "rows",        "files",
                                                         "executions", "functions",   "account",
                                                         "teams",      "memberships", "presences"};

bool contains(const auto& range, std::string_view value) {
  return std::find(range.begin(), range.end(), value) != range.end();
}

bool is_action(std::string_view s) {
  return contains(kActions, s);
}

bool is_placeholder(std::string_view seg) {
  return !seg.empty() && seg.front() == '[';
}

std::string placeholder_name(std::string_view seg) {
  return std::string(seg.substr(1, seg.size() - 2));
}

Segments split(std::string_view s) {
  const auto pieces = sluice::split(s, '.');
  return Segments(pieces.begin(), pieces.end());
}

std::string join(const Segments& segs) {
  std::string out;
  for (const auto& s : segs) {
    if (!out.empty())
      out += '.';
    out += s;
  }
  return out;
}

bool is_database_type(std::string_view s) {
  return s == "databases" || s == "tablesdb" || s == "documentsdb" || s == "vectorsdb";
}

// The structure Event::parseEventPattern finds (Event.php:414-474), restricted to the shapes
// Appwrite's routes actually use: placeholders only at positions 1, 3 and 5, literals elsewhere,
// and no trailing segment that parseEventPattern would silently ignore.
struct Shape {
  Segments segs;
  bool sub = false;
  bool subsub = false;
  std::size_t action = 0;     // index of the action segment; 0 = none
  std::size_t attribute = 0;  // index of the attribute segment; 0 = none
};

std::variant<Shape, std::string> parse_shape(std::string_view pattern) {
  Shape shape;
  shape.segs = split(pattern);
  const auto& segs = shape.segs;
  const auto n = segs.size();
  if (n < 2 || n > 8)
    return "malformed event pattern '" + std::string(pattern) + "'";
  for (std::size_t i = 0; i < n; ++i) {
    const auto& seg = segs[i];
    if (seg.empty())
      return "malformed event pattern '" + std::string(pattern) + "': empty segment";
    const bool placeholder_slot = i == 1 || ((i == 3 || i == 5) && is_placeholder(seg));
    if (placeholder_slot) {
      if (seg.size() < 3 || seg.front() != '[' || seg.back() != ']' ||
          seg.find_first_of("[]", 1) != seg.size() - 1)
        return "malformed event pattern '" + std::string(pattern) + "': segment " +
               std::to_string(i) + " must be a [placeholder]";
    } else if (seg.find_first_of("[]*") != std::string::npos) {
      return "malformed event pattern '" + std::string(pattern) + "': unexpected '" + seg + "'";
    }
  }
  shape.sub = n > 3 && is_placeholder(segs[3]);
  shape.subsub = shape.sub && n > 5 && is_placeholder(segs[5]);
  const std::size_t depth = shape.subsub ? 6 : shape.sub ? 4 : 2;  // segments before the action
  if (n > depth + 2)
    return "malformed event pattern '" + std::string(pattern) + "': too many segments";
  if (n > depth)
    shape.action = depth;
  if (n > depth + 1)
    shape.attribute = depth + 1;
  return shape;
}

// Appwrite's param order (Documents/Update.php:367-372 sets databaseId, collectionId, tableId,
// documentId, rowId). Order only changes the order of the partially wildcarded events.
std::vector<std::string> param_order(const Shape& shape,
                                     const std::map<std::string, std::string>& params,
                                     bool database_pattern) {
  std::vector<std::string> keys;
  auto add = [&](const std::string& k) {
    if (params.contains(k) && !contains(keys, k))
      keys.push_back(k);
  };
  if (database_pattern)
    for (const char* k : {"databaseId", "collectionId", "tableId", "documentId", "rowId"})
      add(k);
  for (const auto& seg : shape.segs)
    if (is_placeholder(seg))
      add(placeholder_name(seg));
  for (const auto& [k, v] : params)
    add(k);
  return keys;
}

// Which keys Event::generateEvents replaces with '*' for each emitted string, in its order:
// all values, all '*', then the loops over the keys (Event.php generateEvents). With a
// sub-sub-resource the loops cover one and two wildcards, otherwise only one.
std::vector<std::vector<bool>> wildcard_sets(std::size_t k, bool subsub) {
  std::vector<std::vector<bool>> sets;
  sets.emplace_back(k, false);
  sets.emplace_back(k, true);
  for (std::size_t key = 0; key < k; ++key) {
    for (std::size_t current = 0; current < k; ++current) {
      if (subsub) {
        for (std::size_t sub = 0; sub < k; ++sub) {
          if (sub == current || sub == key)
            continue;
          std::vector<bool> one(k, false);
          one[sub] = true;
          sets.push_back(one);
          one[current] = true;
          sets.push_back(one);
          std::vector<bool> other(k, false);
          other[current] = true;
          sets.push_back(other);
        }
      } else {
        if (current == key)
          continue;
        std::vector<bool> one(k, false);
        one[current] = true;
        sets.push_back(std::move(one));
      }
    }
  }
  return sets;
}

void push_unique(std::vector<Segments>& out, std::unordered_set<std::string>& seen, Segments segs) {
  if (seen.insert(join(segs)).second)
    out.push_back(std::move(segs));
}

// The renaming Appwrite ≥1.9 applies for databases that are not `legacy` (Event.php:498-500,
// 713-739), by position so that ids are never rewritten.
void rename_for_type(Segments& segs, std::string_view type) {
  segs[0] = std::string(type);
  if (type != "tablesdb")
    return;
  if (segs.size() > 2 && segs[2] == "collections")
    segs[2] = "tables";
  if (segs.size() > 4) {
    if (segs[4] == "documents")
      segs[4] = "rows";
    if (segs[4] == "attributes")
      segs[4] = "columns";
  }
}

Segments collections_form(Segments segs) {
  segs[0] = "databases";
  if (segs.size() > 2 && segs[2] == "tables")
    segs[2] = "collections";
  if (segs.size() > 4) {
    if (segs[4] == "rows")
      segs[4] = "documents";
    if (segs[4] == "columns")
      segs[4] = "attributes";
  }
  return segs;
}

Segments tables_form(Segments segs) {
  segs[0] = "databases";
  if (segs.size() > 2 && segs[2] == "collections")
    segs[2] = "tables";
  if (segs.size() > 4) {
    if (segs[4] == "documents")
      segs[4] = "rows";
    if (segs[4] == "attributes")
      segs[4] = "columns";
  }
  return segs;
}

// The mirror step (Event.php:637-694; 1.8.0 Event.php:610+): twins appended after each event.
std::vector<Segments> mirror(Profile profile, std::vector<Segments> events) {
  if (events.empty())
    return events;
  const auto& first = events.front();
  const std::string_view type = first[0];
  const std::string_view sub_type = first.size() > 2 ? std::string_view(first[2]) : "";
  enum class Mode { none, both, twin, tables_twin } mode = Mode::none;
  if (at_least_1_9(profile)) {
    if (type == "tablesdb")
      mode = Mode::both;
    else if (type == "databases" && (sub_type == "collections" || sub_type == "tables"))
      mode = Mode::twin;
  } else if (type == "databases" && sub_type == "collections") {
    mode = Mode::tables_twin;
  }
  if (mode == Mode::none)
    return events;

  std::vector<Segments> out;
  std::unordered_set<std::string> seen;
  for (auto& e : events) {
    Segments twin_a;
    Segments twin_b;
    if (mode == Mode::both) {
      twin_a = collections_form(e);
      twin_b = tables_form(e);
    } else if (mode == Mode::tables_twin || (e.size() > 2 && e[2] == "collections")) {
      twin_a = tables_form(e);
    } else {
      twin_a = collections_form(e);
    }
    push_unique(out, seen, std::move(e));
    push_unique(out, seen, std::move(twin_a));
    if (!twin_b.empty())
      push_unique(out, seen, std::move(twin_b));
  }
  return out;
}

struct ChannelSet {
  std::vector<std::string> channels;
  std::vector<std::string> roles;
  bool permissions_changed = false;
};

// For an execution, the function comes from the payload as Appwrite takes it: `functionId` up to
// 1.9.6, `resourceId` on main (PR #13209, which also added `resourceType`: `functions` or
// `sites`). Empty when the payload does not have that shape.
std::string execution_function(Profile profile, const boost::json::object& payload) {
  const auto text = [&](std::string_view key) -> std::string_view {
    const auto* value = payload.if_contains(key);
    return value != nullptr && value->is_string() ? std::string_view(value->get_string())
                                                  : std::string_view();
  };
  if (profile != Profile::main)
    return std::string(text("functionId"));
  const auto type = text("resourceType");
  return type == "functions" || type == "sites" ? std::string(text("resourceId")) : std::string();
}

// Realtime::fromPayload (Adapter/Realtime.php:813-1007; 1.8.0 :227-331), with the ids taken
// from the params instead of the payload and database/collection documents (they are equal in
// Appwrite), except an execution's `function`, whose payload field differs between versions.
// Events Appwrite publishes only to the `console` project (schema changes, deployments, rules,
// migrations, projects) give no channels here: no project connection can receive them.
ChannelSet channels_for(Profile profile, const Segments& first, const Shape& shape,
                        const std::vector<std::string>& read, const Project& project,
                        const std::string& function) {
  ChannelSet out;
  const std::string& type = first[0];
  const std::string& id1 = first[1];
  auto seg = [&](std::size_t i) -> std::string { return i < first.size() ? first[i] : ""; };

  if (type == "users") {
    out.channels = {"account", "account." + id1};
    out.roles = {"user:" + id1};
  } else if (type == "teams") {
    if (seg(2) == "memberships") {
      // PHP: `$parts[4] ?? false`, used as a truthy value.
      const auto p4 = seg(4);
      out.permissions_changed = !p4.empty() && p4 != "0";
      out.channels = {"memberships", "memberships." + seg(3)};
    } else {
      out.permissions_changed = seg(2) == "create";
      out.channels = {"teams", "teams." + id1};
    }
    out.roles = {"team:" + id1};
  } else if (is_database_type(type)) {
    const auto resource = seg(4);
    if ((resource == "rows" || resource == "documents") && shape.subsub) {
      const std::string& db = id1;
      const std::string c = seg(3);
      const std::string x = seg(5);
      const std::string docs = "databases." + db + ".collections." + c + ".documents";
      const std::string rows = "databases." + db + ".tables." + c + ".rows";
      if (profile == Profile::v1_8) {
        out.channels = {"rows", rows, rows + "." + x, "documents", docs, docs + "." + x};
      } else if (type == "documentsdb" || type == "vectorsdb") {
        const std::string own = type + "." + db + ".collections." + c + ".documents";
        out.channels = {"documents", own, own + "." + x};
      } else {
        const std::string tdb = "tablesdb." + db + ".tables." + c + ".rows";
        out.channels = {"documents",    docs, docs + "." + x, "rows", rows,
                        rows + "." + x, tdb,  tdb + "." + x};
      }
      out.roles = read;
    }
  } else if (type == "buckets") {
    if (seg(2) == "files") {
      out.channels = {"files", "buckets." + id1 + ".files", "buckets." + id1 + ".files." + seg(3)};
      out.roles = read;
    }
  } else if (type == "functions") {
    // Only executions that someone may read are published (Adapter/Realtime.php:911-920).
    if (seg(2) == "executions" && !read.empty()) {
      out.channels = {"console", "projects." + project.id, "executions", "executions." + seg(3),
                      "functions." + function};
      out.roles = read;
    }
  } else if (type == "reports") {
    // Advisor reports and their insights (Adapter/Realtime.php:937-950 on main, also in
    // 1.9.6): readable only by the project's owner team. No action suffix: neither `reports`
    // nor `insights` is a resource leaf.
    if (at_least_1_9(profile)) {
      out.channels = {"reports", "reports." + id1};
      if (seg(2) == "insights") {
        out.channels.push_back("reports." + id1 + ".insights");
        if (shape.sub)
          out.channels.push_back("reports." + id1 + ".insights." + seg(3));
      }
      out.roles = {"team:" + project.owner_team};
    }
  } else if (type == "presences" && at_least_1_9(profile)) {
    out.channels = {"presences", "presences." + id1};
    out.roles = read;
  }

  if (at_least_1_9(profile) && !out.channels.empty()) {
    // Action suffix (≥1.9.5): the last segment if it is an action, else the second-to-last;
    // for users only a top-level action counts (sessions etc. get no suffix).
    std::size_t idx = 0;
    if (is_action(first.back()))
      idx = first.size() - 1;
    else if (first.size() >= 2 && is_action(first[first.size() - 2]))
      idx = first.size() - 2;
    if (idx != 0 && type == "users" && idx != 2)
      idx = 0;
    if (idx != 0) {
      const std::string& action = first[idx];
      const auto base = out.channels;
      for (const auto& ch : base) {
        const auto parts = split(ch);
        const bool leaf = contains(kSuffixable, parts.back()) ||
                          (parts.size() >= 2 && contains(kSuffixable, parts[parts.size() - 2]));
        if (leaf)
          out.channels.push_back(ch + "." + action);
      }
    }
  }
  return out;
}

}  // namespace

std::variant<Fanout, std::string> compute_fanout(Profile profile, std::string_view pattern,
                                                 const std::map<std::string, std::string>& params,
                                                 std::string_view database_type,
                                                 const std::vector<std::string>& read,
                                                 const Project& project,
                                                 const boost::json::object& payload) {
  auto parsed = parse_shape(pattern);
  if (auto* err = std::get_if<std::string>(&parsed))
    return *err;
  Shape shape = std::get<Shape>(std::move(parsed));

  // Effective database type. A pattern may also be written in its renamed form
  // ("tablesdb.[databaseId].tables...."); it is brought back to the `databases` form so the
  // renaming below produces it again.
  std::string db_type(database_type.empty() ? "legacy" : database_type);
  const bool database_pattern = is_database_type(shape.segs[0]);
  if (database_pattern) {
    if (shape.segs[0] != "databases") {
      if (profile == Profile::v1_8)
        return "event type '" + shape.segs[0] + "' does not exist in Appwrite 1.8";
      if (!database_type.empty() && database_type != shape.segs[0])
        return "pattern type '" + shape.segs[0] + "' contradicts database_type '" + db_type + "'";
      db_type = shape.segs[0];
      shape.segs[0] = "databases";
    }
    if (db_type != "legacy" && db_type != "tablesdb" && db_type != "documentsdb" &&
        db_type != "vectorsdb")
      return "unknown database_type '" + db_type + "'";
    if (profile == Profile::v1_8 && (db_type == "documentsdb" || db_type == "vectorsdb"))
      return "database_type '" + db_type + "' does not exist in Appwrite 1.8";
  }

  // Appwrite's routes pass both names of a row/document (Documents/Update.php:367-372).
  auto all = params;
  if (database_pattern) {
    auto alias = [&](const char* a, const char* b) {
      if (all.contains(a) && !all.contains(b))
        all[b] = all[a];
      if (all.contains(b) && !all.contains(a))
        all[a] = all[b];
    };
    alias("tableId", "collectionId");
    alias("rowId", "documentId");
  }
  for (const auto& seg : shape.segs) {
    if (!is_placeholder(seg))
      continue;
    const auto name = placeholder_name(seg);
    const auto it = all.find(name);
    if (it == all.end())
      return seg + " is missing from the params.";
    if (it->second.empty())
      return "param " + name + " is empty";
  }

  // 1.8.x has no database types: every databases event keeps its `databases.` form.
  if (at_least_1_9(profile) && database_pattern && db_type != "legacy")
    rename_for_type(shape.segs, db_type);

  // Patterns, in generateEvents' order.
  const auto& s = shape.segs;
  auto prefix = [&](std::size_t n) { return Segments(s.begin(), s.begin() + n); };
  std::vector<Segments> patterns;
  {
    std::unordered_set<std::string> seen;
    const std::size_t depth = shape.subsub ? 6 : shape.sub ? 4 : 2;
    if (shape.action) {
      if (shape.subsub || shape.sub) {
        if (shape.attribute)
          push_unique(patterns, seen, prefix(depth + 2));
        push_unique(patterns, seen, prefix(depth + 1));
        push_unique(patterns, seen, prefix(depth));
      } else {
        push_unique(patterns, seen, prefix(3));
      }
      if (shape.attribute)
        push_unique(patterns, seen, {s[0], s[1], s[shape.action], s[shape.attribute]});
    }
    if (shape.subsub)
      push_unique(patterns, seen, prefix(6));
    if (shape.sub)
      push_unique(patterns, seen, prefix(4));
    push_unique(patterns, seen, prefix(2));
  }

  const auto keys = param_order(shape, all, database_pattern);
  const auto sets = wildcard_sets(keys.size(), shape.subsub);
  std::vector<Segments> events;
  {
    std::unordered_set<std::string> seen;
    for (const auto& p : patterns) {
      for (const auto& starred : sets) {
        Segments e = p;
        for (auto& seg : e) {
          if (!is_placeholder(seg))
            continue;
          const auto name = placeholder_name(seg);
          const auto k =
              static_cast<std::size_t>(std::find(keys.begin(), keys.end(), name) - keys.begin());
          seg = starred[k] ? "*" : all.at(name);
        }
        push_unique(events, seen, std::move(e));
      }
    }
  }
  const bool mirrored = database_pattern && !(at_least_1_9(profile) &&
                                              (db_type == "documentsdb" || db_type == "vectorsdb"));
  if (mirrored)
    events = mirror(profile, std::move(events));

  std::string function;
  if (shape.segs[0] == "functions" && shape.segs.size() > 2 && shape.segs[2] == "executions" &&
      !read.empty()) {
    function = execution_function(profile, payload);
    if (function.empty()) {
      return profile == Profile::main
                 ? std::string(
                       "an execution's payload needs `resourceId` and `resourceType` "
                       "(functions or sites) on this profile: Appwrite after 1.9.6 names "
                       "the function there")
                 : std::string(
                       "an execution's payload needs `functionId` on this profile: "
                       "Appwrite up to 1.9.6 names the function there");
    }
  }
  auto cs = channels_for(profile, events.front(), shape, read, project, function);
  Fanout out;
  out.events.reserve(events.size());
  for (const auto& e : events)
    out.events.push_back(join(e));
  out.channels = std::move(cs.channels);
  out.roles = std::move(cs.roles);
  out.permissions_changed = cs.permissions_changed;
  return out;
}

namespace {

// Stands for an id in the channels of `published_channels`: no channel a user writes has it.
const std::string kAnyId = "\x01";

// Every channel `profile` publishes on, as segments with kAnyId for ids, each with its family:
// compute_fanout's answer for every event of each family, with every action.
std::vector<std::pair<std::string, Segments>> published_channels(Profile profile) {
  struct Family {
    std::string_view name;
    std::string_view pattern;  // without its action
    std::string_view database_type;
  };
  static constexpr std::string_view kRows =
      "databases.[databaseId].collections.[collectionId].documents.[documentId]";
  static constexpr std::array<Family, 11> kFamilies = {{
      {"account", "users.[userId]", ""},
      {"teams", "teams.[teamId]", ""},
      {"memberships", "teams.[teamId].memberships.[membershipId]", ""},
      {"documents", kRows, "legacy"},
      {"documents", kRows, "tablesdb"},
      {"documents", kRows, "documentsdb"},
      {"documents", kRows, "vectorsdb"},
      {"files", "buckets.[bucketId].files.[fileId]", ""},
      {"executions", "functions.[functionId].executions.[executionId]", ""},
      // A report's own events give a subset of the channels of its insights'.
      {"reports", "reports.[reportId].insights.[insightId]", ""},
      {"presences", "presences.[presenceId]", ""},
  }};
  const boost::json::object payload = {
      {"functionId", kAnyId}, {"resourceId", kAnyId}, {"resourceType", "functions"}};
  std::vector<std::pair<std::string, Segments>> out;
  std::unordered_set<std::string> seen;
  for (const auto& family : kFamilies) {
    for (const auto action : kActions) {
      const auto pattern = std::string(family.pattern) + "." + std::string(action);
      std::map<std::string, std::string> params;
      for (const auto& seg : split(pattern))
        if (is_placeholder(seg))
          params[placeholder_name(seg)] = kAnyId;
      const auto result = compute_fanout(profile, pattern, params, family.database_type, {"any"},
                                         Project{kAnyId, kAnyId}, payload);
      if (const auto* fanout = std::get_if<Fanout>(&result)) {
        for (const auto& channel : fanout->channels)
          if (seen.insert(channel).second)
            out.emplace_back(std::string(family.name), split(channel));
      }
    }
  }
  return out;
}

}  // namespace

std::string channel_family(Profile profile, std::string_view channel) {
  static const std::array<std::vector<std::pair<std::string, Segments>>, 3> kPublished = {
      published_channels(Profile::v1_8), published_channels(Profile::v1_9),
      published_channels(Profile::main)};
  const auto wanted = split(channel);
  const auto is_id = [](const std::string& seg) {
    return !seg.empty() && seg.find('*') == std::string::npos;
  };
  for (const auto& [family, segs] : kPublished.at(static_cast<std::size_t>(profile))) {
    if (segs.size() != wanted.size())
      continue;
    bool same = true;
    for (std::size_t i = 0; same && i < segs.size(); ++i)
      same = segs[i] == wanted[i] || (segs[i] == kAnyId && is_id(wanted[i]));
    if (same)
      return family;
  }
  return "";
}

std::vector<std::string> connection_roles(const User* user) {
  if (user == nullptr || user->id.empty())
    return {"guests"};
  const std::string verified = user->email_verified ? "verified" : "unverified";
  std::vector<std::string> roles = {"user:" + user->id, "users",
                                    "user:" + user->id + "/" + verified, "users/" + verified};
  // Appwrite also adds member:<membershipId> and team:<T>/<role>; the emulator models neither
  // membership ids nor team roles, and no publish here carries those roles.
  for (const auto& t : user->teams)
    roles.push_back("team:" + t);
  for (const auto& l : user->labels)
    roles.push_back("label:" + l);
  return roles;
}

bool may_receive(const std::vector<std::string>& connection_roles,
                 const std::vector<std::string>& event_roles) {
  if (connection_roles.empty())
    return false;
  if (contains(event_roles, "any"))
    return true;
  return std::any_of(connection_roles.begin(), connection_roles.end(),
                     [&](const std::string& r) { return contains(event_roles, r); });
}

std::vector<std::string> convert_channels(Profile profile, const std::vector<std::string>& channels,
                                          const User* user) {
  // PHP: array_flip (dedupe, first position wins), unset the dropped keys while iterating a
  // copy, append the added keys at the end.
  const std::string uid = user != nullptr ? user->id : std::string();
  std::vector<std::string> unique;
  for (const auto& ch : channels)
    if (!contains(unique, ch))
      unique.push_back(ch);

  std::vector<std::string> kept;
  std::vector<std::string> added;
  for (const auto& ch : unique) {
    if (ch == "account") {
      kept.push_back(ch);
      if (!uid.empty())
        added.push_back("account." + uid);
    } else if (ch.starts_with("account.")) {
      const std::string_view rest = std::string_view(ch).substr(8);
      if (at_least_1_9(profile) && is_action(rest)) {
        if (uid.empty())
          kept.push_back(ch);
        else
          added.push_back("account." + uid + "." + std::string(rest));
      }
      // Everything else under account.* is dropped (≤1.9.0: all of it).
    } else {
      kept.push_back(ch);
    }
  }
  for (auto& a : added)
    if (!contains(kept, a))
      kept.push_back(std::move(a));
  return kept;
}

namespace {

// PHP's gettype() names, for error messages worded like utopia-php/database's.
std::string php_type(const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::null:
      return "NULL";
    case boost::json::kind::bool_:
      return "boolean";
    case boost::json::kind::int64:
    case boost::json::kind::uint64:
      return "integer";
    case boost::json::kind::double_:
      return "double";
    case boost::json::kind::string:
      return "string";
    case boost::json::kind::array:
    case boost::json::kind::object:
      return "array";
  }
  return "unknown";
}

// Every method utopia-php/database's Query::isMethod knows. Only a subset is allowed in
// realtime; the rest are rejected with convertQueries' message rather than parseQuery's.
constexpr std::array<std::string_view, 49> kUtopiaMethods = {"equal",
                                                             "notEqual",
                                                             "lessThan",
                                                             "lessThanEqual",
                                                             "greaterThan",
                                                             "greaterThanEqual",
                                                             "contains",
                                                             "containsAny",
                                                             "notContains",
                                                             "search",
                                                             "notSearch",
                                                             "orderAsc",
                                                             "orderDesc",
                                                             "orderRandom",
                                                             "limit",
                                                             "offset",
                                                             "cursorAfter",
                                                             "cursorBefore",
                                                             "isNull",
                                                             "isNotNull",
                                                             "between",
                                                             "notBetween",
                                                             "startsWith",
                                                             "notStartsWith",
                                                             "endsWith",
                                                             "notEndsWith",
                                                             "crosses",
                                                             "notCrosses",
                                                             "distanceEqual",
                                                             "distanceNotEqual",
                                                             "distanceGreaterThan",
                                                             "distanceLessThan",
                                                             "intersects",
                                                             "notIntersects",
                                                             "overlaps",
                                                             "notOverlaps",
                                                             "touches",
                                                             "notTouches",
                                                             "or",
                                                             "and",
                                                             "containsAll",
                                                             "elemMatch",
                                                             "select",
                                                             "vectorDot",
                                                             "vectorCosine",
                                                             "vectorEuclidean",
                                                             "exists",
                                                             "notExists",
                                                             "regex"};

std::optional<Query> parse_query_value(const boost::json::value& json, std::string& error,
                                       int depth);

std::optional<Query> parse_query_text(std::string_view text, std::string& error, int depth) {
  boost::system::error_code ec;
  const auto json = boost::json::parse(text, ec);
  if (ec) {
    error = "Invalid query: " + ec.message();
    return std::nullopt;
  }
  if (!json.is_object() && !json.is_array()) {
    error = "Invalid query. Must be an array, got " + php_type(json);
    return std::nullopt;
  }
  return parse_query_value(json, error, depth);
}

// Query::parseQuery followed by Realtime::convertQueries' checks (Adapter/Realtime.php:773-799).
std::optional<Query> parse_query_value(const boost::json::value& json, std::string& error,
                                       int depth) {
  if (depth > 32) {
    error = "Invalid query: nested too deeply";
    return std::nullopt;
  }
  // A JSON list decodes to a PHP list, which has no "method" key.
  static const boost::json::object kEmpty;
  const auto& obj = json.is_object() ? json.get_object() : kEmpty;

  std::string method_name;
  if (const auto* m = obj.if_contains("method")) {
    if (!m->is_string()) {
      error = "Invalid query method. Must be a string, got " + php_type(*m);
      return std::nullopt;
    }
    method_name = std::string(m->get_string());
  }
  if (!contains(kUtopiaMethods, method_name)) {
    error = "Invalid query method: " + method_name;
    return std::nullopt;
  }
  Query q;
  if (const auto* a = obj.if_contains("attribute")) {
    if (!a->is_string()) {
      error = "Invalid query attribute. Must be a string, got " + php_type(*a);
      return std::nullopt;
    }
    q.attribute = std::string(a->get_string());
  }
  static const boost::json::array kNoValues;
  const boost::json::array* values = &kNoValues;
  if (const auto* v = obj.if_contains("values")) {
    // PHP arrays are JSON lists and objects alike.
    if (v->is_object()) {
      error = "Invalid query values: expected a list";
      return std::nullopt;
    }
    if (!v->is_array()) {
      error = "Invalid query values. Must be an array, got " + php_type(*v);
      return std::nullopt;
    }
    values = &v->get_array();
  }

  // The realtime subset is exactly what core/query.hpp models (RuntimeQuery::ALLOWED_QUERIES).
  if (!parse_method(method_name, q.method)) {
    std::string allowed;
    for (auto m = Query::Method::equal; m <= Query::Method::select;
         m = static_cast<Query::Method>(static_cast<int>(m) + 1)) {
      if (!allowed.empty())
        allowed += ", ";
      allowed += sluice::method_name(m);
    }
    error = "Query method '" + method_name +
            "' is not supported in Realtime queries. Allowed query methods are: " + allowed;
    return std::nullopt;
  }

  if (q.method == Query::Method::and_ || q.method == Query::Method::or_) {
    for (const auto& child : *values) {
      std::optional<Query> parsed;
      if (child.is_string()) {
        parsed = parse_query_text(child.get_string(), error, depth + 1);
      } else if (child.is_object() || child.is_array()) {
        parsed = parse_query_value(child, error, depth + 1);
      } else {
        error = "Invalid nested query. Must be an array or string, got " + php_type(child);
        return std::nullopt;
      }
      if (!parsed)
        return std::nullopt;
      q.queries.push_back(std::move(*parsed));
    }
    return q;
  }

  for (const auto& v : *values) {
    switch (v.kind()) {
      case boost::json::kind::null:
        q.values.emplace_back(nullptr);
        break;
      case boost::json::kind::bool_:
        q.values.emplace_back(v.get_bool());
        break;
      case boost::json::kind::int64:
        q.values.emplace_back(v.get_int64());
        break;
      case boost::json::kind::uint64:
        // PHP turns integers beyond PHP_INT_MAX into floats.
        q.values.emplace_back(static_cast<double>(v.get_uint64()));
        break;
      case boost::json::kind::double_:
        q.values.emplace_back(v.get_double());
        break;
      case boost::json::kind::string:
        q.values.emplace_back(std::string(v.get_string()));
        break;
      case boost::json::kind::array:
      case boost::json::kind::object:
        error = "Invalid query value for " + method_name + ": arrays are not supported";
        return std::nullopt;
    }
  }
  if (q.method == Query::Method::select) {
    const bool select_all = q.values.size() == 1 &&
                            std::holds_alternative<std::string>(q.values[0]) &&
                            std::get<std::string>(q.values[0]) == "*";
    if (!select_all) {
      error =
          "Only select(\"*\") is allowed in Realtime queries. select(\"*\") means \"listen to all "
          "events\".";
      return std::nullopt;
    }
  }
  return q;
}

}  // namespace

std::optional<Query> parse_query_json(std::string_view json, std::string& error) {
  error.clear();
  return parse_query_text(json, error, 0);
}

}  // namespace sluice::emulator
