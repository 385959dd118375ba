#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "sinks/sink.hpp"

// The byte layout of one spooled record, shared by the segment log (which frames and checks it)
// and the spool (which encodes and decodes it). Pure functions, no I/O, thread-safe.
//
// A frame is a 16-byte header and a body:
//   [magic u32 "SPL1"][body length u32][XXH3-64 of the body, seeded with its length, u64][body]
// The magic lets recovery find the next record after a corrupt length field. All integers are
// little-endian.
//
// The body keeps everything needed to rebuild the sinks::Record exactly as the decoder built
// it, so nothing is re-parsed after a restart and sinks/ needs nothing from daemon/: the raw
// `data` bytes, the offset of `payload` inside them, the unescaped event, channel and
// subscription strings, the timestamp (text and parsed), the route and channel names, and the wall
// time at which the event was received (to rebase Event::received on the new process' clock),
// and the event id.
namespace sluice::sinks::spool {

inline constexpr std::uint32_t kMagic = 0x314c5053;  // "SPL1" on disk
inline constexpr std::size_t kHeaderBytes = 16;
// Larger than any realtime frame Appwrite sends; a length beyond it is corruption.
inline constexpr std::uint32_t kMaxBodyBytes = 256u << 20;

// Appends the frame of `record` (with sequence number `seq`) to `out`; returns its size.
std::size_t append_frame(std::string& out, std::uint64_t seq, const Record& record,
                         std::chrono::system_clock::time_point received_wall);

enum class FrameCheck {
  ok,          // a whole frame whose checksum matches
  incomplete,  // the buffer ends inside the header or the body (a torn write)
  bad,         // no magic, an impossible length, or a checksum mismatch
};

// Checks the frame starting at `at` in `buffer`; on `ok`, `frame_bytes` is its total size.
FrameCheck check_frame(std::string_view buffer, std::size_t at, std::size_t& frame_bytes);

// The body of the frame at `at` (only after check_frame() returned ok).
std::string_view frame_body(std::string_view buffer, std::size_t at);

// The sequence number stored in a body; nullopt if the body is too short.
std::optional<std::uint64_t> body_seq(std::string_view body);

struct DecodedRecord {
  std::uint64_t seq = 0;
  Record record;
};

// Rebuilds the record from a checked body. `steady_now`/`wall_now` rebase Event::received.
// nullopt if the body is malformed (counted as corrupt by the caller).
std::optional<DecodedRecord> decode_body(std::string_view body,
                                         std::chrono::steady_clock::time_point steady_now,
                                         std::chrono::system_clock::time_point wall_now);

}  // namespace sluice::sinks::spool
