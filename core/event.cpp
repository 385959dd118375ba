#include "core/event.hpp"

#include <xxhash.h>

namespace sluice {

std::string make_event_id(std::string_view data) {
  const XXH128_hash_t h = XXH3_128bits(data.data(), data.size());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(32, '0');
  for (int i = 0; i < 16; ++i) {
    id[static_cast<std::size_t>(15 - i)] = kHex[(h.high64 >> (4 * i)) & 0xf];
    id[static_cast<std::size_t>(31 - i)] = kHex[(h.low64 >> (4 * i)) & 0xf];
  }
  return id;
}

}  // namespace sluice
