#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "emulator/engine.hpp"
#include "emulator/store.hpp"

// Appwrite's list (and get) endpoints over the emulator's Store: databases, tables and
// collections, rows and documents, buckets and files, with Appwrite's query JSON, cursors,
// `total`, read permissions and error bodies, as plain functions the Engine calls.
namespace sluice::emulator {

// Who asks. `key`: a valid X-Appwrite-Key, which reads everything and alone may list
// databases, tables and buckets; otherwise `roles` (connection_roles of the user, or of a
// guest) decide which rows and files are visible.
struct ListCaller {
  bool key = false;
  std::vector<std::string> roles;
  std::string who;  // "User (role: guests)" or "<email> (role: users)", for scope errors
};

// Appwrite's `total` cap: it counts at most this many matches (APP_LIMIT_COUNT).
inline constexpr std::size_t kListCountLimit = 5000;
// The page size when no limit() query is given (APP_LIMIT_LIST_DEFAULT).
inline constexpr std::int64_t kListDefaultLimit = 25;

// Answers GET `path` (under /v1: "/tablesdb/…", "/databases/…", "/storage/buckets…") with the
// request's decoded query `params`; nullopt when `path` is none of the list endpoints.
// `store` is the project's data (nullptr: nothing was published into it yet).
std::optional<HttpAnswer> serve_list(const ProjectStore* store, std::string_view path,
                                     const std::vector<std::pair<std::string, std::string>>& params,
                                     const ListCaller& caller, std::string_view version);

}  // namespace sluice::emulator
