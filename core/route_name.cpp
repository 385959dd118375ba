#include "core/route_name.hpp"

#include <functional>
#include <mutex>
#include <unordered_set>

namespace sluice {

namespace {

struct Hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// Nodes of an unordered_set never move, so a pointer to an element stays valid across
// rehashing; nothing is ever erased.
struct Table {
  std::mutex mutex;
  std::unordered_set<std::string, Hash, std::equal_to<>> names;
};

Table& table() {
  static Table t;
  return t;
}

}  // namespace

RouteName RouteName::intern(std::string_view name) {
  Table& t = table();
  const std::lock_guard lock(t.mutex);
  auto found = t.names.find(name);
  if (found == t.names.end())
    found = t.names.emplace(name).first;
  return RouteName{&*found};
}

}  // namespace sluice
