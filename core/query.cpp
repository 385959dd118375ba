#include "core/query.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string_view>

// Appwrite evaluates realtime queries in PHP (src/Appwrite/Utopia/Database/RuntimeQuery.php,
// evaluateFilter) over the json_decode()d payload. This file reproduces that evaluation:
//
// - The attribute must exist in the payload, otherwise every method is false, isNull and
//   notEqual included (array_key_exists guard). An explicit JSON null exists.
// - equal / notEqual use PHP's `===`: same type and same value. JSON numbers written without
//   '.', 'e' or 'E' are PHP ints, the others floats (json_decode's rule), and an int never
//   `===` a float: equal(total, [100]) does not match `"total": 100.0`. Query::Value keeps
//   the same distinction (int64_t = PHP int, double = PHP float).
// - lessThan & co. use PHP 8's loose comparison (zend_compare): int/float numerically;
//   string/string numerically when both are numeric strings, else byte-wise; number/string
//   numerically when the string is numeric, else the number's string form byte-wise; null
//   against a string compares "" with it; bool or null against anything else compares both
//   as booleans; an array or object is greater than any other value.
// - Every method except notEqual is true when ANY value holds; notEqual is true when NO value
//   is `===` the attribute.
// - and / or over children (empty and = true, empty or = false). A select("*") anywhere in a
//   top-level list matches everything (RuntimeQuery::filter); nested in and/or it is false.
//
// One deliberate extension: the attribute is a dotted path (`address.city`), where Appwrite
// only reads top-level keys; a literal top-level key containing a dot is therefore unreachable.
namespace sluice {
namespace {

// A PHP value as json_decode(…, true) would produce it. Objects and arrays only need their
// emptiness (for the boolean conversion) since they never compare equal to a scalar.
struct PhpValue {
  enum class Type { null, boolean, integer, floating, string, array };
  Type type = Type::null;
  bool boolean = false;
  std::int64_t integer = 0;
  double floating = 0;
  std::string_view string;
  bool empty_array = false;
};

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// PHP 8's is_numeric_string: optional surrounding whitespace, sign, digits with an optional
// fraction and exponent. Gives the value as an int when it is integral in form and fits.
std::optional<PhpValue> numeric_string(std::string_view s) {
  std::size_t b = 0;
  std::size_t e = s.size();
  while (b < e && is_space(s[b]))
    ++b;
  while (e > b && is_space(s[e - 1]))
    --e;
  const std::string_view t = s.substr(b, e - b);
  std::size_t i = 0;
  if (i < t.size() && (t[i] == '+' || t[i] == '-'))
    ++i;
  std::size_t digits = 0;
  while (i < t.size() && t[i] >= '0' && t[i] <= '9')
    ++i, ++digits;
  bool integral = true;
  if (i < t.size() && t[i] == '.') {
    integral = false;
    ++i;
    while (i < t.size() && t[i] >= '0' && t[i] <= '9')
      ++i, ++digits;
  }
  if (digits == 0)
    return std::nullopt;
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
    std::size_t j = i + 1;
    if (j < t.size() && (t[j] == '+' || t[j] == '-'))
      ++j;
    std::size_t exp_digits = 0;
    while (j < t.size() && t[j] >= '0' && t[j] <= '9')
      ++j, ++exp_digits;
    if (exp_digits > 0) {
      integral = false;
      i = j;
    }
  }
  if (i != t.size())
    return std::nullopt;
  PhpValue v;
  if (integral) {
    std::string_view digits_text = t;
    if (!digits_text.empty() && digits_text[0] == '+')
      digits_text.remove_prefix(1);
    std::int64_t n = 0;
    const auto [ptr, ec] =
        std::from_chars(digits_text.data(), digits_text.data() + digits_text.size(), n);
    if (ec == std::errc{} && ptr == digits_text.data() + digits_text.size()) {
      v.type = PhpValue::Type::integer;
      v.integer = n;
      return v;
    }
  }
  const std::string copy(t);
  v.type = PhpValue::Type::floating;
  v.floating = std::strtod(copy.c_str(), nullptr);
  return v;
}

// The payload side: a JsonValue from json_lookup, typed as json_decode would type it.
PhpValue from_json(const JsonValue& j) {
  PhpValue v;
  switch (j.type) {
    case JsonValue::Type::missing:
    case JsonValue::Type::null:
      v.type = PhpValue::Type::null;
      break;
    case JsonValue::Type::boolean:
      v.type = PhpValue::Type::boolean;
      v.boolean = j.boolean;
      break;
    case JsonValue::Type::number: {
      const bool floating = j.text.find_first_of(".eE") != std::string::npos;
      std::int64_t n = 0;
      const auto [ptr, ec] = std::from_chars(j.text.data(), j.text.data() + j.text.size(), n);
      if (!floating && ec == std::errc{} && ptr == j.text.data() + j.text.size()) {
        v.type = PhpValue::Type::integer;
        v.integer = n;
      } else {  // json_decode turns integers beyond int64 into floats
        v.type = PhpValue::Type::floating;
        v.floating = j.number;
      }
      break;
    }
    case JsonValue::Type::string:
      v.type = PhpValue::Type::string;
      v.string = j.text;
      break;
    case JsonValue::Type::object:
    case JsonValue::Type::array: {
      v.type = PhpValue::Type::array;
      std::size_t inner = 0;
      for (std::size_t k = 1; k + 1 < j.text.size(); ++k) {
        if (!is_space(j.text[k]))
          ++inner;
      }
      v.empty_array = inner == 0;
      break;
    }
  }
  return v;
}

PhpValue from_query(const Query::Value& q) {
  PhpValue v;
  if (std::holds_alternative<bool>(q)) {
    v.type = PhpValue::Type::boolean;
    v.boolean = std::get<bool>(q);
  } else if (std::holds_alternative<std::int64_t>(q)) {
    v.type = PhpValue::Type::integer;
    v.integer = std::get<std::int64_t>(q);
  } else if (std::holds_alternative<double>(q)) {
    v.type = PhpValue::Type::floating;
    v.floating = std::get<double>(q);
  } else if (std::holds_alternative<std::string>(q)) {
    v.type = PhpValue::Type::string;
    v.string = std::get<std::string>(q);
  }
  return v;
}

bool to_bool(const PhpValue& v) {
  switch (v.type) {
    case PhpValue::Type::null:
      return false;
    case PhpValue::Type::boolean:
      return v.boolean;
    case PhpValue::Type::integer:
      return v.integer != 0;
    case PhpValue::Type::floating:
      return v.floating != 0;
    case PhpValue::Type::string:
      return !v.string.empty() && v.string != "0";
    case PhpValue::Type::array:
      return !v.empty_array;
  }
  return false;
}

bool is_number(const PhpValue& v) {
  return v.type == PhpValue::Type::integer || v.type == PhpValue::Type::floating;
}

double as_double(const PhpValue& v) {
  return v.type == PhpValue::Type::integer ? static_cast<double>(v.integer) : v.floating;
}

int three_way(double a, double b) {
  return a == b ? 0 : (a < b ? -1 : 1);
}

int compare_numbers(const PhpValue& a, const PhpValue& b) {
  if (a.type == PhpValue::Type::integer && b.type == PhpValue::Type::integer) {
    return a.integer == b.integer ? 0 : (a.integer < b.integer ? -1 : 1);
  }
  return three_way(as_double(a), as_double(b));
}

// zend_binary_strcmp: bytes as unsigned, then length.
int compare_bytes(std::string_view a, std::string_view b) {
  const int c = a.compare(b);
  return c == 0 ? 0 : (c < 0 ? -1 : 1);
}

// PHP's (string) cast of a number (precision = 14, zend_gcvt's "1.0E+20" style).
std::string number_to_php_string(const PhpValue& v) {
  if (v.type == PhpValue::Type::integer)
    return std::to_string(v.integer);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.14G", v.floating);
  std::string s(buf);
  const auto e = s.find('E');
  if (e != std::string::npos) {
    std::string mantissa = s.substr(0, e);
    if (mantissa.find('.') == std::string::npos)
      mantissa += ".0";
    const char sign = s[e + 1];
    std::string exponent = s.substr(e + 2);
    while (exponent.size() > 1 && exponent[0] == '0')
      exponent.erase(0, 1);
    s = mantissa + "E" + sign + exponent;
  }
  return s;
}

int compare_number_string(const PhpValue& number, std::string_view str) {
  if (const auto n = numeric_string(str))
    return compare_numbers(number, *n);
  return compare_bytes(number_to_php_string(number), str);
}

// PHP 8's zend_compare for the values json_decode and Query can produce.
int php_compare(const PhpValue& a, const PhpValue& b) {
  using T = PhpValue::Type;
  if (is_number(a) && is_number(b))
    return compare_numbers(a, b);
  if (a.type == T::string && b.type == T::string) {
    const auto na = numeric_string(a.string);
    const auto nb = na ? numeric_string(b.string) : std::nullopt;
    if (na && nb)
      return compare_numbers(*na, *nb);
    return compare_bytes(a.string, b.string);
  }
  if (a.type == T::null && b.type == T::string)
    return b.string.empty() ? 0 : -1;
  if (a.type == T::string && b.type == T::null)
    return a.string.empty() ? 0 : 1;
  if (is_number(a) && b.type == T::string)
    return compare_number_string(a, b.string);
  if (a.type == T::string && is_number(b))
    return -compare_number_string(b, a.string);
  if (a.type == T::null || a.type == T::boolean || b.type == T::null || b.type == T::boolean) {
    const bool x = to_bool(a);
    const bool y = to_bool(b);
    return x == y ? 0 : (x ? 1 : -1);
  }
  if (a.type == T::array && b.type == T::array)
    return 0;  // a Query value is never an array
  return a.type == T::array ? 1 : -1;
}

// PHP's `===`.
bool php_identical(const PhpValue& a, const PhpValue& b) {
  if (a.type != b.type)
    return false;
  switch (a.type) {
    case PhpValue::Type::null:
      return true;
    case PhpValue::Type::boolean:
      return a.boolean == b.boolean;
    case PhpValue::Type::integer:
      return a.integer == b.integer;
    case PhpValue::Type::floating:
      return a.floating == b.floating;
    case PhpValue::Type::string:
      return a.string == b.string;
    case PhpValue::Type::array:
      return false;
  }
  return false;
}

bool php_identity_key(const PhpValue& v, std::string& key) {
  key.clear();
  switch (v.type) {
    case PhpValue::Type::null:
      key = "n";
      return true;
    case PhpValue::Type::boolean:
      key = v.boolean ? "t" : "f";
      return true;
    case PhpValue::Type::integer: {
      char digits[24];
      const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, v.integer);
      key = "i";
      key.append(digits, end);
      return true;
    }
    case PhpValue::Type::floating: {
      if (std::isnan(v.floating))
        return false;                                       // NaN === NaN is false
      const double d = v.floating == 0 ? 0.0 : v.floating;  // -0.0 === 0.0
      char bytes[sizeof d];
      std::memcpy(bytes, &d, sizeof d);
      key = "d";
      key.append(bytes, sizeof bytes);
      return true;
    }
    case PhpValue::Type::string:
      key = "s";
      key.append(v.string);
      return true;
    case PhpValue::Type::array:
      return false;
  }
  return false;
}

bool is_select_all(const Query& q) {
  return q.method == Query::Method::select && q.values.size() == 1 &&
         std::holds_alternative<std::string>(q.values[0]) &&
         std::get<std::string>(q.values[0]) == "*";
}

bool evaluate(const Query& query, JsonBytes payload, PayloadLookups* lookups) {
  using M = Query::Method;
  switch (query.method) {
    case M::and_:
      for (const Query& child : query.queries) {
        if (!evaluate(child, payload, lookups))
          return false;
      }
      return true;
    case M::or_:
      for (const Query& child : query.queries) {
        if (evaluate(child, payload, lookups))
          return true;
      }
      return false;
    case M::select:
      return false;  // evaluateFilter has no case for it
    default:
      break;
  }
  JsonValue own;
  if (lookups == nullptr)
    own = json_lookup(payload, query.attribute);
  const JsonValue& found = lookups ? lookups->get(payload, query.attribute) : own;
  if (!found.present())
    return false;
  const PhpValue attr = from_json(found);
  auto any = [&](auto&& predicate) {
    for (const Query::Value& value : query.values) {
      if (predicate(from_query(value)))
        return true;
    }
    return false;
  };
  switch (query.method) {
    case M::equal:
      return any([&](const PhpValue& v) { return php_identical(attr, v); });
    case M::not_equal:
      return !any([&](const PhpValue& v) { return php_identical(attr, v); });
    case M::less_than:
      return any([&](const PhpValue& v) { return php_compare(attr, v) < 0; });
    case M::less_than_equal:
      return any([&](const PhpValue& v) { return php_compare(attr, v) <= 0; });
    case M::greater_than:
      return any([&](const PhpValue& v) { return php_compare(attr, v) > 0; });
    case M::greater_than_equal:
      return any([&](const PhpValue& v) { return php_compare(attr, v) >= 0; });
    case M::is_null:
      return attr.type == PhpValue::Type::null;
    case M::is_not_null:
      return attr.type != PhpValue::Type::null;
    default:
      return false;
  }
}

}  // namespace

std::string_view method_name(Query::Method method) {
  switch (method) {
    case Query::Method::equal:
      return "equal";
    case Query::Method::not_equal:
      return "notEqual";
    case Query::Method::less_than:
      return "lessThan";
    case Query::Method::less_than_equal:
      return "lessThanEqual";
    case Query::Method::greater_than:
      return "greaterThan";
    case Query::Method::greater_than_equal:
      return "greaterThanEqual";
    case Query::Method::is_null:
      return "isNull";
    case Query::Method::is_not_null:
      return "isNotNull";
    case Query::Method::and_:
      return "and";
    case Query::Method::or_:
      return "or";
    case Query::Method::select:
      return "select";
  }
  return "";
}

bool parse_method(std::string_view name, Query::Method& method) {
  static constexpr Query::Method kAll[] = {
      Query::Method::equal,        Query::Method::not_equal,
      Query::Method::less_than,    Query::Method::less_than_equal,
      Query::Method::greater_than, Query::Method::greater_than_equal,
      Query::Method::is_null,      Query::Method::is_not_null,
      Query::Method::and_,         Query::Method::or_,
      Query::Method::select,
  };
  for (const Query::Method m : kAll) {
    if (method_name(m) == name) {
      method = m;
      return true;
    }
  }
  return false;
}

bool matches(const Query& query, JsonBytes payload) {
  if (is_select_all(query))
    return true;
  return evaluate(query, payload, nullptr);
}

namespace {

bool all_hold(const std::vector<Query>& queries, JsonBytes payload, PayloadLookups* lookups) {
  for (const Query& q : queries) {
    if (is_select_all(q))
      return true;
  }
  for (const Query& q : queries) {
    if (!evaluate(q, payload, lookups))
      return false;
  }
  return true;
}

}  // namespace

bool matches_all(const std::vector<Query>& queries, JsonBytes payload) {
  return all_hold(queries, payload, nullptr);
}

bool matches_all(const std::vector<Query>& queries, JsonBytes payload, PayloadLookups& lookups) {
  return all_hold(queries, payload, &lookups);
}

bool identity_key(const JsonValue& value, std::string& key) {
  return value.present() && php_identity_key(from_json(value), key);
}

bool identity_key(const Query::Value& value, std::string& key) {
  return php_identity_key(from_query(value), key);
}

const JsonValue& PayloadLookups::get(JsonBytes payload, std::string_view path) {
  for (const auto& [key, value] : entries_) {
    if (key == path)
      return value;
  }
  entries_.emplace_back(path, json_lookup(payload, path));
  return entries_.back().second;
}

}  // namespace sluice
