#include "sinks/delivery_queue.hpp"

#include <algorithm>
#include <string>
#include <utility>

namespace sluice::sinks {

using std::chrono::milliseconds;

DeliveryQueue::DeliveryQueue(config::BufferConfig limits, RetryPolicy policy)
    : limits_(std::move(limits)), policy_(std::move(policy)) {}

void DeliveryQueue::set_shape(Shape shape) {
  shape_ = shape;
  shape_.max_batch = std::max<std::size_t>(1, shape_.max_batch);
  shape_.max_in_flight = std::max<std::size_t>(1, shape_.max_in_flight);
}

bool DeliveryQueue::fits(std::uint64_t bytes) const {
  if (live_events_ == 0)
    return true;
  if (limits_.max_events != 0 && live_events_ + 1 > limits_.max_events)
    return false;
  if (limits_.max_bytes != 0 && live_bytes_ + bytes > limits_.max_bytes)
    return false;
  return true;
}

bool DeliveryQueue::fits_after_evicting_all(std::uint64_t bytes) const {
  if (in_flight_events_ == 0)
    return true;
  if (limits_.max_events != 0 && in_flight_events_ + 1 > limits_.max_events)
    return false;
  if (limits_.max_bytes != 0 && in_flight_bytes_ + bytes > limits_.max_bytes)
    return false;
  return true;
}

DeliveryQueue::Admitted DeliveryQueue::admit(std::uint64_t bytes) {
  if (fits(bytes))
    return {};
  switch (limits_.when_full) {
    case config::BufferConfig::WhenFull::block:
      blocked_bytes_ = bytes;
      return {Admission::full, 0};
    case config::BufferConfig::WhenFull::drop_newest:
      return {Admission::dropped, 0};
    case config::BufferConfig::WhenFull::drop_oldest:
      break;
  }
  // Records the sink holds right now cannot be taken back: if evicting every other one would
  // still not make room, the new record is the one that goes.
  if (!fits_after_evicting_all(bytes))
    return {Admission::dropped, 0};
  std::size_t evicted = 0;
  for (std::size_t i = 0; i < queue_.size() && !fits(bytes); ++i) {
    // Left in place as a finished entry (popped once it reaches the front): erasing it would
    // shift the positions of the batches in flight behind it.
    if (queue_[i].state == State::pending) {
      release(queue_[i]);
      ++evicted;
    }
  }
  pop_done();  // an eviction may leave a finished record at the front
  return {Admission::queued, evicted};
}

void DeliveryQueue::push(Record record, std::uint64_t seq, SteadyTime now) {
  Entry e;
  e.pos = next_pos_++;
  e.seq = seq;
  e.bytes = record.bytes();
  e.record = std::move(record);
  e.enqueued = now;
  live_events_ += 1;
  live_bytes_ += e.bytes;
  queue_.push_back(std::move(e));
}

std::size_t DeliveryQueue::pending_up_to(std::size_t limit) const {
  std::size_t n = 0;
  for (std::size_t i = 0; i < queue_.size() && n < limit; ++i) {
    if (queue_[i].state == State::pending)
      ++n;
  }
  return n;
}

DeliveryQueue::Step DeliveryQueue::next_step(SteadyTime now, bool draining) {
  if (backoff_) {  // nothing new goes out until the pause is over
    const Step step{Step::Kind::backoff, *backoff_, {}, backoff_server_};
    backoff_.reset();
    backoff_server_ = false;
    return step;
  }
  if (lanes_ == shape_.max_in_flight)
    return {Step::Kind::lanes, {}, {}};
  const std::size_t pending = pending_up_to(shape_.max_batch);
  if (pending == 0)
    return {Step::Kind::idle, {}, {}};
  // Linger to fill the batch (webhook batch.max_wait): a request per few records would waste
  // the receiver's capacity. Never when draining: the drain sends what there is. Counted from
  // when the batch's first record was first seen here.
  if (shape_.max_wait > milliseconds{0} && pending < shape_.max_batch && !draining) {
    if (linger_until_ == SteadyTime{})
      linger_until_ = now + shape_.max_wait;
    if (now < linger_until_)
      return {Step::Kind::linger, {}, linger_until_};
  }
  linger_until_ = {};
  return {Step::Kind::send, {}, {}};
}

DeliveryQueue::Batch DeliveryQueue::take_batch(SteadyTime now, WallTime wall) {
  Batch batch;
  for (std::size_t i = 0; i < queue_.size() && batch.positions.size() < shape_.max_batch; ++i) {
    Entry& e = queue_[i];
    if (e.state != State::pending)
      continue;
    e.state = State::in_flight;
    if (!e.first_attempt) {
      e.first_attempt = now;
      e.paused_before = paused_;
      e.first_attempt_wall = wall;
    }
    ++e.attempts;
    e.last_attempt_wall = wall;
    in_flight_events_ += 1;
    in_flight_bytes_ += e.bytes;
    batch.positions.push_back(e.pos);
    batch.records.push_back(std::move(e.record));
  }
  ++lanes_;
  return batch;
}

DeliveryQueue::Verdict DeliveryQueue::complete(Batch& batch, std::span<const Result> results,
                                               SteadyTime now) {
  Verdict verdict;
  verdict.decided_at = now;
  verdict.fates.assign(batch.positions.size(), Fate::acknowledge);
  for (std::size_t k = 0; k < batch.positions.size(); ++k) {
    const Entry& e = at(batch.positions[k]);
    const Result& r = results[k];
    if (r.outcome == Outcome::ok)
      continue;
    std::string reason;
    if (r.outcome == Outcome::failed) {
      reason = r.reason;
    } else {
      const auto d = policy_.next(e.attempts - 1, failing_for(e, now), r.retry_after);
      if (d.give_up) {
        reason = "retries exhausted: " + r.reason;
      } else {
        verdict.fates[k] = Fate::retry;
        ++verdict.retried;
        if (!verdict.backoff) {
          verdict.backoff = d.delay;
        } else if (d.server_pause) {
          verdict.backoff = std::max(*verdict.backoff, d.delay);
        }
        verdict.server_pause = verdict.server_pause || d.server_pause;
        continue;
      }
    }
    verdict.fates[k] = Fate::dead_letter;
    verdict.dead.push_back(DeadLetter{std::move(batch.records[k]), std::move(reason), e.attempts,
                                      e.first_attempt_wall, e.last_attempt_wall});
  }
  return verdict;
}

void DeliveryQueue::settle(Batch batch, const Verdict& verdict) {
  for (std::size_t k = 0; k < batch.positions.size(); ++k) {
    Entry& e = at(batch.positions[k]);
    in_flight_events_ -= 1;
    in_flight_bytes_ -= e.bytes;
    if (verdict.fates[k] == Fate::retry) {
      e.state = State::pending;
      e.record = std::move(batch.records[k]);
    } else {
      release(e);
    }
  }
  pop_done();
  if (verdict.backoff) {
    backoff_ = std::max(backoff_.value_or(milliseconds{0}), *verdict.backoff);
    backoff_server_ = backoff_server_ || verdict.server_pause;
  }
  if (verdict.server_pause && verdict.backoff) {
    // Only the part not already covered by an earlier pause is added, so two batches that
    // hear the same Retry-After do not count it twice.
    const auto end = verdict.decided_at + *verdict.backoff;
    if (end > pause_end_) {
      paused_ += end - std::max(verdict.decided_at, pause_end_);
      pause_end_ = end;
    }
  }
  --lanes_;
}

std::chrono::steady_clock::duration DeliveryQueue::failing_for(const Entry& entry,
                                                               SteadyTime now) const {
  if (!entry.first_attempt)
    return {};
  const auto failing = (now - *entry.first_attempt) - (paused_ - entry.paused_before);
  return std::max(failing, std::chrono::steady_clock::duration::zero());
}

void DeliveryQueue::abandon_lane() {
  --lanes_;
}

void DeliveryQueue::release(Entry& entry) {
  if (entry.state == State::done)
    return;
  entry.state = State::done;
  live_events_ -= 1;
  live_bytes_ -= entry.bytes;
  entry.record = Record{};  // let go of the event now, not when the entry reaches the front
}

void DeliveryQueue::pop_done() {
  while (!queue_.empty() && queue_.front().state == State::done)
    queue_.pop_front();
}

std::optional<std::uint64_t> DeliveryQueue::first_seq() const {
  if (queue_.empty())
    return std::nullopt;
  return queue_.front().seq;
}

bool DeliveryQueue::stuck(SteadyTime now, std::chrono::steady_clock::duration stuck_after) const {
  if (live_events_ == 0 || queue_.empty())
    return false;
  // The front is always a live record between calls: finished ones are popped right away.
  const Entry& front = queue_.front();
  if (now - front.enqueued > stuck_after)
    return true;
  return front.first_attempt && failing_for(front, now) >= policy_.config().max_elapsed;
}

}  // namespace sluice::sinks
