#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "core/json.hpp"

namespace sluice {

// One condition of Appwrite's realtime query vocabulary (Query::toString() in Appwrite's SDKs).
// Built by the config loader from a route's `where` list and by the emulator from subscription
// queries, evaluated against an event payload by matches(). Plain data: copy freely.
struct Query {
  enum class Method {
    equal,
    not_equal,
    less_than,
    less_than_equal,
    greater_than,
    greater_than_equal,
    is_null,
    is_not_null,
    and_,
    or_,
    select,  // only select("*"), which matches everything
  };
  using Value = std::variant<std::nullptr_t, bool, std::int64_t, double, std::string>;

  Method method = Method::equal;
  std::string attribute;       // dotted path into the payload; empty for and/or/select
  std::vector<Value> values;   // the compared values; empty for is_null/is_not_null/and/or
  std::vector<Query> queries;  // the children of and/or
};

// Appwrite's wire name of a method ("equal", "notEqual", …) and back.
std::string_view method_name(Query::Method method);
bool parse_method(std::string_view name, Query::Method& method);

// Whether `query` holds for the JSON object `payload`, with Appwrite's realtime semantics.
bool matches(const Query& query, JsonBytes payload);

// Whether every query holds (an empty list matches everything).
bool matches_all(const std::vector<Query>& queries, JsonBytes payload);

// The payload lookups of one event, shared by every query evaluated on it: when many routes
// listen on an event's channel, each attribute is read out of the payload once instead of once
// per condition. Keys are views of the queries' attributes, so the queries must outlive the
// cache's current event; clear() before the next event (capacity is kept).
class PayloadLookups {
 public:
  const JsonValue& get(JsonBytes payload, std::string_view path);
  void clear() { entries_.clear(); }
  std::size_t size() const { return entries_.size(); }

 private:
  std::vector<std::pair<std::string_view, JsonValue>> entries_;  // few distinct attributes
};

// matches_all() reading attributes through `lookups` (which must be for this payload).
bool matches_all(const std::vector<Query>& queries, JsonBytes payload, PayloadLookups& lookups);

// Identity keys, for indexing `equal` conditions: a payload value and a query value are `===`
// (what `equal` tests) exactly when both have a key and the keys are equal. The key carries the
// PHP type, so the int 100, the float 100.0 and the string "100" all differ. Sets `key` and
// returns true, or returns false for a value that is `===` to nothing a query can hold
// (a missing attribute, an array or object, NaN).
bool identity_key(const JsonValue& value, std::string& key);
bool identity_key(const Query::Value& value, std::string& key);

}  // namespace sluice
