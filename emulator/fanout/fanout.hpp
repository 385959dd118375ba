#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <boost/json/object.hpp>

#include "core/query.hpp"

// What an Appwrite server publishes for a change, and who may receive it: the rules of
// Appwrite's Event::generateEvents, Realtime::fromPayload, convertChannels and the role
// checks of getSubscribers (src/Appwrite/Messaging/Adapter/Realtime.php), as plain functions.
// Used by appwrite-emulator; no sockets, no state.
namespace sluice::emulator {

enum class Profile {
  v1_8,  // Appwrite 1.8.x: URL subscriptions only, no subscription ids
  v1_9,  // Appwrite 1.9.6: URL and message subscriptions, action-suffixed channels
  main,  // Appwrite's main branch after 1.9.6: as 1.9, plus ?jwt= and the newer execution shape
};

// Whether `profile` has what Appwrite 1.9 brought (subscription ids, message subscriptions,
// tablesdb events); true for every profile after 1.8.
constexpr bool at_least_1_9(Profile profile) {
  return profile != Profile::v1_8;
}

// A project as the fan-out sees it: its id, and its owner team (the `teamId` of Appwrite's
// project document), the only role that receives `reports` events.
struct Project {
  std::string id;
  std::string owner_team;
};

struct Fanout {
  std::vector<std::string> events;    // in Appwrite's order
  std::vector<std::string> channels;  // in Appwrite's order
  std::vector<std::string> roles;     // roles allowed to read: "any", "users", "user:U", …
  bool permissions_changed = false;   // team and membership changes
};

// Computes what `profile` publishes for an event pattern such as
// "databases.[databaseId].tables.[tableId].rows.[rowId].update". `params` maps placeholder
// names to values (aliases such as collectionId/tableId and documentId/rowId are filled in
// when only one is given). `database_type` is "legacy", "tablesdb", "documentsdb" or
// "vectorsdb" and matters only for databases events. `read` is the resource's read roles
// from the publish request. On an unknown or malformed pattern returns an error message.
// Events Appwrite publishes only to the `console` project (schema changes, deployments, …)
// and executions nobody may read come back with events but no channels; an empty `roles`
// means Appwrite would not publish at all. `payload` is the resource as published: Appwrite
// takes an execution's function from it (`functionId` up to 1.9.6, `resourceId` on main), so
// an execution whose payload lacks that field is an error. Pure: safe to call from any thread.
std::variant<Fanout, std::string> compute_fanout(Profile profile, std::string_view pattern,
                                                 const std::map<std::string, std::string>& params,
                                                 std::string_view database_type,
                                                 const std::vector<std::string>& read,
                                                 const Project& project,
                                                 const boost::json::object& payload);

// The resource family whose events Appwrite's fan-out under `profile` publishes on `channel`:
// "account", "teams", "memberships", "documents" (rows too), "files", "executions", "reports" or
// "presences"; empty when no event ever gives that channel. Answered from compute_fanout itself:
// every event of each family, with every action, its ids standing for any segment. A channel
// with a literal id (`buckets.avatars.files`) matches; wildcards are not channels and never
// match. The console-only channels of executions (`console`, `projects.<id>`) answer
// "executions" as compute_fanout emits them. Pure: safe to call from any thread.
std::string channel_family(Profile profile, std::string_view channel);

struct User {
  std::string id;
  std::string email;
  std::string password;
  std::string name;
  bool email_verified = true;
  std::vector<std::string> teams;  // confirmed memberships
  std::vector<std::string> labels;
};

// The roles a connection holds (§7): guests get {"guests"}; never "any". A user gets
// user:U, users, user:U/(un)verified, users/(un)verified, team:T per team, label:L per label;
// Appwrite's member:<membershipId> and team:T/<role> are not modelled (User has no such data).
std::vector<std::string> connection_roles(const User* user);

// Whether a connection with `connection_roles` may receive an event readable by `event_roles`.
bool may_receive(const std::vector<std::string>& connection_roles,
                 const std::vector<std::string>& event_roles);

// Appwrite's convertChannels for `profile` (§6.4): account channel rewriting.
std::vector<std::string> convert_channels(Profile profile, const std::vector<std::string>& channels,
                                          const User* user);

// Parses one query string as Query::toString() writes it, e.g.
// {"method":"equal","attribute":"status","values":["paid"]}. Only the realtime methods are
// accepted (select only as select("*")). On error returns nullopt and sets `error`.
std::optional<Query> parse_query_json(std::string_view json, std::string& error);

}  // namespace sluice::emulator
