#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "daemon/recovery/backfill_plan.hpp"

// Lists one table, collection or bucket page by page with Appwrite's query syntax, as plain
// code: it writes each request's path and judges each answer; the runner does the I/O.
//
// Rows come in ($updatedAt, $id) order between the target's `from` and `until` (the run's
// start plus a margin: anything newer arrives live). Paging is by key, never by cursor: after
// the first page each request asks only for rows strictly after the last ($updatedAt, $id)
// taken. Appwrite's cursorAfter would position at the cursor row's current $updatedAt, so a
// row changed during the listing would make a cursor jump past rows not yet listed; a key does
// not move. A row changed during the listing moves to a later key: it is listed again there
// (still inside `until`) or arrives live, and every row's key only grows, so paging never
// skips a row and never loops, however many rows share one millisecond. Owned by the runner;
// not thread-safe.
namespace sluice::recovery {

// One query as Appwrite's SDKs write it (Query.toString(): JSON of method, attribute, values;
// absent members left out), e.g. {"method":"orderAsc","attribute":"$updatedAt"}.
std::string query_json(std::string_view method, std::string_view attribute,
                       std::optional<std::string> string_value,
                       std::optional<std::int64_t> number_value = std::nullopt);

// Rows strictly after (updated_at, id), as the SDK writes it:
// Query.or([Query.greaterThan("$updatedAt", T),
//           Query.and([Query.equal("$updatedAt", [T]), Query.greaterThan("$id", id)])]).
std::string after_key_query(Millis updated_at, std::string_view id);

// The largest page body accepted: a row is at most a few hundred KiB in Appwrite, and this
// bounds the memory of one page whatever the server sends.
inline constexpr std::size_t kMaxPageBytes = 32u << 20;

struct ListedRow {
  boost::json::object row;
  Millis updated_at{};
  Millis created_at{};
};

class Pager {
 public:
  Pager(Target target, Millis until, std::uint32_t page_size);

  // The next request, below the REST endpoint's base: "/tablesdb/D/tables/T/rows?queries…".
  std::string next_path() const;

  struct Outcome {
    std::vector<ListedRow> rows;  // new rows, in order; may be empty while not done()
    std::string error;            // set: the answer was refused (the same request is retried)
    // HTTP 429 or 503 with Retry-After: how long the server asked to wait.
    std::optional<std::chrono::seconds> retry_after;
  };
  Outcome on_response(unsigned status, std::string_view body,
                      std::optional<std::chrono::seconds> retry_after);

  bool done() const { return done_; }
  std::uint64_t pages() const { return pages_; }
  const Target& target() const { return target_; }

 private:
  std::string_view list_key() const;  // "rows", "documents" or "files"

  Target target_;
  Millis until_;
  std::uint32_t page_size_;
  std::optional<std::pair<Millis, std::string>> last_;  // the key of the last row taken
  bool done_ = false;
  int stalled_ = 0;  // pages in a row that brought no new row
  std::uint64_t pages_ = 0;
};

// Discovery for broad channels (an api_key may list them): the databases, the tables or
// collections of one, or the buckets, `kDiscoveryPage` at a time by cursor.
inline constexpr std::uint32_t kDiscoveryPage = 100;
struct Listed {
  std::string id;
  std::string type;  // a database's `type` ("legacy" when absent); "" otherwise
};
// `base` is "/databases", "/tablesdb/D/tables", "/databases/D/collections" or
// "/storage/buckets"; `cursor` the last id of the previous page.
std::string discovery_path(std::string_view base, const std::optional<std::string>& cursor);
// The ids of one answer's `key` array ("databases", "tables", "collections", "buckets"), or an
// error with its cause.
struct DiscoveryPage {
  std::vector<Listed> items;
  std::string error;
};
DiscoveryPage parse_discovery(unsigned status, std::string_view body, std::string_view key);

}  // namespace sluice::recovery
