#include "core/event.hpp"

#include <array>

#include <xxhash.h>

namespace sluice {
namespace {

std::string to_hex(const XXH128_hash_t& h) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(32, '0');
  for (int i = 0; i < 16; ++i) {
    id[static_cast<std::size_t>(15 - i)] = kHex[(h.high64 >> (4 * i)) & 0xf];
    id[static_cast<std::size_t>(31 - i)] = kHex[(h.low64 >> (4 * i)) & 0xf];
  }
  return id;
}

bool is_action(std::string_view s) {
  return s == "create" || s == "update" || s == "upsert" || s == "delete";
}

bool is_database_family(std::string_view s) {
  return s == "databases" || s == "tablesdb" || s == "documentsdb" || s == "vectorsdb";
}

// The TablesDB names of the legacy segments (Appwrite renames them the same way when it builds
// tablesdb events), so every form of one row gives one path.
std::string_view canonical_segment(std::size_t at, std::string_view s) {
  if (at == 0)
    return "databases";
  if (at == 2 && s == "collections")
    return "tables";
  if (at == 4 && s == "documents")
    return "rows";
  if (at == 4 && s == "attributes")
    return "columns";
  return s;
}

// Appwrite's event strings nest at most a sub-sub-resource (`type.id.sub.id.subsub.id`).
constexpr std::size_t kMaxSegments = 8;

}  // namespace

std::uint64_t content_hash(std::string_view bytes) {
  return XXH3_64bits(bytes.data(), bytes.size());
}

std::string make_event_id(std::string_view data) {
  return to_hex(XXH3_128bits(data.data(), data.size()));
}

std::optional<ResourceChange> resource_change_of(std::string_view event) {
  std::array<std::string_view, kMaxSegments> segments;
  std::size_t count = 0;
  for (std::size_t begin = 0;;) {
    const std::size_t dot = event.find('.', begin);
    const std::string_view segment =
        event.substr(begin, dot == std::string_view::npos ? std::string_view::npos : dot - begin);
    if (segment.empty() || count == segments.size())
      return std::nullopt;
    segments[count++] = segment;
    if (dot == std::string_view::npos)
      break;
    begin = dot + 1;
  }
  // Pairs of a resource type and an id up to the action; at most one attribute after it
  // (`users.U.update.name`, `teams.T.memberships.M.update.status`).
  std::size_t action = 0;
  while (action + 1 < count && !is_action(segments[action]))
    action += 2;
  if (action == 0 || action >= count || !is_action(segments[action]) || count > action + 2)
    return std::nullopt;
  const bool database = is_database_family(segments[0]);
  ResourceChange out;
  out.deleted = segments[action] == "delete";
  for (std::size_t i = 0; i < action; ++i) {
    if (i > 0)
      out.path += '/';
    out.path += database ? canonical_segment(i, segments[i]) : segments[i];
  }
  return out;
}

std::string make_change_id(std::string_view project, std::string_view first_event,
                           std::string_view resource_id, std::string_view updated_at) {
  if (resource_id.empty() || updated_at.empty())
    return {};
  const auto change = resource_change_of(first_event);
  if (!change)
    return {};
  // `<project>\n<path>\n<change|delete>\n<$updatedAt>`: none of the parts holds a newline.
  const std::string_view kind = change->deleted ? "delete" : "change";
  std::string text;
  text.reserve(project.size() + change->path.size() + kind.size() + updated_at.size() + 3);
  text.append(project).append(1, '\n').append(change->path).append(1, '\n');
  text.append(kind).append(1, '\n').append(updated_at);
  return to_hex(XXH3_128bits(text.data(), text.size()));
}

}  // namespace sluice
