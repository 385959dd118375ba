#include "sinks/worker.hpp"

#include <algorithm>
#include <exception>
#include <span>
#include <utility>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace sluice::sinks {

namespace asio = boost::asio;
using std::chrono::milliseconds;

namespace {

constexpr auto wait_token = asio::as_tuple(asio::use_awaitable);

void inc(prometheus::Counter* c) {
  if (c)
    c->Increment();
}

}  // namespace

std::string reason_label(std::string_view reason) {
  auto head = reason.substr(0, reason.find(':'));
  while (!head.empty() && head.front() == ' ')
    head.remove_prefix(1);
  while (!head.empty() && head.back() == ' ')
    head.remove_suffix(1);
  if (head.size() > 40)
    head = head.substr(0, 40);
  if (head.empty())
    return "error";
  std::string label(head);
  std::replace(label.begin(), label.end(), ' ', '_');
  return label;
}

SinkWorker::SinkWorker(asio::any_io_executor loop, std::unique_ptr<Sink> sink,
                       const config::SinkConfig& config, SinkMetrics metrics, BlockingPool& pool,
                       WorkerOptions options)
    : loop_(loop),
      sink_(std::move(sink)),
      name_(config.name),
      buffer_(config.buffer),
      metrics_(std::move(metrics)),
      policy_(config.retry, options.random),
      dead_letter_(config.dead_letter, config.name, pool),
      options_(std::move(options)),
      log_limiter_(10, std::chrono::seconds{60}),
      wake_(loop, SteadyClock::time_point::max()),
      lane_free_(loop, SteadyClock::time_point::max()),
      space_(loop, SteadyClock::time_point::max()),
      finished_(loop, SteadyClock::time_point::max()),
      backoff_timer_(loop) {
  if (metrics_.failed)
    dropped_full_ = &metrics_.failed("dropped_full");
  if (buffer_.type == config::BufferConfig::Type::disk)
    open_spool(pool);
  update_gauges();
}

void SinkWorker::open_spool(BlockingPool& pool) {
  spool::Spool::Options o;
  o.dir = buffer_.dir + "/" + name_;
  o.segment_bytes = options_.spool_segment_bytes != 0
                        ? options_.spool_segment_bytes
                        : std::clamp<std::uint64_t>(buffer_.max_bytes / 4, 1ull << 20, 16ull << 20);
  o.commit_interval = options_.spool_commit_interval;
  o.on_error = [this](std::string_view reason) {
    count_failure("spool");
    last_error_ = "disk buffer: " + std::string(reason);
    log_failure("disk buffer commit failed; records kept in memory, retrying", reason, 0);
  };
  spool_ = std::make_unique<spool::Spool>(loop_, pool, std::move(o));
  if (const auto corrupt = spool_->corrupt(); corrupt > 0) {
    if (metrics_.failed)
      metrics_.failed("corrupt").Increment(static_cast<double>(corrupt));
    log::warn("sink", "corrupt disk buffer records skipped",
              {{"sink", name_}, {"records", std::to_string(corrupt)}, {"dir", buffer_.dir}});
  }
  if (spool_->torn_bytes() > 0) {
    log::warn("sink", "torn tail cut from the disk buffer",
              {{"sink", name_}, {"bytes", std::to_string(spool_->torn_bytes())}});
  }
  auto recovered = spool_->take_recovered();
  for (auto& r : recovered)
    push(std::move(r.record), r.seq);
  if (!recovered.empty()) {
    log::info("sink", "re-queued unacknowledged records from the disk buffer",
              {{"sink", name_}, {"records", std::to_string(recovered.size())}});
  }
}

SinkWorker::~SinkWorker() = default;

SinkWorker::SteadyClock::time_point SinkWorker::now() const {
  return options_.now ? options_.now() : SteadyClock::now();
}

SinkWorker::SystemClock::time_point SinkWorker::wall_now() const {
  return options_.wall_now ? options_.wall_now() : SystemClock::now();
}

bool SinkWorker::fits(std::uint64_t bytes) const {
  if (live_events_ == 0)
    return true;
  if (buffer_.max_events != 0 && live_events_ + 1 > buffer_.max_events)
    return false;
  if (buffer_.max_bytes != 0 && live_bytes_ + bytes > buffer_.max_bytes)
    return false;
  return true;
}

bool SinkWorker::fits_after_evicting_all(std::uint64_t bytes) const {
  if (in_flight_events_ == 0)
    return true;
  if (buffer_.max_events != 0 && in_flight_events_ + 1 > buffer_.max_events)
    return false;
  if (buffer_.max_bytes != 0 && in_flight_bytes_ + bytes > buffer_.max_bytes)
    return false;
  return true;
}

void SinkWorker::drop_new(std::string_view reason) {
  ++dropped_;
  if (reason == "dropped_full" && dropped_full_) {
    dropped_full_->Increment();
  } else {
    count_failure(reason);
  }
  log_failure("record dropped", reason, 1);
}

SinkWorker::Accept SinkWorker::offer(Record record) {
  if (stopping_) {
    drop_new("stopped");
    return Accept::dropped;
  }
  const std::uint64_t bytes = record.bytes();
  if (!fits(bytes)) {
    switch (buffer_.when_full) {
      case config::BufferConfig::WhenFull::block:
        blocked_bytes_ = bytes;
        return Accept::full;
      case config::BufferConfig::WhenFull::drop_newest:
        drop_new("dropped_full");
        return Accept::dropped;
      case config::BufferConfig::WhenFull::drop_oldest: {
        // Records the sink holds right now cannot be taken back: if evicting every other one
        // would still not make room, the new record is the one that goes.
        if (!fits_after_evicting_all(bytes)) {
          drop_new("dropped_full");
          return Accept::dropped;
        }
        std::size_t evicted = 0;
        std::size_t i = 0;
        while (!fits(bytes)) {
          while (i < queue_.size() && queue_[i].state != State::pending)
            ++i;
          if (i == queue_.size())
            break;  // unreachable given the check above
          // Left in place as a finished entry (popped once it reaches the head): erasing it
          // would shift the positions of the batches in flight behind it.
          release(queue_[i]);
          ++evicted;
        }
        pop_done();  // an eviction may leave a finished record at the head
        dropped_ += evicted;
        if (dropped_full_)
          dropped_full_->Increment(static_cast<double>(evicted));
        log_failure("oldest records dropped", "dropped_full", evicted);
        break;
      }
    }
  }
  // Appended before `queued` is returned; on disk with the next group commit.
  const std::uint64_t seq = spool_ ? spool_->append(record) : 0;
  push(std::move(record), seq);
  return Accept::queued;
}

void SinkWorker::push(Record record, std::uint64_t seq) {
  Entry e;
  e.pos = next_pos_++;
  e.seq = seq;
  e.bytes = record.bytes();
  e.record = std::move(record);
  e.enqueued = now();
  live_events_ += 1;
  live_bytes_ += e.bytes;
  queue_.push_back(std::move(e));
  update_gauges();
  wake_.cancel();
}

asio::awaitable<void> SinkWorker::wait_for_space() {
  while (!stopping_ && !done_ && !fits(blocked_bytes_)) {
    co_await space_.async_wait(wait_token);
  }
}

void SinkWorker::release(Entry& entry) {
  if (entry.state == State::done)
    return;
  entry.state = State::done;
  live_events_ -= 1;
  live_bytes_ -= entry.bytes;
  entry.record = Record{};  // let go of the event now, not when the entry reaches the head
}

void SinkWorker::pop_done() {
  while (!queue_.empty() && queue_.front().state == State::done)
    queue_.pop_front();
  advance_spool_head();
}

void SinkWorker::advance_spool_head() {
  if (spool_)
    spool_->set_head(queue_.empty() ? spool_->next_seq() : queue_.front().seq);
}

void SinkWorker::update_gauges() {
  if (metrics_.queue_events)
    metrics_.queue_events->Set(static_cast<double>(live_events_));
  if (metrics_.queue_bytes)
    metrics_.queue_bytes->Set(static_cast<double>(live_bytes_));
}

void SinkWorker::count_failure(std::string_view reason) {
  if (metrics_.failed)
    metrics_.failed(reason_label(reason)).Increment();
}

void SinkWorker::log_failure(std::string_view message, std::string_view reason, std::size_t count) {
  if (!log_limiter_.allow())
    return;
  const auto suppressed = log_limiter_.take_suppressed();
  if (suppressed > 0) {
    log::warn("sink", message,
              {{"sink", name_},
               {"reason", std::string(reason)},
               {"records", std::to_string(count)},
               {"suppressed", std::to_string(suppressed)}});
  } else {
    log::warn(
        "sink", message,
        {{"sink", name_}, {"reason", std::string(reason)}, {"records", std::to_string(count)}});
  }
}

void SinkWorker::start() {
  if (started_)
    return;
  started_ = true;
  asio::co_spawn(loop_, run(), [](std::exception_ptr) {
    // run() catches everything it can recover from; nothing is left to report here.
  });
}

asio::awaitable<void> SinkWorker::stop(SteadyClock::time_point deadline) {
  if (!stopping_ || deadline < deadline_)
    deadline_ = deadline;
  stopping_ = true;
  wake_.cancel();
  backoff_timer_.cancel();  // the backoff re-reads the deadline
  space_.cancel();
  if (!started_)
    start();
  while (!done_)
    co_await finished_.async_wait(wait_token);
}

asio::awaitable<void> SinkWorker::run() {
  try {
    co_await deliver_loop();
  } catch (const std::exception& e) {
    // Only resource exhaustion gets here (sink failures are caught per batch).
    log::error("sink", "delivery loop failed", {{"sink", name_}, {"error", e.what()}});
  }
  while (lanes_ > 0)  // the sink is closed only once no deliver() is outstanding
    co_await lane_free_.async_wait(wait_token);
  co_await finish();
}

asio::awaitable<void> SinkWorker::finish() {
  backoff_now_ = milliseconds{0};
  try {
    co_await sink_->close();
  } catch (const std::exception& e) {
    log::error("sink", "closing the sink failed", {{"sink", name_}, {"error", e.what()}});
  }
  if (spool_) {
    co_await spool_->close();
    if (!spool_->synced()) {
      log::error("sink", "disk buffer could not be committed at stop; recent records may be lost",
                 {{"sink", name_}, {"error", last_error_}});
    } else if (live_events_ > 0) {
      log::info("sink", "stopped with undelivered records; kept in the disk buffer",
                {{"sink", name_}, {"records", std::to_string(live_events_)}});
    }
  } else if (live_events_ > 0) {
    // The memory buffer cannot keep them past the process.
    log::warn("sink", "stopped with undelivered records",
              {{"sink", name_},
               {"records", std::to_string(live_events_)},
               {"bytes", std::to_string(live_bytes_)}});
  }
  done_ = true;
  finished_.cancel();
  space_.cancel();
}

asio::awaitable<void> SinkWorker::backoff(milliseconds delay) {
  backoff_now_ = delay;
  const auto until = SteadyClock::now() + delay;
  for (;;) {
    const auto limit = stopping_ ? std::min(until, deadline_) : until;
    if (SteadyClock::now() >= limit)
      break;
    backoff_timer_.expires_at(limit);
    co_await backoff_timer_.async_wait(wait_token);
  }
  backoff_now_ = milliseconds{0};
}

asio::awaitable<void> SinkWorker::deliver_loop() {
  const std::size_t max_batch = std::max<std::size_t>(1, sink_->max_batch());
  const std::size_t max_lanes = std::max<std::size_t>(1, sink_->max_in_flight());
  const milliseconds linger = sink_->max_wait();
  SteadyClock::time_point linger_until{};
  std::vector<std::uint64_t> positions;

  for (;;) {
    if (stopping_ && (live_events_ == 0 || SteadyClock::now() >= deadline_))
      break;
    if (backoff_next_) {  // a batch asked for a pause: nothing new goes out until it is over
      const milliseconds delay = *backoff_next_;
      backoff_next_.reset();
      co_await backoff(delay);
      continue;
    }
    if (lanes_ == max_lanes) {
      // Not on wake_: every offer() cancels that, and this wait should end once per batch.
      co_await lane_free_.async_wait(wait_token);
      continue;
    }

    // The batch is the first pending records in queue order. Records in flight keep their
    // entries (an eviction leaves a finished entry in place), so a batch refers to them by
    // position while other batches complete and the head is popped.
    positions.clear();
    for (std::size_t i = 0; i < queue_.size() && positions.size() < max_batch; ++i) {
      if (queue_[i].state == State::pending)
        positions.push_back(queue_[i].pos);
    }
    if (positions.empty()) {
      if (stopping_ && lanes_ == 0)
        break;
      co_await wake_.async_wait(wait_token);
      continue;
    }
    // Linger to fill the batch (webhook batch.max_wait): a request per few records would
    // waste the receiver's capacity. Never when stopping: the drain sends what there is.
    // Counted on the real clock from when the loop first saw the batch's first record.
    if (linger > milliseconds{0} && positions.size() < max_batch && !stopping_) {
      if (linger_until == SteadyClock::time_point{})
        linger_until = SteadyClock::now() + linger;
      if (SteadyClock::now() < linger_until) {
        wake_.expires_at(linger_until);  // offer() and stop() still wake it early
        co_await wake_.async_wait(wait_token);
        wake_.expires_at(SteadyClock::time_point::max());
        continue;
      }
    }
    linger_until = {};

    const auto attempt_at = now();
    const auto attempt_wall = wall_now();
    for (const auto pos : positions) {
      Entry& e = at(pos);
      e.state = State::in_flight;
      if (!e.first_attempt) {
        e.first_attempt = attempt_at;
        e.first_attempt_wall = attempt_wall;
      }
      ++e.attempts;
      e.last_attempt_wall = attempt_wall;
      in_flight_events_ += 1;
      in_flight_bytes_ += e.bytes;
    }
    // Each batch runs as its own coroutine, so with max_in_flight() > 1 the next one can go
    // out while this one waits for its acknowledgement; the loop waits for a free lane.
    ++lanes_;
    // The lane is given back at the end of deliver_batch(), or here when it threw (resource
    // exhaustion only: its records stay in flight). Not from a destructor: a loop torn down
    // without stop() destroys the coroutine after the worker.
    asio::co_spawn(loop_, deliver_batch(std::move(positions)), [this](std::exception_ptr failure) {
      if (failure) {
        log::error("sink", "a delivery failed", {{"sink", name_}});
        lane_finished();
      }
    });
  }
  while (lanes_ > 0)
    co_await lane_free_.async_wait(wait_token);
}

asio::awaitable<void> SinkWorker::deliver_batch(std::vector<std::uint64_t> positions) {
  enum class Action { ack, retry, dead };
  std::vector<Record> batch;
  batch.reserve(positions.size());
  for (const auto pos : positions)
    batch.push_back(at(pos).record);
  std::vector<Result> results(positions.size());
  try {
    co_await sink_->deliver(std::span<const Record>(batch), std::span<Result>(results));
  } catch (const std::exception& e) {
    // A sink must not throw for expected failures; anything else is treated as transient.
    for (auto& r : results)
      r = Result{Outcome::retry, std::string("exception: ") + e.what(), {}};
  }

  // Decide every record's fate first; states change only after the dead-letter write, so
  // the batch stays in flight (and out of drop_oldest's reach) while that is awaited.
  const auto finished_at = now();
  std::vector<Action> actions(positions.size(), Action::ack);
  std::vector<DeadLetter> dead;
  std::optional<milliseconds> delay;
  std::size_t retried = 0;
  std::string retry_reason;
  std::string failed_reason;
  for (std::size_t k = 0; k < positions.size(); ++k) {
    const Entry& e = at(positions[k]);
    const Result& r = results[k];
    if (r.outcome == Outcome::ok)
      continue;
    count_failure(r.reason);
    last_error_ = r.reason;
    if (r.outcome == Outcome::failed) {
      actions[k] = Action::dead;
      dead.push_back(
          DeadLetter{e.record, r.reason, e.attempts, e.first_attempt_wall, e.last_attempt_wall});
      failed_reason = r.reason;
      continue;
    }
    const auto d = policy_.next(e.attempts - 1, finished_at - *e.first_attempt, r.retry_after);
    if (d.give_up) {
      actions[k] = Action::dead;
      dead.push_back(DeadLetter{e.record, "retries exhausted: " + r.reason, e.attempts,
                                e.first_attempt_wall, e.last_attempt_wall});
      failed_reason = r.reason;
      continue;
    }
    actions[k] = Action::retry;
    ++retried;
    retry_reason = r.reason;
    // One backoff for the batch: the head-most retry's jittered delay (taking the largest
    // of all would defeat the jitter), raised to any longer delay a server asked for.
    if (!delay) {
      delay = d.delay;
    } else if (r.retry_after) {
      delay = std::max(*delay, d.delay);
    }
  }
  if (retried > 0)
    log_failure("delivery failed, will retry", retry_reason, retried);

  if (!dead.empty()) {
    log_failure("records dead-lettered", failed_reason, dead.size());
    if (dead_letter_.enabled()) {
      const auto ec = co_await dead_letter_.write(dead, wall_now());
      if (ec) {
        count_failure("dead_letter");
        log::error("sink", "dead-letter write failed; records lost",
                   {{"sink", name_},
                    {"path", dead_letter_.path()},
                    {"error", ec.message()},
                    {"records", std::to_string(dead.size())}});
      }
    } else {
      for (const auto& d : dead) {
        log::warn("sink", "record dead-lettered (no dead_letter file configured)",
                  {{"sink", name_},
                   {"event_id", d.record.event ? d.record.event->id : std::string{}},
                   {"route", std::string(d.record.route.view())},
                   {"reason", d.reason}});
      }
    }
  }

  const auto acked_at = SteadyClock::now();
  for (std::size_t k = 0; k < positions.size(); ++k) {
    Entry& e = at(positions[k]);
    in_flight_events_ -= 1;
    in_flight_bytes_ -= e.bytes;
    switch (actions[k]) {
      case Action::ack:
        if (e.record.event && e.record.event->received != SteadyClock::time_point{} &&
            metrics_.delivery_seconds) {
          metrics_.delivery_seconds->Observe(
              std::chrono::duration<double>(acked_at - e.record.event->received).count());
        }
        ++sent_;
        inc(metrics_.sent);
        release(e);
        break;
      case Action::retry:
        e.state = State::pending;
        ++retries_;
        inc(metrics_.retries);
        break;
      case Action::dead:
        ++dead_lettered_;
        inc(metrics_.dead_lettered);
        release(e);
        break;
    }
  }
  pop_done();
  update_gauges();
  space_.cancel();

  if (delay)
    backoff_next_ = std::max(backoff_next_.value_or(milliseconds{0}), *delay);
  lane_finished();
}

void SinkWorker::lane_finished() {
  --lanes_;
  lane_free_.cancel();
  wake_.cancel();  // a retried record may be pending again
}

SinkWorker::Stats SinkWorker::stats() const {
  Stats s;
  s.queued_events = live_events_;
  s.queued_bytes = live_bytes_;
  s.sent = sent_;
  s.failed = dead_lettered_ + dropped_;
  if (spool_) {
    s.spool_synced = spool_->synced();
    s.spool_corrupt = spool_->corrupt();
    s.failed += s.spool_corrupt;
  }
  s.last_error = last_error_;
  s.retries = retries_;
  s.dead_lettered = dead_lettered_;
  s.dropped = dropped_;
  s.backoff = backoff_now_;
  if (live_events_ > 0 && !queue_.empty()) {
    // The head is always a live record between batches: done ones are popped right away.
    const Entry& head = queue_.front();
    const auto t = now();
    if (t - head.enqueued > options_.stuck_after)
      s.stuck = true;
    if (head.first_attempt && t - *head.first_attempt >= policy_.config().max_elapsed) {
      s.stuck = true;
    }
  }
  return s;
}

}  // namespace sluice::sinks
