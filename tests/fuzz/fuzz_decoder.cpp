// libFuzzer target: one realtime frame, as a server could send it, through FrameDecoder.
// The first byte chooses text or binary; the rest is the frame. Any input must decode to some
// kind without a crash, a leak or undefined behaviour, and an event's views must stay inside
// its frame.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "daemon/upstream/decoder.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static sluice::upstream::FrameDecoder decoder{"fuzz"};  // reused like the client does
  if (size == 0)
    return 0;
  const bool binary = (data[0] & 1) != 0;
  std::string frame(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto f = decoder.decode(std::move(frame), binary, std::chrono::steady_clock::now(),
                          std::chrono::system_clock::now());
  if (f.kind == sluice::upstream::FrameKind::event) {
    const auto& e = *f.event;
    const char* begin = e.frame.data();
    const char* end = begin + e.frame.size();
    auto inside = [&](std::string_view v) {
      return v.empty() || (v.data() >= begin && v.data() + v.size() <= end) ||
             (v.data() >= e.strings.data() &&
              v.data() + v.size() <= e.strings.data() + e.strings.size());
    };
    if (!inside(e.data) || !inside(e.payload) || e.id.size() != 32)
      std::abort();
    for (auto v : e.events)
      if (!inside(v))
        std::abort();
    for (auto v : e.channels)
      if (!inside(v))
        std::abort();
  }
  return 0;
}
