#include "daemon/dedup_window.hpp"

#include <utility>

namespace sluice {
namespace {

bool parse_hex(std::string_view text, std::uint64_t& out) {
  out = 0;
  for (const char c : text) {
    std::uint64_t digit = 0;
    if (c >= '0' && c <= '9')
      digit = static_cast<std::uint64_t>(c - '0');
    else if (c >= 'a' && c <= 'f')
      digit = static_cast<std::uint64_t>(c - 'a' + 10);
    else
      return false;
    out = (out << 4) | digit;
  }
  return true;
}

}  // namespace

bool DedupWindow::seen(std::string_view id, std::uint64_t content, bool recovered) {
  Key key;
  if (capacity_ == 0 || id.size() != 32 || !parse_hex(id.substr(0, 16), key.high) ||
      !parse_hex(id.substr(16), key.low)) {
    return false;
  }
  const auto [it, added] = ids_.try_emplace(key, Seen{content, recovered});
  if (!added) {
    auto& earlier = it->second;
    if (recovered || earlier.recovered || earlier.content == content)
      return true;
    // A second live change within the row's millisecond: delivered, and remembered in place
    // of the first (it keeps the first's place in the ring).
    earlier.content = content;
    return false;
  }
  if (ring_.size() < capacity_) {
    ring_.push_back(key);
    return false;
  }
  ids_.erase(ring_[oldest_]);
  ring_[oldest_] = key;
  oldest_ = (oldest_ + 1) % capacity_;
  return false;
}

void DedupWindow::set_capacity(std::size_t capacity) {
  if (capacity == capacity_)
    return;
  std::vector<Key> kept;
  const std::size_t keep = std::min(capacity, ring_.size());
  kept.reserve(capacity);
  for (std::size_t i = ring_.size() - keep; i < ring_.size(); ++i)
    kept.push_back(ring_[(oldest_ + i) % ring_.size()]);
  decltype(ids_) ids;
  for (const auto& key : kept)
    ids.emplace(key, ids_.at(key));
  ids_ = std::move(ids);
  ids_.reserve(capacity);
  ring_ = std::move(kept);
  oldest_ = 0;
  capacity_ = capacity;
}

}  // namespace sluice
