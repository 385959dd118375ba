#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

// The files of one sink's disk spool: an append-only log of checksummed records (see
// record_codec.hpp) cut into segment files, plus a small `head` file naming the first
// unacknowledged sequence number.
//
//   <dir>/<016x first seq>.seg   records in sequence order; only the last one is appended to
//   <dir>/head                   two 16-byte slots [head u64][XXH3 u64], written alternately
//
// Why a segment log rather than SQLite (WAL) or LMDB: the spool is a FIFO with appends at the
// tail and truncation at the head, never updated in place and never read at random. A segment
// log does exactly that with one write(2) per group commit and one unlink(2) per reclaimed
// segment, no B-tree pages, no WAL checkpoints, no free-list growth, and a recovery that is a
// linear scan; a database would add a dependency and several times the bytes written per event
// for features the spool never uses.
//
// Blocking and not thread-safe: owned by a Spool, which calls it from one BlockingPool job at a
// time (never from the event loop once open() has returned).
namespace sluice::sinks::spool {

struct RecoveredBody {
  std::uint64_t seq = 0;
  std::string body;  // checksum verified; decoded by the caller
};

struct Recovery {
  std::vector<RecoveredBody> records;  // unacknowledged, in order
  std::uint64_t corrupt = 0;           // corrupt regions skipped (each counted once)
  std::uint64_t torn_bytes = 0;        // bytes cut from the tail of the last segment
  std::uint64_t head = 0;              // first unacknowledged sequence number
  std::uint64_t next_seq = 0;          // the sequence number the next append gets
};

class SegmentLog {
 public:
  SegmentLog(std::string dir, std::uint64_t segment_bytes);
  ~SegmentLog();
  SegmentLog(const SegmentLog&) = delete;
  SegmentLog& operator=(const SegmentLog&) = delete;

  // Creates the directory if needed, reads the head, scans every segment (checksums), cuts a
  // torn or corrupt tail off the last segment and returns the unacknowledged records. Corrupt
  // records elsewhere are skipped and counted: recovery never fails because of file content.
  std::error_code open(Recovery& out);

  // One record of an append: its sequence number and the size of its frame.
  struct Frame {
    std::uint64_t seq;
    std::uint32_t bytes;
  };
  // Appends `frames` (contiguous in `bytes`, in sequence order), rolling to a new segment when
  // the current one would pass segment_bytes. `written` is how many frames reached the files
  // (all of them on success); a failed write leaves no partial frame behind.
  std::error_code append(std::string_view bytes, const std::vector<Frame>& frames,
                         std::size_t& written);

  // fdatasync of the segment being appended to (segments left behind were synced at the roll).
  std::error_code sync();

  // Durably records that every sequence number below `head` is acknowledged.
  std::error_code write_head(std::uint64_t head);

  // Deletes the segments whose records are all below `head` (never the one being appended to).
  // Returns how many were deleted.
  std::size_t reclaim(std::uint64_t head);

  std::size_t segment_count() const { return segments_.size(); }
  std::uint64_t disk_bytes() const;
  const std::string& dir() const { return dir_; }

 private:
  struct Segment {
    std::uint64_t first_seq;
    std::uint64_t bytes;
  };
  std::string segment_path(std::uint64_t first_seq) const;
  std::error_code open_active(std::uint64_t first_seq, bool create);
  std::error_code roll(std::uint64_t first_seq);

  std::string dir_;
  std::uint64_t segment_bytes_;
  std::vector<Segment> segments_;  // sorted; the last is the active one
  int active_fd_ = -1;
  int head_fd_ = -1;
  std::uint64_t head_writes_ = 0;
  std::uint64_t head_ = 0;
  bool dirty_ = false;          // bytes appended since the last sync()
  bool appended_ = false;       // some record is in the files (last_seq_ is meaningful)
  std::uint64_t last_seq_ = 0;  // the highest sequence number in the files
};

}  // namespace sluice::sinks::spool
