#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <vector>

#include "config/config.hpp"
#include "sinks/dead_letter.hpp"
#include "sinks/retry_policy.hpp"
#include "sinks/sink.hpp"

// The policy of one sink's bounded queue, as plain code: no I/O, no coroutines, no timers; the
// current time comes in as arguments. Owned by the sink's SinkWorker (sinks/worker.hpp), which
// is the coroutine shell around it, and used on the daemon's event loop only.
//
// It decides admission (`buffer.max_events` / `max_bytes` and `when_full`: block, drop_newest,
// or drop_oldest evicting the oldest records not in flight), batching (the first pending records
// in queue order, up to the sink's max_batch(), in up to max_in_flight() batches at once,
// lingering up to max_wait() to fill a batch) and the fate of every record of a finished batch:
// ok is acknowledged, retry goes back to pending (ahead of the records behind it) after a
// backoff, failed and retries past `retry.max_elapsed` are dead-lettered. A retry_after from
// the server pauses the whole sink for that long (nothing is sent; the queue fills and
// `when_full` applies), and the pauses do not count against a record's max_elapsed. Records leave
// the front in queue order, so the disk spool's head only moves over an acknowledged prefix.
//
// A batch takes its records out of the queue for the attempt (moved, never copied) and gives
// the retried ones back; the entries stay in place, in flight, so positions stay valid while
// other batches finish and the front is popped.
namespace sluice::sinks {

class DeliveryQueue {
 public:
  using SteadyTime = std::chrono::steady_clock::time_point;
  using WallTime = std::chrono::system_clock::time_point;

  // What the sink asks for (Sink::max_batch(), max_in_flight(), max_wait()).
  struct Shape {
    std::size_t max_batch = 1;
    std::size_t max_in_flight = 1;
    std::chrono::milliseconds max_wait{0};
  };

  enum class Admission { queued, dropped, full };
  struct Admitted {
    Admission admission = Admission::queued;
    std::size_t evicted = 0;  // drop_oldest: records dropped to make room (when queued)
  };

  // What the delivery loop should do next.
  struct Step {
    enum class Kind {
      send,     // take_batch() now
      backoff,  // a finished batch asked for a pause: wait `backoff`, then ask again
      lanes,    // max_in_flight() batches are out: wait for one to finish
      idle,     // nothing pending: wait for a record (or a retried one)
      linger,   // wait until `until` (or a new record) to fill the batch
    };
    Kind kind = Kind::idle;
    std::chrono::milliseconds backoff{0};
    SteadyTime until{};
    bool server_pause = false;  // backoff: the server asked for this wait (retry_after)
  };

  // The records handed to the sink for one attempt, in queue order. The caller keeps it for
  // the attempt and gives it back to complete() and settle().
  struct Batch {
    std::vector<std::uint64_t> positions;  // in the queue, stable while the batch is out
    std::vector<Record> records;           // what the sink gets: std::span<const Record>
  };

  enum class Fate { acknowledge, retry, dead_letter };

  // The decision on a finished batch, before it is applied (see complete()).
  struct Verdict {
    std::vector<Fate> fates;       // one per record of the batch
    std::vector<DeadLetter> dead;  // the dead-lettered records, in batch order
    std::size_t retried = 0;
    // The batch's backoff: the head-most retry's jittered delay (taking the largest of all
    // would defeat the jitter), raised to any longer delay a server asked for.
    std::optional<std::chrono::milliseconds> backoff;
    bool server_pause = false;  // a server asked for the backoff (retry_after)
    SteadyTime decided_at{};    // when complete() ran: a server pause starts there
  };

  // The shape is one record, one batch at a time, until set_shape().
  DeliveryQueue(config::BufferConfig limits, RetryPolicy policy);
  // The worker reads the shape from its sink when delivery starts.
  void set_shape(Shape shape);

  // Admission of a record of `bytes` (nothing is queued yet). An empty queue takes any record,
  // however large. When full: block answers `full` and remembers `bytes` for has_room_for_
  // blocked(); drop_newest answers `dropped`; drop_oldest evicts the oldest pending records
  // until it fits (`queued`), or answers `dropped` if the records in flight alone leave no
  // room. On `queued` the caller push()es the record.
  Admitted admit(std::uint64_t bytes);
  // Queues `record` at the back; `seq` is its number in the disk spool (0 without one). Limits
  // do not apply: admit() decided, or the record was accepted by a previous run.
  void push(Record record, std::uint64_t seq, SteadyTime now);
  // Whether admit() would now take the record it last answered `full` for.
  bool has_room_for_blocked() const { return fits(blocked_bytes_); }

  // What to do next, at `now` on the clock the caller's timers run on. `draining`: the worker
  // is stopping, so it sends what there is without lingering.
  Step next_step(SteadyTime now, bool draining);
  // Takes the first pending records (up to max_batch) out for an attempt started at `now` /
  // `wall`: they are in flight until settle(). Call after next_step() answered `send`.
  Batch take_batch(SteadyTime now, WallTime wall);

  // Decides every record's fate from the sink's `results` (one per record) at `now`, and moves
  // the dead-lettered records into the verdict. Changes nothing else: the batch stays in flight,
  // out of drop_oldest's reach, until settle() (the caller writes the dead letters between).
  Verdict complete(Batch& batch, std::span<const Result> results, SteadyTime now);
  // Applies `verdict`: acknowledged and dead-lettered records leave the queue, retried ones are
  // pending again in their place, the front is popped over finished records and the lane is
  // free. Afterwards first_seq() tells how far the spool's head may move.
  void settle(Batch batch, const Verdict& verdict);
  // A batch that never reached complete() (its coroutine failed): the lane is free, its
  // records stay in flight and count as queued until the process ends.
  void abandon_lane();

  // The spool sequence number of the oldest record still queued; nullopt when empty (every
  // record spooled so far is acknowledged).
  std::optional<std::uint64_t> first_seq() const;

  std::size_t live_events() const { return live_events_; }  // queued, in flight included
  std::uint64_t live_bytes() const { return live_bytes_; }
  std::size_t in_flight_events() const { return in_flight_events_; }
  std::uint64_t in_flight_bytes() const { return in_flight_bytes_; }
  std::size_t lanes() const { return lanes_; }  // batches out now
  // The oldest record waited longer than `stuck_after`, or has been failing past max_elapsed.
  bool stuck(SteadyTime now, std::chrono::steady_clock::duration stuck_after) const;

 private:
  enum class State { pending, in_flight, done };

  struct Entry {
    Record record;  // empty while in flight (the batch holds it) and once done
    State state = State::pending;
    std::uint64_t bytes = 0;
    SteadyTime enqueued{};
    std::optional<SteadyTime> first_attempt;
    std::chrono::steady_clock::duration paused_before{};  // paused_ at the first attempt
    WallTime first_attempt_wall{};
    WallTime last_attempt_wall{};
    std::uint32_t attempts = 0;
    std::uint64_t seq = 0;  // position in the disk spool
    std::uint64_t pos = 0;  // position in queue_ since the start: stable while others pop
  };

  Entry& at(std::uint64_t pos) { return queue_[pos - queue_.front().pos]; }
  bool fits(std::uint64_t bytes) const;
  bool fits_after_evicting_all(std::uint64_t bytes) const;
  std::size_t pending_up_to(std::size_t limit) const;
  void release(Entry& entry);  // leaves the live count: acknowledged, dead-lettered or evicted
  void pop_done();
  // How long `entry` has been failing at `now`: since its first attempt, minus the server
  // pauses granted since.
  std::chrono::steady_clock::duration failing_for(const Entry& entry, SteadyTime now) const;

  config::BufferConfig limits_;
  Shape shape_;
  RetryPolicy policy_;

  std::deque<Entry> queue_;
  std::uint64_t next_pos_ = 0;
  std::size_t live_events_ = 0;  // entries not done
  std::uint64_t live_bytes_ = 0;
  std::size_t in_flight_events_ = 0;  // handed to the sink now: drop_oldest cannot evict them
  std::uint64_t in_flight_bytes_ = 0;
  std::uint64_t blocked_bytes_ = 0;  // size of the record admit() last refused with `full`
  std::size_t lanes_ = 0;
  std::optional<std::chrono::milliseconds> backoff_;  // asked for by a retried batch
  bool backoff_server_ = false;                       // ... by a server (retry_after)
  // Server pauses granted so far, overlapping ones counted once, and when the last one ends.
  std::chrono::steady_clock::duration paused_{};
  SteadyTime pause_end_{};
  SteadyTime linger_until_{};  // unset: not lingering
};

}  // namespace sluice::sinks
