#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "config/config.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "sinks/blocking_pool.hpp"
#include "sinks/dead_letter.hpp"
#include "sinks/delivery_queue.hpp"
#include "sinks/sink.hpp"
#include "sinks/spool/spool.hpp"
#include "sinks/spool/spool_path.hpp"

// The delivery engine of one sink (fluent-bit's model: the sink delivers and classifies, the
// engine owns everything else). One SinkWorker per configured sink, owned by the daemon's App and
// run on the daemon's single-threaded event loop: every public member must be called from that
// loop. It is the coroutine shell around the sink's DeliveryQueue (sinks/delivery_queue.hpp),
// which holds the policy (admission, batching, retries, every record's fate): the worker owns
// the timers, the sink's deliver() calls, the disk spool, the dead-letter file and the metrics.
//
// Delivery is in order and at least once: the loop hands the sink up to max_batch() records from
// the head, in up to max_in_flight() batches at once; a record leaves the queue only once the
// sink returned ok for it (or it was dead-lettered), and the queue is acknowledged in order. A
// record that must be retried goes back to pending and is sent again first after the backoff;
// with one batch in flight it holds the ones behind it, with several the batches already sent
// may land before it. The App must await stop() before destroying the worker.
//
// With `buffer.type: disk` the queue is backed by a spool::Spool in <buffer.dir>/<sink name>:
// offer() appends every accepted record to it (group-committed to disk, see sinks/spool/spool.hpp
// for the exact crash guarantee), the head is advanced as records leave the queue, and the
// constructor re-queues the unacknowledged records of the previous run first, in order (limits
// do not apply to them: they were accepted once already). Corrupt spool records are counted in
// sluice_sink_events_failed_total{reason="corrupt"}, failed spool commits in
// sluice_sink_write_errors_total{file="disk_buffer"}.
// While the disk refuses writes (a commit failed and none has succeeded since), the sink accepts
// nothing new: offer() answers as if the buffer were full (`block`: `full`; the drop policies
// drop the new record, reason="disk_buffer"), so every accepted record but those of the failed
// commit itself is on disk; Stats::unpersisted counts those.
namespace sluice::sinks {

// Injection points for tests; the defaults are the real clocks and randomness.
struct WorkerOptions {
  std::function<double()> random;                                   // uniform in [0, 1)
  std::function<std::chrono::steady_clock::time_point()> now;       // record ages, max_elapsed
  std::function<std::chrono::system_clock::time_point()> wall_now;  // dead-letter timestamps
  // A record queued longer than this marks the sink as stuck (/readyz).
  std::chrono::steady_clock::duration stuck_after = std::chrono::seconds{60};
  // Disk buffer: the group-commit interval, and the segment size (0: max_bytes / 4, clamped to
  // 1 MiB .. 16 MiB, so acknowledged bytes awaiting deletion stay small next to max_bytes).
  std::chrono::milliseconds spool_commit_interval{10};
  std::uint64_t spool_segment_bytes = 0;
};

class SinkWorker {
 public:
  enum class Accept { queued, dropped, full };

  struct Stats {
    std::size_t queued_events = 0;  // records not yet delivered (in flight included)
    std::uint64_t queued_bytes = 0;
    std::uint64_t sent = 0;  // records the sink confirmed
    std::uint64_t sent_bytes = 0;
    std::uint64_t capacity_events = 0;  // buffer.max_events and max_bytes
    std::uint64_t capacity_bytes = 0;
    // Records that left without delivery: dead-lettered, dropped and corrupt, the sum of
    // sluice_sink_events_failed_total.
    std::uint64_t failed = 0;
    bool stuck = false;
    std::string last_error;  // the most recent failure reason, kept after recovery
    // Additions beyond the brief, for /status and tests:
    std::uint64_t retries = 0;
    std::uint64_t dead_lettered = 0;
    std::uint64_t dropped = 0;
    std::chrono::milliseconds backoff{0};  // the backoff being waited now, 0 when not waiting
    // Set while the sink waits because its server asked to (retry_after): until when.
    std::optional<std::chrono::system_clock::time_point> paused_until;
    // Disk buffer only: every accepted record and the latest head are on disk (always true
    // for the memory buffer), and the corrupt records skipped when the spool was opened.
    bool spool_synced = true;
    std::uint64_t spool_corrupt = 0;
    // False while the disk buffer cannot write (its last commit failed): offer() then treats
    // the sink as full, so nothing is accepted that would live in memory only.
    bool buffer_persisting = true;
    // Queued records that would not survive the process ending now: all of them with a memory
    // buffer; with a disk buffer, those not committed to disk yet.
    std::size_t unpersisted = 0;
  };

  // Opens and recovers the disk buffer if configured (blocking: start-up or reload); throws
  // std::runtime_error when its directory cannot be used.
  SinkWorker(boost::asio::any_io_executor loop, std::unique_ptr<Sink> sink,
             const config::SinkConfig& config, SinkMetrics metrics, BlockingPool& pool,
             WorkerOptions options = {});
  ~SinkWorker();
  SinkWorker(const SinkWorker&) = delete;
  SinkWorker& operator=(const SinkWorker&) = delete;

  // Never blocks. `queued`: accepted. When the buffer is full: drop_newest drops `record`
  // (`dropped`); drop_oldest evicts the oldest records not in flight until `record` fits and
  // queues it (`queued`; `dropped` if only in-flight records are left to evict); block returns
  // `full` and queues nothing (await wait_for_space(), then offer again). Drops are counted in
  // sluice_sink_events_failed_total{reason="dropped_full"}. After stop(): `dropped`
  // (reason "stopped"). An empty queue accepts any record, however large.
  Accept offer(Record record);

  // Completes when offer() would accept the record it last refused with `full` (or when the
  // worker stops).
  boost::asio::awaitable<void> wait_for_space();

  // Spawns the delivery loop on the loop executor. Call once.
  void start();

  // Stops accepting, delivers what is queued until the queue is empty or `deadline` (a backoff
  // that would end after the deadline ends the drain at once; a deliver() already running is
  // let finish: the App bounds the process' shutdown as a whole), then closes the sink. What is
  // left is logged with its count; stats().unpersisted tells what the process cannot keep.
  // Completes once the worker has stopped; stopped() tells whether it has.
  boost::asio::awaitable<void> stop(std::chrono::steady_clock::time_point deadline);

  bool stopped() const { return done_; }
  Stats stats() const;
  const std::string& name() const { return name_; }

 private:
  using SteadyClock = std::chrono::steady_clock;
  using SystemClock = std::chrono::system_clock;

  boost::asio::awaitable<void> run();
  boost::asio::awaitable<void> deliver_loop();
  boost::asio::awaitable<void> deliver_batch(DeliveryQueue::Batch batch);
  void lane_finished();
  boost::asio::awaitable<void> finish();
  boost::asio::awaitable<void> backoff(std::chrono::milliseconds delay, bool server_pause);
  void drop_new(std::string_view reason);
  void push(Record record, std::uint64_t seq = 0);
  void advance_spool_head();
  void open_spool(BlockingPool& pool, std::string dir);
  void update_gauges();
  void count_failed_attempt(std::string_view reason);
  void log_failure(std::string_view message, std::string_view reason, std::size_t count);
  SteadyClock::time_point now() const;
  SystemClock::time_point wall_now() const;

  boost::asio::any_io_executor loop_;
  std::unique_ptr<Sink> sink_;
  std::string name_;
  config::BufferConfig buffer_;
  SinkMetrics metrics_;
  prometheus::Counter* dropped_full_ = nullptr;  // resolved once: the overload path is hot
  prometheus::Counter* dead_letter_failed_ = nullptr;
  DeliveryQueue queue_;
  DeadLetterFile dead_letter_;
  WorkerOptions options_;
  log::RateLimiter log_limiter_;

  std::unique_ptr<spool::Spool> spool_;  // disk buffer only

  // Steady timers used as condition variables: their expiry stays at "never" and cancel()
  // wakes whoever waits; each waiter re-checks its condition.
  boost::asio::steady_timer wake_;       // the loop waits for records
  boost::asio::steady_timer lane_free_;  // the loop waits for a batch to finish
  boost::asio::steady_timer space_;      // wait_for_space() waiters
  boost::asio::steady_timer finished_;   // stop() waits for the loop to end
  boost::asio::steady_timer backoff_timer_;

  bool started_ = false;
  bool stopping_ = false;
  bool done_ = false;
  SteadyClock::time_point deadline_ = SteadyClock::time_point::max();

  std::uint64_t sent_ = 0;
  std::uint64_t sent_bytes_ = 0;
  std::uint64_t retries_ = 0;
  std::uint64_t dead_lettered_ = 0;
  std::uint64_t dropped_ = 0;
  std::string last_error_;
  std::chrono::milliseconds backoff_now_{0};
  std::optional<SystemClock::time_point> paused_until_;
};

// The `reason` label for sluice_sink_attempts_failed_total: a sink's reason up to its first ':'
// ("write: No space left on device" → "write"), so the label set stays small while the full
// text goes to logs and the dead-letter file.
std::string reason_label(std::string_view reason);

}  // namespace sluice::sinks
