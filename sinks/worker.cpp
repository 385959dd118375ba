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
      queue_(config.buffer, RetryPolicy(config.retry, options.random)),
      dead_letter_(config.dead_letter, config.name, pool),
      options_(std::move(options)),
      log_limiter_(10, std::chrono::seconds{60}),
      wake_(loop, SteadyClock::time_point::max()),
      lane_free_(loop, SteadyClock::time_point::max()),
      space_(loop, SteadyClock::time_point::max()),
      finished_(loop, SteadyClock::time_point::max()),
      backoff_timer_(loop) {
  // Created up front so that rates and alerts see a series before the first failure.
  if (metrics_.events_failed) {
    dropped_full_ = &metrics_.events_failed("dropped_full");
    dead_letter_failed_ = &metrics_.events_failed("dead_letter");
  }
  if (metrics_.write_errors) {
    metrics_.write_errors("dead_letter");
    if (buffer_.type == config::BufferConfig::Type::disk)
      metrics_.write_errors("disk_buffer");
  }
  if (metrics_.capacity_events)
    metrics_.capacity_events->Set(static_cast<double>(buffer_.max_events));
  if (metrics_.capacity_bytes)
    metrics_.capacity_bytes->Set(static_cast<double>(buffer_.max_bytes));
  if (buffer_.type == config::BufferConfig::Type::disk)
    open_spool(pool, spool_path(config));
  update_gauges();
}

void SinkWorker::open_spool(BlockingPool& pool, std::string dir) {
  spool::Spool::Options o;
  o.dir = std::move(dir);
  o.segment_bytes = options_.spool_segment_bytes != 0
                        ? options_.spool_segment_bytes
                        : std::clamp<std::uint64_t>(buffer_.max_bytes / 4, 1ull << 20, 16ull << 20);
  o.commit_interval = options_.spool_commit_interval;
  o.on_error = [this](std::string_view reason) {
    if (metrics_.write_errors)
      metrics_.write_errors("disk_buffer").Increment();
    last_error_ = "disk buffer: " + std::string(reason);
    log_failure("disk buffer commit failed; no new records accepted until it writes again", reason,
                spool_ ? spool_->unpersisted() : 0);
  };
  o.on_recovered = [this] {
    log::info("sink", "disk buffer writes again; accepting records", {{"sink", name_}});
    space_.cancel();
  };
  spool_ = std::make_unique<spool::Spool>(loop_, pool, std::move(o));
  if (const auto corrupt = spool_->corrupt(); corrupt > 0) {
    if (metrics_.events_failed)
      metrics_.events_failed("corrupt").Increment(static_cast<double>(corrupt));
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

void SinkWorker::drop_new(std::string_view reason) {
  ++dropped_;
  if (reason == "dropped_full") {
    inc(dropped_full_);
  } else if (metrics_.events_failed) {
    metrics_.events_failed(reason).Increment();
  }
  log_failure("record dropped", reason, 1);
}

SinkWorker::Accept SinkWorker::offer(Record record) {
  if (stopping_) {
    drop_new("stopped");
    return Accept::dropped;
  }
  if (spool_ && !spool_->persisting()) {
    // The disk refuses writes: a record taken now would live in memory only, and the disk
    // buffer promises that what it accepts survives a crash. So the sink is full until a
    // commit succeeds again, and `when_full` decides (evicting older records would not help).
    if (buffer_.when_full == config::BufferConfig::WhenFull::block)
      return Accept::full;
    drop_new("disk_buffer");
    return Accept::dropped;
  }
  const auto admitted = queue_.admit(record.bytes());
  switch (admitted.admission) {
    case DeliveryQueue::Admission::full:
      return Accept::full;
    case DeliveryQueue::Admission::dropped:
      drop_new("dropped_full");
      return Accept::dropped;
    case DeliveryQueue::Admission::queued:
      break;
  }
  if (admitted.evicted > 0) {
    dropped_ += admitted.evicted;
    if (dropped_full_)
      dropped_full_->Increment(static_cast<double>(admitted.evicted));
    log_failure("oldest records dropped", "dropped_full", admitted.evicted);
    advance_spool_head();  // the evicted records may have been the oldest
  }
  // Appended before `queued` is returned; on disk with the next group commit.
  const std::uint64_t seq = spool_ ? spool_->append(record) : 0;
  push(std::move(record), seq);
  return Accept::queued;
}

void SinkWorker::push(Record record, std::uint64_t seq) {
  queue_.push(std::move(record), seq, now());
  update_gauges();
  wake_.cancel();
}

asio::awaitable<void> SinkWorker::wait_for_space() {
  while (!stopping_ && !done_ &&
         (!queue_.has_room_for_blocked() || (spool_ && !spool_->persisting()))) {
    co_await space_.async_wait(wait_token);
  }
}

void SinkWorker::advance_spool_head() {
  if (spool_)
    spool_->set_head(queue_.first_seq().value_or(spool_->next_seq()));
}

void SinkWorker::update_gauges() {
  if (metrics_.queue_events)
    metrics_.queue_events->Set(static_cast<double>(queue_.live_events()));
  if (metrics_.queue_bytes)
    metrics_.queue_bytes->Set(static_cast<double>(queue_.live_bytes()));
}

void SinkWorker::count_failed_attempt(std::string_view reason) {
  if (metrics_.attempts_failed)
    metrics_.attempts_failed(reason_label(reason)).Increment();
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
  while (queue_.lanes() > 0)  // the sink is closed only once no deliver() is outstanding
    co_await lane_free_.async_wait(wait_token);
  co_await finish();
}

asio::awaitable<void> SinkWorker::finish() {
  backoff_now_ = milliseconds{0};
  paused_until_.reset();
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
    } else if (queue_.live_events() > 0) {
      log::info("sink", "stopped with undelivered records; kept in the disk buffer",
                {{"sink", name_}, {"records", std::to_string(queue_.live_events())}});
    }
  } else if (queue_.live_events() > 0) {
    // The memory buffer cannot keep them past the process.
    log::warn("sink", "stopped with undelivered records",
              {{"sink", name_},
               {"records", std::to_string(queue_.live_events())},
               {"bytes", std::to_string(queue_.live_bytes())}});
  }
  done_ = true;
  finished_.cancel();
  space_.cancel();
}

asio::awaitable<void> SinkWorker::backoff(milliseconds delay, bool server_pause) {
  backoff_now_ = delay;
  const auto until = SteadyClock::now() + delay;
  if (server_pause) {
    paused_until_ = wall_now() + delay;
    if (log_limiter_.allow())  // a receiver may ask for a short pause on every request
      log::warn(
          "sink", "paused at the receiver's request; records stay queued",
          {{"sink", name_},
           {"seconds", std::to_string(std::chrono::ceil<std::chrono::seconds>(delay).count())},
           {"queued", std::to_string(queue_.live_events())}});
  }
  for (;;) {
    if (stopping_ && until > deadline_) {
      // Nothing can be sent again before the drain's deadline: the drain ends now rather
      // than idling until then.
      deadline_ = std::min(deadline_, SteadyClock::now());
      break;
    }
    if (SteadyClock::now() >= until)
      break;
    backoff_timer_.expires_at(until);
    co_await backoff_timer_.async_wait(wait_token);  // stop() cancels it to re-check
  }
  backoff_now_ = milliseconds{0};
  paused_until_.reset();
}

asio::awaitable<void> SinkWorker::deliver_loop() {
  queue_.set_shape({sink_->max_batch(), sink_->max_in_flight(), sink_->max_wait()});
  using Kind = DeliveryQueue::Step::Kind;
  for (;;) {
    if (stopping_ && (queue_.live_events() == 0 || SteadyClock::now() >= deadline_))
      break;
    // Lingering is counted on the real clock, which the timers run on.
    const auto step = queue_.next_step(SteadyClock::now(), stopping_);
    if (step.kind == Kind::idle && stopping_ && queue_.lanes() == 0)
      break;  // drained: nothing pending, and no batch out that could retry a record
    switch (step.kind) {
      case Kind::backoff:
        co_await backoff(step.backoff, step.server_pause);
        break;
      case Kind::lanes:
        // Not on wake_: every offer() cancels that, and this wait should end once per batch.
        co_await lane_free_.async_wait(wait_token);
        break;
      case Kind::idle:
        co_await wake_.async_wait(wait_token);
        break;
      case Kind::linger:
        wake_.expires_at(step.until);  // offer() and stop() still wake it early
        co_await wake_.async_wait(wait_token);
        wake_.expires_at(SteadyClock::time_point::max());
        break;
      case Kind::send:
        // Each batch runs as its own coroutine, so with max_in_flight() > 1 the next one can
        // go out while this one waits for its acknowledgement. The lane is given back at the
        // end of deliver_batch(), or here when it threw (resource exhaustion only: its records
        // stay in flight). Not from a destructor: a loop torn down without stop() destroys the
        // coroutine after the worker.
        asio::co_spawn(loop_, deliver_batch(queue_.take_batch(now(), wall_now())),
                       [this](std::exception_ptr failure) {
                         if (failure) {
                           log::error("sink", "a delivery failed", {{"sink", name_}});
                           queue_.abandon_lane();
                           lane_finished();
                         }
                       });
        break;
    }
  }
  while (queue_.lanes() > 0)
    co_await lane_free_.async_wait(wait_token);
}

asio::awaitable<void> SinkWorker::deliver_batch(DeliveryQueue::Batch batch) {
  std::vector<Result> results(batch.records.size());
  try {
    co_await sink_->deliver(std::span<const Record>(batch.records), std::span<Result>(results));
  } catch (const std::exception& e) {
    // A sink must not throw for expected failures; anything else is treated as transient.
    for (auto& r : results)
      r = Result{Outcome::retry, std::string("exception: ") + e.what(), {}};
  }

  std::string retry_reason;
  std::string failed_reason;
  for (const Result& r : results) {
    if (r.outcome == Outcome::ok)
      continue;
    count_failed_attempt(r.reason);
    last_error_ = r.reason;
    (r.outcome == Outcome::retry ? retry_reason : failed_reason) = r.reason;
  }
  // The fates are applied only after the dead-letter write (settle()), so the batch stays in
  // flight, out of drop_oldest's reach, while that is awaited.
  auto verdict = queue_.complete(batch, results, now());
  if (verdict.retried > 0)
    log_failure("delivery failed, will retry", retry_reason, verdict.retried);

  if (!verdict.dead.empty()) {
    log_failure("records dead-lettered", failed_reason, verdict.dead.size());
    if (dead_letter_.enabled()) {
      const auto ec = co_await dead_letter_.write(verdict.dead, wall_now());
      if (ec) {
        if (metrics_.write_errors)
          metrics_.write_errors("dead_letter").Increment();
        log::error("sink", "dead-letter write failed; records lost",
                   {{"sink", name_},
                    {"path", dead_letter_.path()},
                    {"error", ec.message()},
                    {"records", std::to_string(verdict.dead.size())}});
      }
    } else {
      for (const auto& d : verdict.dead) {
        log::warn("sink", "record dead-lettered (no dead_letter file configured)",
                  {{"sink", name_},
                   {"event_id", d.record.event ? d.record.event->id : std::string{}},
                   {"route", std::string(d.record.route.view())},
                   {"reason", d.reason}});
      }
    }
  }

  const auto acked_at = SteadyClock::now();
  for (std::size_t k = 0; k < verdict.fates.size(); ++k) {
    switch (verdict.fates[k]) {
      case DeliveryQueue::Fate::acknowledge: {
        const Event* ev = batch.records[k].event.get();
        if (ev && ev->received != SteadyClock::time_point{} && metrics_.delivery_seconds) {
          metrics_.delivery_seconds->Observe(
              std::chrono::duration<double>(acked_at - ev->received).count());
        }
        ++sent_;
        sent_bytes_ += batch.records[k].bytes();
        inc(metrics_.sent);
        if (metrics_.bytes_sent)
          metrics_.bytes_sent->Increment(static_cast<double>(batch.records[k].bytes()));
        break;
      }
      case DeliveryQueue::Fate::retry:
        ++retries_;
        inc(metrics_.retries);
        break;
      case DeliveryQueue::Fate::dead_letter:
        ++dead_lettered_;
        inc(metrics_.dead_lettered);
        inc(dead_letter_failed_);
        break;
    }
  }
  queue_.settle(std::move(batch), verdict);
  advance_spool_head();
  update_gauges();
  space_.cancel();
  lane_finished();
}

void SinkWorker::lane_finished() {
  lane_free_.cancel();
  wake_.cancel();  // a retried record may be pending again
}

SinkWorker::Stats SinkWorker::stats() const {
  Stats s;
  s.queued_events = queue_.live_events();
  s.queued_bytes = queue_.live_bytes();
  s.sent = sent_;
  s.sent_bytes = sent_bytes_;
  s.capacity_events = buffer_.max_events;
  s.capacity_bytes = buffer_.max_bytes;
  s.failed = dead_lettered_ + dropped_;
  s.unpersisted = queue_.live_events();
  if (spool_) {
    s.spool_synced = spool_->synced();
    s.spool_corrupt = spool_->corrupt();
    s.failed += s.spool_corrupt;
    s.buffer_persisting = spool_->persisting();
    s.unpersisted = std::min(s.unpersisted, spool_->unpersisted());
  }
  s.last_error = last_error_;
  s.retries = retries_;
  s.dead_lettered = dead_lettered_;
  s.dropped = dropped_;
  s.backoff = backoff_now_;
  s.paused_until = paused_until_;
  s.stuck = queue_.stuck(now(), options_.stuck_after);
  return s;
}

}  // namespace sluice::sinks
