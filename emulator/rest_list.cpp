#include "emulator/rest_list.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <functional>
#include <limits>
#include <set>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace sluice::emulator {

namespace json = boost::json;

namespace {

// What a list endpoint serves, which decides its envelope key, its error wording and how its
// queries are validated.
enum class Family { rows, documents, databases, tables, collections, buckets, files };

const char* envelope_key(Family f) {
  switch (f) {
    case Family::rows:
      return "rows";
    case Family::documents:
      return "documents";
    case Family::databases:
      return "databases";
    case Family::tables:
      return "tables";
    case Family::collections:
      return "collections";
    case Family::buckets:
      return "buckets";
    case Family::files:
      return "files";
  }
  return "";
}

// The cursor-not-found message's noun (Appwrite's ucfirst of its context).
const char* noun(Family f) {
  switch (f) {
    case Family::rows:
      return "Row";
    case Family::documents:
      return "Document";
    case Family::databases:
      return "Database";
    case Family::tables:
      return "Table";
    case Family::collections:
      return "Collection";
    case Family::buckets:
      return "Bucket";
    case Family::files:
      return "File";
  }
  return "";
}

// Rows and documents take their queries as plain strings and validate them in the database
// layer (general_query_invalid); the other lists validate them as a request parameter, which
// Appwrite reports as general_argument_invalid with the parameter's name in front.
bool param_validated(Family f) {
  return f != Family::rows && f != Family::documents;
}

struct Failure {
  unsigned status;
  std::string type;
  std::string message;
};

HttpAnswer error_answer(const Failure& f, std::string_view version) {
  json::object body;
  body["message"] = f.message;
  body["code"] = f.status;
  body["type"] = f.type;
  body["version"] = version;
  return HttpAnswer{f.status, json::serialize(body), {}};
}

// Every method utopia-php/database's Query::isMethod knows; those the emulator evaluates are
// handled below, the rest are refused with a message that says so.
const std::set<std::string, std::less<>> kKnownMethods = {"equal",
                                                          "notEqual",
                                                          "lessThan",
                                                          "lessThanEqual",
                                                          "greaterThan",
                                                          "greaterThanEqual",
                                                          "contains",
                                                          "containsAny",
                                                          "containsAll",
                                                          "notContains",
                                                          "search",
                                                          "notSearch",
                                                          "isNull",
                                                          "isNotNull",
                                                          "between",
                                                          "notBetween",
                                                          "startsWith",
                                                          "notStartsWith",
                                                          "endsWith",
                                                          "notEndsWith",
                                                          "select",
                                                          "orderAsc",
                                                          "orderDesc",
                                                          "orderRandom",
                                                          "limit",
                                                          "offset",
                                                          "cursorAfter",
                                                          "cursorBefore",
                                                          "and",
                                                          "or",
                                                          "elemMatch",
                                                          "regex",
                                                          "exists",
                                                          "notExists",
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
                                                          "vectorDot",
                                                          "vectorCosine",
                                                          "vectorEuclidean"};

const std::set<std::string, std::less<>> kFilterMethods = {
    "equal",    "notEqual",    "lessThan", "lessThanEqual", "greaterThan", "greaterThanEqual",
    "isNull",   "isNotNull",   "between",  "notBetween",    "startsWith",  "notStartsWith",
    "endsWith", "notEndsWith", "contains", "notContains",   "and",         "or"};

struct Query {
  std::string method;
  std::string attribute;
  json::array values;
  std::vector<Query> nested;  // and / or
};

const char* php_type(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return "NULL";
    case json::kind::bool_:
      return "boolean";
    case json::kind::int64:
    case json::kind::uint64:
      return "integer";
    case json::kind::double_:
      return "double";
    case json::kind::string:
      return "string";
    default:
      return "array";
  }
}

// Query::parseQuery: the same checks in the same order, the same messages.
std::optional<Query> parse_query_object(const json::value& v, std::string& error) {
  if (!v.is_object()) {
    error = std::string("Invalid query. Must be an array, got ") + php_type(v);
    return std::nullopt;
  }
  const auto& o = v.as_object();
  Query q;
  if (const auto* m = o.if_contains("method")) {
    if (!m->is_string()) {
      error = std::string("Invalid query method. Must be a string, got ") + php_type(*m);
      return std::nullopt;
    }
    q.method = std::string(m->as_string());
  }
  if (!kKnownMethods.contains(q.method)) {
    error = "Invalid query method: " + q.method;
    return std::nullopt;
  }
  if (const auto* a = o.if_contains("attribute")) {
    if (!a->is_string()) {
      error = std::string("Invalid query attribute. Must be a string, got ") + php_type(*a);
      return std::nullopt;
    }
    q.attribute = std::string(a->as_string());
  }
  if (const auto* values = o.if_contains("values")) {
    if (!values->is_array()) {
      error = std::string("Invalid query values. Must be an array, got ") + php_type(*values);
      return std::nullopt;
    }
    q.values = values->as_array();
  }
  if (q.method == "and" || q.method == "or") {
    for (const auto& inner : q.values) {
      auto parsed = parse_query_object(inner, error);
      if (!parsed)
        return std::nullopt;
      q.nested.push_back(std::move(*parsed));
    }
  }
  return q;
}

std::optional<Query> parse_query(std::string_view text, std::string& error) {
  json::error_code ec;
  const auto v = json::parse(text, ec);
  if (ec) {
    error = "Invalid query: Syntax error";
    return std::nullopt;
  }
  return parse_query_object(v, error);
}

std::string ucfirst(std::string s) {
  if (!s.empty())
    s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  return s;
}

// PHP's number_format of PHP_INT_MAX, as Range's description prints it.
constexpr std::string_view kIntMaxText = "9,223,372,036,854,775,807";

// utopia's Numeric, then Range(min, PHP_INT_MAX): a JSON number or numeric string.
std::optional<std::int64_t> integer_value(const json::array& values, std::int64_t min,
                                          std::string_view what, std::string& error) {
  const std::string range = "Invalid " + std::string(what) +
                            ": Value must be a valid range between " + std::to_string(min) +
                            " and " + std::string(kIntMaxText);
  if (values.empty()) {
    error = "Invalid " + std::string(what) + ": Value must be a valid number";
    return std::nullopt;
  }
  const auto& v = values.front();
  std::optional<double> number;
  if (v.is_int64()) {
    if (v.as_int64() < min) {
      error = range;
      return std::nullopt;
    }
    return v.as_int64();
  }
  if (v.is_uint64() || v.is_double()) {
    number = v.to_number<double>();
  } else if (v.is_string()) {
    const std::string text(v.as_string());
    char* end = nullptr;
    const double d = std::strtod(text.c_str(), &end);
    if (!text.empty() && end == text.c_str() + text.size())
      number = d;
  }
  if (!number) {
    error = "Invalid " + std::string(what) + ": Value must be a valid number";
    return std::nullopt;
  }
  if (*number < static_cast<double>(min) || *number >= 9.2233720368547758e18 ||
      *number != static_cast<double>(static_cast<std::int64_t>(*number))) {
    error = range;
    return std::nullopt;
  }
  return static_cast<std::int64_t>(*number);
}

// One listed thing: its JSON model, creation order, and parsed timestamps.
struct Entry {
  const json::object* model = nullptr;
  std::uint64_t sequence = 0;
  std::optional<std::int64_t> created_at;
  std::optional<std::int64_t> updated_at;
};

bool is_datetime_attribute(std::string_view attribute) {
  return attribute == "$createdAt" || attribute == "$updatedAt";
}

// The entry's value of `attribute` as a comparable: numbers as double, instants for the
// datetime attributes, strings, booleans; nullopt for null or missing.
struct Scalar {
  enum class Kind { number, text, boolean, other } kind = Kind::other;
  double number = 0;
  std::string_view text;
  bool boolean = false;
};

std::optional<Scalar> scalar_of(const json::value& v) {
  Scalar s;
  if (v.is_number()) {
    s.kind = Scalar::Kind::number;
    s.number = v.to_number<double>();
  } else if (v.is_string()) {
    s.kind = Scalar::Kind::text;
    s.text = v.as_string();
  } else if (v.is_bool()) {
    s.kind = Scalar::Kind::boolean;
    s.boolean = v.as_bool();
  } else if (v.is_null()) {
    return std::nullopt;
  }
  return s;
}

std::optional<Scalar> entry_value(const Entry& e, std::string_view attribute) {
  if (attribute == "$sequence") {
    Scalar s;
    s.kind = Scalar::Kind::number;
    s.number = static_cast<double>(e.sequence);
    return s;
  }
  if (is_datetime_attribute(attribute)) {
    const auto& instant = attribute == "$createdAt" ? e.created_at : e.updated_at;
    if (!instant)
      return std::nullopt;
    Scalar s;
    s.kind = Scalar::Kind::number;
    s.number = static_cast<double>(*instant);
    return s;
  }
  const auto* v = e.model->if_contains(attribute);
  if (v == nullptr)
    return std::nullopt;
  return scalar_of(*v);
}

// A query value as a comparable for `attribute`: datetime text becomes its instant.
std::optional<Scalar> query_value(const json::value& v, std::string_view attribute) {
  if (is_datetime_attribute(attribute) && v.is_string()) {
    const auto instant = parse_instant(v.as_string());
    if (!instant)
      return std::nullopt;
    Scalar s;
    s.kind = Scalar::Kind::number;
    s.number = static_cast<double>(*instant);
    return s;
  }
  return scalar_of(v);
}

// <0, 0, >0; nullopt when the kinds differ (such a pair never matches a comparison).
std::optional<int> compare(const Scalar& a, const Scalar& b) {
  if (a.kind != b.kind)
    return std::nullopt;
  switch (a.kind) {
    case Scalar::Kind::number:
      return a.number < b.number ? -1 : (a.number > b.number ? 1 : 0);
    case Scalar::Kind::text:
      return a.text.compare(b.text) < 0 ? -1 : (a.text == b.text ? 0 : 1);
    case Scalar::Kind::boolean:
      return static_cast<int>(a.boolean) - static_cast<int>(b.boolean);
    case Scalar::Kind::other:
      return std::nullopt;
  }
  return std::nullopt;
}

bool matches(const Entry& e, const Query& q) {
  if (q.method == "and") {
    return std::all_of(q.nested.begin(), q.nested.end(),
                       [&](const Query& inner) { return matches(e, inner); });
  }
  if (q.method == "or") {
    return std::any_of(q.nested.begin(), q.nested.end(),
                       [&](const Query& inner) { return matches(e, inner); });
  }
  const auto value = entry_value(e, q.attribute);
  if (q.method == "isNull")
    return !value;
  if (q.method == "isNotNull")
    return value.has_value();
  if (q.method == "contains" || q.method == "notContains") {
    const auto* raw = e.model->if_contains(q.attribute);
    bool found = false;
    for (const auto& wanted : q.values) {
      if (raw != nullptr && raw->is_array()) {
        found = found || std::find(raw->as_array().begin(), raw->as_array().end(), wanted) !=
                             raw->as_array().end();
      } else if (raw != nullptr && raw->is_string() && wanted.is_string()) {
        found = found || std::string_view(raw->as_string()).find(wanted.as_string()) !=
                             std::string_view::npos;
      }
    }
    return q.method == "contains" ? found : !found;
  }
  if (!value)
    return q.method == "notEqual" || q.method == "notBetween" || q.method == "notStartsWith" ||
           q.method == "notEndsWith";
  const auto against = [&](const json::value& v) { return query_value(v, q.attribute); };
  if (q.method == "equal" || q.method == "notEqual") {
    const bool any = std::any_of(q.values.begin(), q.values.end(), [&](const json::value& v) {
      const auto other = against(v);
      return other && compare(*value, *other) == 0;
    });
    return q.method == "equal" ? any : !any;
  }
  if (q.method == "between" || q.method == "notBetween") {
    const auto low = against(q.values[0]);
    const auto high = against(q.values[1]);
    const auto c1 = low ? compare(*value, *low) : std::nullopt;
    const auto c2 = high ? compare(*value, *high) : std::nullopt;
    const bool inside = c1 && c2 && *c1 >= 0 && *c2 <= 0;
    return q.method == "between" ? inside : !inside;
  }
  if (q.method == "startsWith" || q.method == "notStartsWith" || q.method == "endsWith" ||
      q.method == "notEndsWith") {
    const bool starts = q.method.ends_with("tartsWith");
    bool hit = false;
    if (value->kind == Scalar::Kind::text && q.values[0].is_string()) {
      const std::string_view wanted = q.values[0].as_string();
      hit = starts ? value->text.starts_with(wanted) : value->text.ends_with(wanted);
    }
    return q.method.starts_with("not") ? !hit : hit;
  }
  const auto other = against(q.values[0]);
  const auto c = other ? compare(*value, *other) : std::nullopt;
  if (!c)
    return false;
  if (q.method == "lessThan")
    return *c < 0;
  if (q.method == "lessThanEqual")
    return *c <= 0;
  if (q.method == "greaterThan")
    return *c > 0;
  return *c >= 0;  // greaterThanEqual
}

struct Order {
  std::string attribute;  // empty: by $sequence
  bool descending = false;
};

// Orders two entries by `orders`, then by creation order in the direction of the last order,
// as utopia-php/database appends $sequence so that cursors always have a strict order. A
// missing value sorts first, as NULL does in MariaDB.
bool before(const Entry& a, const Entry& b, const std::vector<Order>& orders) {
  for (const auto& order : orders) {
    if (order.attribute.empty())
      continue;
    const auto x = entry_value(a, order.attribute);
    const auto y = entry_value(b, order.attribute);
    int c = 0;
    if (!x || !y) {
      c = static_cast<int>(x.has_value()) - static_cast<int>(y.has_value());
    } else if (const auto r = compare(*x, *y)) {
      c = *r;
    } else {
      c = static_cast<int>(x->kind) - static_cast<int>(y->kind);
    }
    if (c != 0)
      return order.descending ? c > 0 : c < 0;
  }
  const bool descending = !orders.empty() && orders.back().descending;
  return descending ? a.sequence > b.sequence : a.sequence < b.sequence;
}

// Why a query is invalid for `schema` (utopia's Documents / Appwrite's Base validators), or
// empty. `allow_select`: only rows and documents take select().
std::string validate(const Query& q, const std::set<std::string, std::less<>>& schema,
                     bool allow_select) {
  const auto known = [&](std::string_view attribute) { return schema.contains(attribute); };
  if (kFilterMethods.contains(q.method)) {
    if (q.method == "and" || q.method == "or") {
      if (q.nested.size() < 2)
        return ucfirst(q.method) + " queries require at least two queries";
      for (const auto& inner : q.nested) {
        if (!kFilterMethods.contains(inner.method))
          return ucfirst(q.method) + " queries can only contain filter queries";
        if (auto why = validate(inner, schema, allow_select); !why.empty())
          return why;
      }
      return {};
    }
    if (!known(q.attribute))
      return "Attribute not found in schema: " + q.attribute;
    if (q.method == "isNull" || q.method == "isNotNull")
      return {};
    if (q.method == "between" || q.method == "notBetween") {
      if (q.values.size() != 2)
        return ucfirst(q.method) + " queries require exactly two values.";
    } else if (q.method == "lessThan" || q.method == "lessThanEqual" || q.method == "greaterThan" ||
               q.method == "greaterThanEqual" || q.method == "startsWith" ||
               q.method == "notStartsWith" || q.method == "endsWith" || q.method == "notEndsWith") {
      if (q.values.size() != 1)
        return ucfirst(q.method) + " queries require exactly one value.";
    } else if (q.values.empty()) {
      return ucfirst(q.method) + " queries require at least one value.";
    }
    if (is_datetime_attribute(q.attribute)) {
      for (const auto& v : q.values) {
        if (!v.is_string() || !parse_instant(v.as_string()))
          return "Query value is invalid for attribute \"" + q.attribute + "\"";
      }
    }
    return {};
  }
  if (q.method == "orderAsc" || q.method == "orderDesc") {
    if (!q.attribute.empty() && !known(q.attribute))
      return "Attribute not found in schema: " + q.attribute;
    return {};
  }
  if (q.method == "select") {
    if (!allow_select)
      return "Invalid query method: select";
    if (q.values.empty())
      return "No attributes selected";
    for (const auto& v : q.values) {
      if (!v.is_string())
        return std::string("Attribute selection must be a string, got ") + php_type(v);
      const std::string_view name = v.as_string();
      if (name != "*" && !known(name))
        return "Attribute not found in schema: " + std::string(name);
    }
    return {};
  }
  if (q.method == "limit" || q.method == "offset" || q.method == "cursorAfter" ||
      q.method == "cursorBefore") {
    return {};  // checked where they are read
  }
  return "the emulator does not implement " + q.method + " queries";
}

struct Listing {
  Family family;
  std::vector<Entry> entries;  // what the caller may see
  // Finds a cursor's entry among everything, readable or not (Appwrite looks the cursor up
  // without authorization); empty: among `entries`.
  std::function<const Entry*(std::string_view)> find_any;
  std::set<std::string, std::less<>> schema;
  // Turns a listed model into what the endpoint answers (renames, select).
  std::function<json::object(const json::object&)> shape;
};

std::variant<json::object, Failure> run(
    Listing& listing, const std::vector<std::pair<std::string, std::string>>& params) {
  const bool as_param = param_validated(listing.family);
  const auto invalid = [&](const std::string& message) {
    if (as_param)
      return Failure{400, "general_argument_invalid", "Invalid `queries` param: " + message};
    return Failure{400, "general_query_invalid", message};
  };
  std::vector<Query> queries;
  bool include_total = true;
  for (const auto& [key, value] : params) {
    if (key == "total") {
      if (value == "false" || value == "0") {
        include_total = false;
      } else if (value != "true" && value != "1") {
        return Failure{400, "general_argument_invalid",
                       "Invalid `total` param: Value must be a valid boolean"};
      }
      continue;
    }
    if (key != "queries" && key != "queries[]" &&
        !(key.starts_with("queries[") && key.ends_with("]")))
      continue;
    std::string error;
    auto q = parse_query(value, error);
    if (!q)
      return invalid(as_param ? "Invalid query: " + error : error);
    queries.push_back(std::move(*q));
  }
  if (queries.size() > 100) {
    return Failure{400, "general_argument_invalid",
                   "Invalid `queries` param: Value must a valid array no longer than 100 items "
                   "and Value must be a valid string and no longer than 4096 chars"};
  }

  std::vector<const Query*> filters;
  std::vector<Order> orders;
  std::optional<std::int64_t> limit;
  std::int64_t offset = 0;
  std::optional<std::string> cursor;
  bool cursor_after = true;
  std::optional<std::vector<std::string>> selected;
  const bool allow_select = !as_param;
  for (const auto& q : queries) {
    if (auto why = validate(q, listing.schema, allow_select); !why.empty())
      return invalid("Invalid query: " + why);
    if (kFilterMethods.contains(q.method)) {
      filters.push_back(&q);
    } else if (q.method == "orderAsc" || q.method == "orderDesc") {
      orders.push_back(Order{q.attribute, q.method == "orderDesc"});
    } else if (q.method == "limit") {
      std::string error;
      const auto n = integer_value(q.values, 1, "limit", error);
      if (!n)
        return invalid("Invalid query: " + error);
      if (!limit)
        limit = n;
    } else if (q.method == "offset") {
      std::string error;
      const auto n = integer_value(q.values, 0, "offset", error);
      if (!n)
        return invalid("Invalid query: " + error);
      offset = *n;
    } else if (q.method == "cursorAfter" || q.method == "cursorBefore") {
      if (q.values.empty() || !q.values.front().is_string() ||
          !valid_custom_id(q.values.front().as_string())) {
        return invalid(
            "Invalid query: Invalid cursor: UID must contain at most 36 chars. Valid chars are "
            "a-z, A-Z, 0-9, and underscore. Can't start with a leading underscore");
      }
      if (!cursor) {
        cursor = std::string(q.values.front().as_string());
        cursor_after = q.method == "cursorAfter";
      }
    } else if (q.method == "select") {
      if (!selected)
        selected.emplace();
      for (const auto& v : q.values)
        selected->emplace_back(v.as_string());
    }
  }

  const Entry* cursor_entry = nullptr;
  if (cursor) {
    if (listing.find_any) {
      cursor_entry = listing.find_any(*cursor);
    } else {
      for (const auto& e : listing.entries) {
        const auto* v = e.model->if_contains("$id");
        if (v != nullptr && v->is_string() && v->as_string() == *cursor)
          cursor_entry = &e;
      }
    }
    if (cursor_entry == nullptr) {
      return Failure{400, "general_cursor_not_found",
                     std::string(noun(listing.family)) + " '" + *cursor +
                         "' for the 'cursor' value not found."};
    }
  }

  std::vector<const Entry*> matched;
  for (const auto& e : listing.entries) {
    if (std::all_of(filters.begin(), filters.end(), [&](const Query* q) { return matches(e, *q); }))
      matched.push_back(&e);
  }
  const auto total = include_total ? std::min(matched.size(), kListCountLimit) : 0;
  const auto less = [&](const Entry* a, const Entry* b) { return before(*a, *b, orders); };
  const auto take = static_cast<std::size_t>(limit.value_or(kListDefaultLimit));
  const auto skip = static_cast<std::size_t>(offset);
  const bool backwards = cursor_entry != nullptr && !cursor_after;
  // Only the entries past the cursor count, and only the first skip + take of them in the
  // listing's direction need ordering: a page costs O(n + k log k), not a full sort.
  if (cursor_entry != nullptr) {
    std::erase_if(matched, [&](const Entry* e) {
      return backwards ? !less(e, cursor_entry) : !less(cursor_entry, e);
    });
  }
  const auto wanted =
      std::min(matched.size(), skip > matched.size() ? matched.size() : skip + take);
  const auto in_direction = [&](const Entry* a, const Entry* b) {
    return backwards ? less(b, a) : less(a, b);
  };
  std::partial_sort(matched.begin(), matched.begin() + static_cast<std::ptrdiff_t>(wanted),
                    matched.end(), in_direction);
  std::vector<const Entry*> page;
  if (skip < wanted) {
    page.assign(matched.begin() + static_cast<std::ptrdiff_t>(skip),
                matched.begin() + static_cast<std::ptrdiff_t>(wanted));
  }
  // cursorBefore walks backwards from the cursor but answers in the requested order.
  if (backwards)
    std::reverse(page.begin(), page.end());

  json::array items;
  items.reserve(page.size());
  for (const auto* e : page) {
    auto model = listing.shape(*e->model);
    if (selected && std::find(selected->begin(), selected->end(), "*") == selected->end()) {
      json::object kept;
      for (const auto& [key, value] : model) {
        if (key.starts_with("$") ||
            std::find(selected->begin(), selected->end(), key) != selected->end())
          kept[key] = value;
      }
      model = std::move(kept);
    }
    items.emplace_back(std::move(model));
  }
  json::object body;
  body["total"] = total;
  body[envelope_key(listing.family)] = std::move(items);
  return body;
}

Entry entry_of(const StoredItem& item) {
  return Entry{&item.payload, item.sequence, item.created_at, item.updated_at};
}

std::set<std::string, std::less<>> internal_schema() {
  return {"$id", "$createdAt", "$updatedAt", "$sequence"};
}

// The path's segments after the leading '/'.
std::vector<std::string_view> segments(std::string_view path) {
  std::vector<std::string_view> out;
  while (!path.empty()) {
    if (path.front() == '/') {
      path.remove_prefix(1);
      continue;
    }
    const auto slash = path.find('/');
    out.push_back(path.substr(0, slash));
    path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash);
  }
  return out;
}

bool visible(const ListCaller& caller, const StoredItem& item) {
  return caller.key || may_receive(caller.roles, item.read);
}

json::object database_model(std::string_view id, const StoredDatabase& db) {
  json::object o;
  o["$id"] = id;
  o["name"] = id;
  o["$createdAt"] = db.created_at;
  o["$updatedAt"] = db.updated_at;
  o["enabled"] = true;
  o["type"] = db.type;
  return o;
}

json::object table_model(std::string_view database, std::string_view id, const Container& c,
                         bool legacy) {
  json::object o;
  o["$id"] = id;
  o["$createdAt"] = c.created_at;
  o["$updatedAt"] = c.updated_at;
  o["$permissions"] = json::array{};
  o["databaseId"] = database;
  o["name"] = id;
  o["enabled"] = true;
  o[legacy ? "documentSecurity" : "rowSecurity"] = true;
  o[legacy ? "attributes" : "columns"] = json::array{};
  o["indexes"] = json::array{};
  return o;
}

json::object bucket_model(std::string_view id, const Container& c) {
  json::object o;
  o["$id"] = id;
  o["$createdAt"] = c.created_at;
  o["$updatedAt"] = c.updated_at;
  o["$permissions"] = json::array{};
  o["fileSecurity"] = true;
  o["name"] = id;
  o["enabled"] = true;
  o["maximumFileSize"] = 30000000;
  o["allowedFileExtensions"] = json::array{};
  o["compression"] = "none";
  o["encryption"] = true;
  o["antivirus"] = true;
  return o;
}

// A list of containers (databases, tables, buckets): their models, listed like items.
Listing container_listing(Family family, std::vector<json::object>& models,
                          std::set<std::string, std::less<>> allowed) {
  Listing listing{family, {}, {}, internal_schema(), [](const json::object& o) { return o; }};
  listing.schema.insert(allowed.begin(), allowed.end());
  std::uint64_t sequence = 0;
  for (const auto& m : models) {
    const auto instant = [&](std::string_view key) -> std::optional<std::int64_t> {
      const auto* v = m.if_contains(key);
      return v != nullptr && v->is_string() ? parse_instant(v->as_string()) : std::nullopt;
    };
    listing.entries.push_back(Entry{&m, ++sequence, instant("$createdAt"), instant("$updatedAt")});
  }
  return listing;
}

// A list of a container's items (a bucket's files, a table's rows): those the caller may read,
// with a cursor looked up among all of them (Appwrite finds a cursor without checking who may
// read it). The entry found lives in the lookup, so its pointer is valid as long as the listing.
Listing item_listing(Family family, const Container& container, const ListCaller& caller) {
  Listing listing{family, {}, {}, internal_schema(), {}};
  listing.entries.reserve(container.items.size());
  for (const auto& [id, item] : container.items) {
    if (visible(caller, item))
      listing.entries.push_back(entry_of(item));
  }
  listing.find_any = [&items = container.items,
                      slot = Entry{}](std::string_view id) mutable -> const Entry* {
    const auto it = items.find(id);
    if (it == items.end())
      return nullptr;
    slot = entry_of(it->second);
    return &slot;
  };
  return listing;
}

HttpAnswer answer_of(std::variant<json::object, Failure> result, std::string_view version) {
  if (auto* f = std::get_if<Failure>(&result))
    return error_answer(*f, version);
  return HttpAnswer{200, json::serialize(std::get<json::object>(result)), {}};
}

}  // namespace

std::optional<HttpAnswer> serve_list(const ProjectStore* store, std::string_view path,
                                     const std::vector<std::pair<std::string, std::string>>& params,
                                     const ListCaller& caller, std::string_view version) {
  const auto parts = segments(path);
  if (parts.empty())
    return std::nullopt;
  const bool tablesdb = parts[0] == "tablesdb";
  const bool legacy = parts[0] == "databases";
  const bool storage = parts[0] == "storage" && parts.size() >= 2 && parts[1] == "buckets";
  if (!tablesdb && !legacy && !storage)
    return std::nullopt;
  static const ProjectStore empty;
  const ProjectStore& data = store != nullptr ? *store : empty;
  const auto missing_scope = [&](std::string_view scope) {
    return error_answer(Failure{401, "general_unauthorized_scope",
                                caller.who + " missing scopes ([\"" + std::string(scope) + "\"])"},
                        version);
  };

  if (storage) {
    if (parts.size() == 2) {
      if (!caller.key)
        return missing_scope("buckets.read");
      std::vector<json::object> models;
      for (const auto& [id, bucket] : data.buckets)
        models.push_back(bucket_model(id, bucket));
      auto listing = container_listing(Family::buckets, models,
                                       {"enabled", "name", "fileSecurity", "maximumFileSize",
                                        "encryption", "antivirus", "transformations"});
      return answer_of(run(listing, params), version);
    }
    if (parts.size() != 4 || parts[3] != "files")
      return std::nullopt;
    const auto bucket = data.buckets.find(parts[2]);
    if (bucket == data.buckets.end()) {
      return error_answer(Failure{404, "storage_bucket_not_found",
                                  "Storage bucket with the requested ID could not be found."},
                          version);
    }
    auto listing = item_listing(Family::files, bucket->second, caller);
    listing.schema.insert({"name", "folder", "signature", "mimeType", "sizeOriginal", "chunksTotal",
                           "chunksUploaded"});
    const std::string bucket_id(parts[2]);
    listing.shape = [&](const json::object& o) {
      json::object out = o;
      if (!out.contains("bucketId"))
        out["bucketId"] = bucket_id;
      return out;
    };
    return answer_of(run(listing, params), version);
  }

  // /tablesdb[/{D}[/tables[/{T}/rows]]] and /databases[/{D}[/collections[/{C}/documents]]]
  const std::string_view tables_word = tablesdb ? "tables" : "collections";
  const std::string_view rows_word = tablesdb ? "rows" : "documents";
  if (parts.size() == 1) {
    if (!caller.key)
      return missing_scope("databases.read");
    std::vector<json::object> models;
    for (const auto& [id, db] : data.databases) {
      if (db.type == "tablesdb" || db.type == "legacy")
        models.push_back(database_model(id, db));
    }
    auto listing = container_listing(Family::databases, models, {"name"});
    return answer_of(run(listing, params), version);
  }
  const bool known_shape = parts.size() == 2 || (parts.size() == 3 && parts[2] == tables_word) ||
                           (parts.size() == 5 && parts[2] == tables_word && parts[4] == rows_word);
  if (!known_shape)
    return std::nullopt;
  if (parts.size() <= 3 && !caller.key)
    return missing_scope(parts.size() == 2 ? "databases.read"
                                           : (tablesdb ? "tables.read" : "collections.read"));
  const auto db = data.databases.find(parts[1]);
  // Both API generations serve legacy and TablesDB databases; other types are not found.
  if (db == data.databases.end() ||
      (db->second.type != "tablesdb" && db->second.type != "legacy")) {
    return error_answer(Failure{404, "database_not_found",
                                "Database with the requested ID '" + std::string(parts[1]) +
                                    "' could not be found."},
                        version);
  }
  if (parts.size() == 2)
    return HttpAnswer{200, json::serialize(database_model(db->first, db->second)), {}};
  if (parts.size() == 3) {
    std::vector<json::object> models;
    for (const auto& [id, table] : db->second.tables)
      models.push_back(table_model(db->first, id, table, legacy));
    auto listing =
        container_listing(tablesdb ? Family::tables : Family::collections, models,
                          {"name", "enabled", tablesdb ? "rowSecurity" : "documentSecurity"});
    return answer_of(run(listing, params), version);
  }
  const auto table = db->second.tables.find(parts[3]);
  if (table == db->second.tables.end()) {
    return error_answer(
        Failure{404, tablesdb ? "table_not_found" : "collection_not_found",
                std::string(tablesdb ? "Table" : "Collection") + " with the requested ID '" +
                    std::string(parts[3]) + "' could not be found."},
        version);
  }
  auto listing = item_listing(tablesdb ? Family::rows : Family::documents, table->second, caller);
  for (const auto& attribute : table->second.attributes) {
    if (!attribute.starts_with("$"))
      listing.schema.insert(attribute);
  }
  const std::string database_id(db->first);
  const std::string table_id(table->first);
  // One store for both generations: a row listing names its table `$tableId`, a document
  // listing `$collectionId`, whichever the publish used.
  listing.shape = [&](const json::object& o) {
    json::object out = o;
    out.erase("$tableId");
    out.erase("$collectionId");
    out[tablesdb ? "$tableId" : "$collectionId"] = table_id;
    if (!out.contains("$databaseId"))
      out["$databaseId"] = database_id;
    return out;
  };
  return answer_of(run(listing, params), version);
}

}  // namespace sluice::emulator
