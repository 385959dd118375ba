#include "emulator/store.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>

namespace sluice::emulator {

namespace json = boost::json;

namespace {

// Reads exactly `width` digits at `pos`.
bool digits(std::string_view text, std::size_t& pos, std::size_t width, int& out) {
  if (pos + width > text.size())
    return false;
  const auto [end, ec] = std::from_chars(text.data() + pos, text.data() + pos + width, out);
  if (ec != std::errc{} || end != text.data() + pos + width)
    return false;
  pos += width;
  return true;
}

bool expect(std::string_view text, std::size_t& pos, char c) {
  if (pos >= text.size() || text[pos] != c)
    return false;
  ++pos;
  return true;
}

// The value of a pattern segment: "[name]" from `params` (Appwrite's aliases accepted), a
// literal as written.
std::string resolve(std::string_view segment, const std::map<std::string, std::string>& params) {
  if (segment.size() < 2 || segment.front() != '[' || segment.back() != ']')
    return std::string(segment);
  const std::string name(segment.substr(1, segment.size() - 2));
  static const std::map<std::string, std::string> aliases = {{"tableId", "collectionId"},
                                                             {"collectionId", "tableId"},
                                                             {"rowId", "documentId"},
                                                             {"documentId", "rowId"}};
  if (const auto it = params.find(name); it != params.end())
    return it->second;
  if (const auto alias = aliases.find(name); alias != aliases.end()) {
    if (const auto it = params.find(alias->second); it != params.end())
      return it->second;
  }
  return "*";
}

bool concrete(std::string_view id) {
  return !id.empty() && id != "*";
}

}  // namespace

std::optional<std::int64_t> parse_instant(std::string_view text) {
  using namespace std::chrono;
  std::size_t pos = 0;
  int y = 0;
  int mo = 0;
  int d = 0;
  if (!digits(text, pos, 4, y) || !expect(text, pos, '-') || !digits(text, pos, 2, mo) ||
      !expect(text, pos, '-') || !digits(text, pos, 2, d)) {
    return std::nullopt;
  }
  const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)},
                           day{static_cast<unsigned>(d)}};
  if (!ymd.ok())
    return std::nullopt;
  std::int64_t micros = 0;
  if (pos < text.size()) {
    if (text[pos] != 'T' && text[pos] != ' ')
      return std::nullopt;
    ++pos;
    int h = 0;
    int mi = 0;
    int s = 0;
    if (!digits(text, pos, 2, h) || !expect(text, pos, ':') || !digits(text, pos, 2, mi))
      return std::nullopt;
    if (pos < text.size() && text[pos] == ':' && !(++pos, digits(text, pos, 2, s)))
      return std::nullopt;
    if (h > 23 || mi > 59 || s > 60)
      return std::nullopt;
    micros = ((h * 60 + mi) * 60 + s) * std::int64_t{1000000};
    if (pos < text.size() && text[pos] == '.') {
      ++pos;
      std::int64_t scale = 100000;
      const auto start = pos;
      while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
        micros += (text[pos] - '0') * scale;
        scale /= 10;
        ++pos;
      }
      if (pos == start)
        return std::nullopt;
    }
    if (pos < text.size() && text[pos] == 'Z') {
      ++pos;
    } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
      const bool minus = text[pos] == '-';
      ++pos;
      int oh = 0;
      int om = 0;
      if (!digits(text, pos, 2, oh))
        return std::nullopt;
      if (pos < text.size() && text[pos] == ':')
        ++pos;
      if (!digits(text, pos, 2, om))
        return std::nullopt;
      const std::int64_t offset = (oh * 60 + om) * std::int64_t{60000000};
      micros += minus ? offset : -offset;
    }
    if (pos != text.size())
      return std::nullopt;
  }
  const auto days_since = sys_days{ymd}.time_since_epoch().count();
  return days_since * std::int64_t{86400000000} + micros;
}

std::optional<StoreChange> store_change_of(std::string_view pattern,
                                           const std::map<std::string, std::string>& params,
                                           const json::object& payload) {
  std::vector<std::string> parts;
  for (std::size_t start = 0;;) {
    const auto dot = pattern.find('.', start);
    parts.push_back(resolve(pattern.substr(start, dot - start), params));
    if (dot == std::string_view::npos)
      break;
    start = dot + 1;
  }
  const auto& action = parts.back();
  if (action != "create" && action != "update" && action != "upsert" && action != "delete")
    return std::nullopt;
  StoreChange change;
  change.remove = action == "delete";
  std::string id;
  if (parts.size() == 7 && (parts[0] == "databases" || parts[0] == "tablesdb") &&
      (parts[2] == "tables" || (parts[0] == "databases" && parts[2] == "collections")) &&
      (parts[4] == "rows" || (parts[0] == "databases" && parts[4] == "documents"))) {
    change.kind = StoreChange::Kind::row;
    change.parent = parts[1];
    change.container = parts[3];
    id = parts[5];
  } else if (parts.size() == 5 && parts[0] == "buckets" && parts[2] == "files") {
    change.kind = StoreChange::Kind::file;
    change.parent = parts[1];
    id = parts[3];
  } else {
    return std::nullopt;
  }
  if (!concrete(id)) {
    const auto* payload_id = payload.if_contains("$id");
    if (payload_id == nullptr || !payload_id->is_string())
      return std::nullopt;
    id = std::string(payload_id->as_string());
  }
  if (!concrete(change.parent) ||
      (change.kind == StoreChange::Kind::row && !concrete(change.container)) || !concrete(id)) {
    return std::nullopt;
  }
  change.id = std::move(id);
  return change;
}

void Store::apply(const std::string& project, const StoreChange& change,
                  std::string_view database_type, const json::object& payload,
                  const std::vector<std::string>& read, std::string_view now) {
  auto& state = projects_[project];
  Container* container = nullptr;
  if (change.kind == StoreChange::Kind::row) {
    auto [db, created] = state.databases.try_emplace(change.parent);
    if (created) {
      db->second.type = std::string(database_type);
      db->second.created_at = std::string(now);
    }
    db->second.updated_at = std::string(now);
    container = &db->second.tables[change.container];
  } else {
    container = &state.buckets[change.parent];
  }
  if (container->created_at.empty())
    container->created_at = std::string(now);
  container->updated_at = std::string(now);
  if (change.remove) {
    container->items.erase(change.id);
    return;
  }
  auto [it, created] = container->items.try_emplace(change.id);
  auto& item = it->second;
  if (created)
    item.sequence = ++last_sequence_;
  const auto previous_created = item.payload.if_contains("$createdAt");
  json::object stored = payload;
  if (!stored.contains("$id"))
    stored["$id"] = change.id;
  if (!stored.contains("$createdAt")) {
    stored["$createdAt"] = previous_created != nullptr ? *previous_created : json::value(now);
  }
  if (!stored.contains("$updatedAt"))
    stored["$updatedAt"] = now;
  const auto instant = [&](std::string_view key) -> std::optional<std::int64_t> {
    const auto* v = stored.if_contains(key);
    return v != nullptr && v->is_string() ? parse_instant(v->as_string()) : std::nullopt;
  };
  item.created_at = instant("$createdAt");
  item.updated_at = instant("$updatedAt");
  for (const auto& [key, value] : stored)
    container->attributes.emplace(key);
  item.payload = std::move(stored);
  item.read = read;
}

const ProjectStore* Store::project(std::string_view id) const {
  const auto it = projects_.find(id);
  return it == projects_.end() ? nullptr : &it->second;
}

}  // namespace sluice::emulator
