#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "sinks/blocking_pool.hpp"
#include "sinks/sink.hpp"
#include "sinks/spool/record_codec.hpp"
#include "sinks/spool/segment_log.hpp"

// The disk buffer of one sink (`buffer.type: disk`): every record the worker accepts is given a
// sequence number and appended here, and the worker reports its head (the first record not yet
// acknowledged) as the sink catches up. Owned by the sink's SinkWorker and used on the daemon's
// event loop only; the file work (SegmentLog) runs on the BlockingPool, one commit at a time.
//
// Durability (group commit): append() only encodes into memory and never blocks. A commit
// writes everything appended since the previous one with one write(2) per segment, fdatasyncs
// it, then durably stores the head, then deletes fully acknowledged segments. Commits start at
// most once per `commit_interval` (a busy sink pays one fsync per interval, never one per
// event), and at once when the spool was idle for longer than that. So a crash (kill -9, power
// loss on a disk that honours fsync) loses at most the records accepted after the start of the
// last completed commit: a window of commit_interval plus one write+fsync. Every record
// accepted before that window is delivered after the restart unless it was acknowledged, and
// an acknowledged record may be delivered again only if its acknowledgement was still in that
// window (at-least-once: duplicates, never losses outside the window). Records released out of
// order (dead-lettered or evicted by drop_oldest behind a record still in flight) come back
// after a crash too, since only the head is stored.
//
// A commit that fails (disk full, I/O error) keeps its records in memory and is retried every
// second; the records are still delivered from memory meanwhile, and those acknowledged before
// a commit could write them are never written. From a failed commit until one succeeds,
// persisting() is false and the worker accepts nothing new (see sinks/worker.hpp), so the
// records only in memory are those of the failed commit: unpersisted() counts them.
namespace sluice::sinks::spool {

class Spool {
 public:
  struct Options {
    std::string dir;  // <buffer.dir>/<sink name>
    std::uint64_t segment_bytes = 16ull << 20;
    std::chrono::milliseconds commit_interval{10};
    // Called on the loop when a commit fails, with a short reason ("write: …", "fsync: …").
    std::function<void(std::string_view reason)> on_error;
    // Called on the loop when a commit succeeds after one failed: the disk takes writes again.
    std::function<void()> on_recovered;
  };

  // Opens and recovers the directory; blocking, so call it at start-up (or reload), not on the
  // hot path. Throws std::runtime_error when the directory cannot be used: without it the
  // promise of a disk buffer cannot be kept, and silently falling back to memory would hide it.
  Spool(boost::asio::any_io_executor loop, BlockingPool& pool, Options options);
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // The unacknowledged records found at open, in order; the first call takes them.
  std::vector<DecodedRecord> take_recovered();
  std::uint64_t corrupt() const { return corrupt_; }        // corrupt records skipped at open
  std::uint64_t torn_bytes() const { return torn_bytes_; }  // tail bytes cut at open

  // Appends `record` (in memory until the next commit) and returns its sequence number.
  std::uint64_t append(const Record& record);
  // Every record with a sequence number below `head` is acknowledged.
  void set_head(std::uint64_t head);
  std::uint64_t next_seq() const { return next_seq_; }

  // True when every appended record and the latest head are on disk (nothing left to commit).
  bool synced() const { return !in_commit_ && !has_work(); }
  // Appended records not known to be on disk yet (waiting for a commit, or in one that has not
  // finished), acknowledged ones included until a commit drops them.
  std::size_t unpersisted() const { return pending_frames_.size() + committing_frames_; }
  // False from a failed commit until the next one succeeds: the disk refuses writes.
  bool persisting() const { return !failing_; }
  std::uint64_t commits() const { return commits_; }
  std::size_t segment_count() const { return segments_; }  // as of the last commit

  // Commits what is left (one attempt, without waiting for the interval) and waits for the
  // committer to end. append() must not be called afterwards.
  boost::asio::awaitable<void> close();

 private:
  struct Batch;
  bool has_work() const;
  void trim_acknowledged();
  void kick();
  boost::asio::awaitable<void> commit_loop();

  boost::asio::any_io_executor loop_;
  BlockingPool& pool_;
  Options options_;
  std::shared_ptr<SegmentLog> log_;  // shared with the running commit job
  std::vector<DecodedRecord> recovered_;
  std::uint64_t corrupt_ = 0;
  std::uint64_t torn_bytes_ = 0;

  std::string pending_;  // encoded frames not yet handed to a commit
  std::vector<SegmentLog::Frame> pending_frames_;
  // The buffers of the last committed batch, emptied, for the next one to fill. A batch is
  // several MiB at full rate; growing a fresh string to that size for every commit (about ten
  // a second) costs page faults and copies that show up as CPU per event.
  std::string spare_bytes_;
  std::vector<SegmentLog::Frame> spare_frames_;
  std::uint64_t next_seq_ = 0;
  std::uint64_t head_ = 0;
  std::uint64_t durable_head_ = 0;
  bool unsynced_ = false;              // a commit wrote bytes but its fdatasync failed
  bool failing_ = false;               // the last commit failed
  std::size_t committing_frames_ = 0;  // frames of the commit running now

  boost::asio::steady_timer timer_;  // spacing between commits, retry delay
  boost::asio::steady_timer idle_;   // never expires; cancelled when the committer ends
  std::chrono::steady_clock::time_point last_commit_{};
  bool running_ = false;
  bool in_commit_ = false;
  bool closing_ = false;
  std::uint64_t commits_ = 0;
  std::size_t segments_ = 0;
};

}  // namespace sluice::sinks::spool
