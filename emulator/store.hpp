#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

// What the emulated server holds: the latest version of every row, document and file that
// POST /_emulator/publish created, updated or deleted, so that Appwrite's list endpoints
// (rest_list.hpp) can answer as a real server would after the same changes.
namespace sluice::emulator {

// An instant in microseconds since the epoch, from Appwrite's datetime text
// (2026-08-21T12:00:00.123+00:00) or any ISO 8601 form a query may carry ("Z", another
// offset, no fraction, a date alone); nullopt when the text is not a datetime.
std::optional<std::int64_t> parse_instant(std::string_view text);

// One row, document or file in its latest version.
struct StoredItem {
  boost::json::object payload;    // as published (with `$id`, `$createdAt`, `$updatedAt`)
  std::vector<std::string> read;  // the roles that may read it, as the realtime fan-out
  std::uint64_t sequence = 0;     // creation order: Appwrite's `$sequence`, the last tie-break
  std::optional<std::int64_t> created_at;  // `$createdAt` and `$updatedAt` parsed, so that
  std::optional<std::int64_t> updated_at;  // comparisons and ordering compare instants
};

// A table (or collection: the same thing in Appwrite) or a bucket, with its items by id.
struct Container {
  std::string created_at;  // when its first item arrived, Appwrite's datetime text
  std::string updated_at;  // when an item last changed
  std::map<std::string, StoredItem, std::less<>> items;
  // Every top-level attribute an item ever had: the schema queries are checked against.
  std::set<std::string, std::less<>> attributes;
};

struct StoredDatabase {
  std::string type;  // "tablesdb", "legacy", … as the publish's `database_type` said
  std::string created_at;
  std::string updated_at;
  std::map<std::string, Container, std::less<>> tables;
};

struct ProjectStore {
  std::map<std::string, StoredDatabase, std::less<>> databases;
  std::map<std::string, Container, std::less<>> buckets;
};

// A publish as the store sees it: which resource, what happened, and the payload.
struct StoreChange {
  enum class Kind { row, file };
  Kind kind = Kind::row;
  std::string parent;     // database id (rows) or bucket id (files)
  std::string container;  // table id (rows); empty for files
  std::string id;         // row or file id
  bool remove = false;    // a delete
};

// Which row or file a publish of `pattern` (e.g. "databases.[databaseId].tables.[tableId].rows.
// [rowId].update") with `params` changes; nullopt for every other event (account, teams, …,
// wildcard ids, or an action other than create, update, upsert and delete). The id comes from
// the pattern, else from the payload's `$id`.
std::optional<StoreChange> store_change_of(std::string_view pattern,
                                           const std::map<std::string, std::string>& params,
                                           const boost::json::object& payload);

// The emulator's data, keyed by project. Owned by the Engine; used only on the io_context
// thread, like everything in the emulator.
class Store {
 public:
  // Stores `payload` as the latest version of the changed resource (a delete removes it).
  // Databases, tables and buckets come into existence with their first item. A payload without
  // `$id`, `$createdAt` or `$updatedAt` gets them (the timestamps from `now`, Appwrite's text),
  // as Appwrite's models always carry them.
  void apply(const std::string& project, const StoreChange& change, std::string_view database_type,
             const boost::json::object& payload, const std::vector<std::string>& read,
             std::string_view now);

  const ProjectStore* project(std::string_view id) const;

 private:
  std::map<std::string, ProjectStore, std::less<>> projects_;
  std::uint64_t last_sequence_ = 0;
};

}  // namespace sluice::emulator
