#include "daemon/recovery/backfill_pager.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>
#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

#include "core/utc.hpp"
#include "daemon/upstream/decoder.hpp"

namespace sluice::recovery {

namespace json = boost::json;

namespace {

std::string encode(std::string_view s) {
  return boost::urls::encode(s, boost::urls::unreserved_chars);
}

std::string appwrite_time(Millis t) {
  return format_utc_millis(t, "+00:00");
}

// Appwrite's error body ({"message","code","type"}): its type and message, shortened; the
// message names the resource at most, never a secret we sent.
std::string appwrite_error(unsigned status, std::string_view body) {
  std::string out = fmt::format("HTTP {}", status);
  json::error_code ec;
  const auto value = json::parse(body, ec);
  if (ec || !value.is_object())
    return out;
  const auto& o = value.as_object();
  for (const auto* key : {"type", "message"}) {
    if (const auto* field = o.if_contains(key); field != nullptr && field->is_string()) {
      std::string text(field->as_string().subview().substr(0, 200));
      for (auto& c : text)
        if (static_cast<unsigned char>(c) < 0x20)
          c = ' ';
      out += std::string(": ") + text;
    }
  }
  return out;
}

std::optional<Millis> timestamp_of(const json::object& row, std::string_view key) {
  const auto* field = row.if_contains(key);
  if (field == nullptr || !field->is_string())
    return std::nullopt;
  return upstream::parse_timestamp(field->as_string());
}

// One query as an object, members in the order the SDKs' JSON.stringify gives them: method,
// attribute, values.
json::object query_object(std::string_view method, std::string_view attribute, json::array values) {
  json::object o;
  o["method"] = method;
  if (!attribute.empty())
    o["attribute"] = attribute;
  if (!values.empty())
    o["values"] = std::move(values);
  return o;
}

}  // namespace

std::string query_json(std::string_view method, std::string_view attribute,
                       std::optional<std::string> string_value,
                       std::optional<std::int64_t> number_value) {
  json::array values;
  if (string_value)
    values.emplace_back(json::string(*string_value));
  else if (number_value)
    values.emplace_back(*number_value);
  return json::serialize(query_object(method, attribute, std::move(values)));
}

std::string after_key_query(Millis updated_at, std::string_view id) {
  // Query.or / Query.and parse their inner queries' JSON back into objects (not strings) and
  // leave `attribute` out.
  const json::string at(appwrite_time(updated_at));
  json::array both{query_object("equal", "$updatedAt", json::array{at}),
                   query_object("greaterThan", "$id", json::array{json::string(id)})};
  json::array either{query_object("greaterThan", "$updatedAt", json::array{at}),
                     query_object("and", "", std::move(both))};
  return json::serialize(query_object("or", "", std::move(either)));
}

Pager::Pager(Target target, Millis until, std::uint32_t page_size)
    : target_(std::move(target)), until_(until), page_size_(page_size) {}

std::string_view Pager::list_key() const {
  switch (target_.api) {
    case Api::tablesdb:
      return "rows";
    case Api::databases:
      return "documents";
    case Api::storage:
      return "files";
  }
  return "rows";
}

std::string Pager::next_path() const {
  std::string path;
  switch (target_.api) {
    case Api::tablesdb:
      path = "/tablesdb/" + encode(target_.database) + "/tables/" + encode(target_.container) +
             "/rows";
      break;
    case Api::databases:
      path = "/databases/" + encode(target_.database) + "/collections/" +
             encode(target_.container) + "/documents";
      break;
    case Api::storage:
      path = "/storage/buckets/" + encode(target_.container) + "/files";
      break;
  }
  std::vector<std::string> queries = {
      last_ ? after_key_query(last_->first, last_->second)
            : query_json("greaterThanEqual", "$updatedAt", appwrite_time(target_.from)),
      query_json("lessThanEqual", "$updatedAt", appwrite_time(until_)),
      query_json("orderAsc", "$updatedAt", std::nullopt),
      query_json("orderAsc", "$id", std::nullopt),
      query_json("limit", "", std::nullopt, page_size_),
  };
  for (std::size_t i = 0; i < queries.size(); ++i)
    path += fmt::format("{}queries%5B{}%5D={}", i == 0 ? '?' : '&', i, encode(queries[i]));
  return path;
}

Pager::Outcome Pager::on_response(unsigned status, std::string_view body,
                                  std::optional<std::chrono::seconds> retry_after) {
  Outcome out;
  if (status == 429 || status == 503) {
    out.error = appwrite_error(status, body);
    out.retry_after = retry_after;
    return out;
  }
  if (status != 200) {
    out.error = appwrite_error(status, body);
    if (status == 401 || status == 403)
      out.error += " (the credentials may not list this resource)";
    return out;
  }
  json::error_code ec;
  json::value value = json::parse(body, ec);
  if (ec || !value.is_object()) {
    out.error = fmt::format("the answer is not a JSON object ({} bytes)", body.size());
    return out;
  }
  auto* list = value.as_object().if_contains(list_key());
  if (list == nullptr || !list->is_array()) {
    out.error = fmt::format("the answer has no `{}` array", list_key());
    return out;
  }
  auto& items = list->as_array();
  if (items.size() > page_size_) {
    out.error =
        fmt::format("the answer has {} rows, more than the {} asked for", items.size(), page_size_);
    return out;
  }
  std::optional<std::pair<Millis, std::string>> previous;
  auto last = last_;
  for (std::size_t i = 0; i < items.size(); ++i) {
    auto* row = items[i].if_object();
    const auto* id = row != nullptr ? row->if_contains("$id") : nullptr;
    const auto updated = row != nullptr ? timestamp_of(*row, "$updatedAt") : std::nullopt;
    const auto created = row != nullptr ? timestamp_of(*row, "$createdAt") : std::nullopt;
    if (row == nullptr || id == nullptr || !id->is_string() || id->as_string().empty() ||
        !updated || !created) {
      out.error = fmt::format(
          "`{}`[{}] is not a row with a string `$id` and `$createdAt`/`$updatedAt` timestamps",
          list_key(), i);
      out.rows.clear();
      return out;
    }
    std::pair<Millis, std::string> position{*updated, std::string(id->as_string())};
    if (previous && position < *previous) {
      out.error = fmt::format("`{}` is not ordered by $updatedAt, $id (row {})", list_key(), i);
      out.rows.clear();
      return out;
    }
    previous = position;
    if ((last && position <= *last) || *updated > until_ || *updated < target_.from)
      continue;  // seen already, or outside the range the query asked for
    last = position;
    out.rows.push_back(ListedRow{std::move(*row), *updated, *created});
  }
  ++pages_;
  last_ = std::move(last);
  stalled_ = out.rows.empty() ? stalled_ + 1 : 0;
  // A short page lists everything after the last key; a full page without a new row can only
  // come from a server that ignores the key, and two in a row stop the listing.
  if (items.size() < page_size_ || stalled_ >= 2)
    done_ = true;
  return out;
}

std::string discovery_path(std::string_view base, const std::optional<std::string>& cursor) {
  std::string path(base);
  path += "?queries%5B0%5D=" + encode(query_json("limit", "", std::nullopt, kDiscoveryPage));
  if (cursor)
    path += "&queries%5B1%5D=" + encode(query_json("cursorAfter", "", *cursor));
  return path;
}

DiscoveryPage parse_discovery(unsigned status, std::string_view body, std::string_view key) {
  DiscoveryPage out;
  if (status != 200) {
    out.error = appwrite_error(status, body);
    return out;
  }
  json::error_code ec;
  const auto value = json::parse(body, ec);
  const auto* list = !ec && value.is_object() ? value.as_object().if_contains(key) : nullptr;
  if (list == nullptr || !list->is_array()) {
    out.error = fmt::format("the answer has no `{}` array", key);
    return out;
  }
  if (list->as_array().size() > kDiscoveryPage) {
    out.error = fmt::format("the answer has more than {} {}", kDiscoveryPage, key);
    return out;
  }
  for (const auto& item : list->as_array()) {
    const auto* o = item.if_object();
    const auto* id = o != nullptr ? o->if_contains("$id") : nullptr;
    if (id == nullptr || !id->is_string() || id->as_string().empty()) {
      out.error = fmt::format("`{}` holds an item without a string `$id`", key);
      out.items.clear();
      return out;
    }
    const auto* type = o->if_contains("type");
    out.items.push_back({std::string(id->as_string()), key != "databases" ? ""
                                                       : type != nullptr && type->is_string()
                                                           ? std::string(type->as_string())
                                                           : "legacy"});
  }
  return out;
}

}  // namespace sluice::recovery
