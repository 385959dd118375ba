#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include <boost/unordered/unordered_flat_map.hpp>

namespace sluice {

// The ids of the most recent events, to drop repeats (the same change seen on two connections,
// or received live and recovered after a gap) before they reach a sink. Bounded by a count: each
// id is kept as its 128 bits with a hash of its payload in a hash map and a FIFO ring, about 56
// bytes, and the oldest is forgotten first. Plain code without I/O, owned by the Dispatcher and
// used on the daemon's event loop only.
class DedupWindow {
 public:
  explicit DedupWindow(std::size_t capacity = 0) { set_capacity(capacity); }

  // True when the event is a repeat of one among the ids seen last, and must be dropped;
  // otherwise remembers it, forgetting the oldest when the window is full. `content` is a hash
  // of its payload (content_hash). One id means one change (make_change_id), with one
  // exception: Appwrite's `$updatedAt` moves in millisecond steps, so two live changes of one
  // row within a millisecond share an id while their payloads differ. The later one is not a
  // repeat: dropping it would leave consumers with the row's older state. A recovered copy
  // (listed from the REST API, so its bytes differ from the live frame's) is a repeat of
  // anything with its id, and a live event is a repeat of a recovered copy: both are the row as
  // it was at that `$updatedAt`. Always false when the capacity is 0 or `id` is not the 32 hex
  // digits every event id is.
  bool seen(std::string_view id, std::uint64_t content = 0, bool recovered = false);

  // A reload may change the size: the newest ids that fit are kept.
  void set_capacity(std::size_t capacity);
  std::size_t capacity() const { return capacity_; }
  std::size_t size() const { return ring_.size(); }

 private:
  struct Key {
    std::uint64_t high = 0;
    std::uint64_t low = 0;
    bool operator==(const Key&) const = default;
  };
  // The ids are XXH3 hashes already: their low half is as good as any mix of it.
  struct KeyHash {
    using is_avalanching = void;
    std::size_t operator()(const Key& k) const { return static_cast<std::size_t>(k.low); }
  };

  struct Seen {
    std::uint64_t content = 0;
    bool recovered = false;
  };

  boost::unordered_flat_map<Key, Seen, KeyHash> ids_;
  std::vector<Key> ring_;  // in arrival order from `oldest_` on, wrapping; size() <= capacity_
  std::size_t oldest_ = 0;
  std::size_t capacity_ = 0;
};

}  // namespace sluice
