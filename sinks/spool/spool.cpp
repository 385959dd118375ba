#include "sinks/spool/spool.hpp"

#include <stdexcept>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/log.hpp"

namespace sluice::sinks::spool {

namespace asio = boost::asio;

namespace {
constexpr auto wait_token = asio::as_tuple(asio::use_awaitable);
constexpr std::chrono::seconds kRetryDelay{1};
}  // namespace

// One commit's input and outcome; shared between the committer and its pool job.
struct Spool::Batch {
  std::string bytes;
  std::vector<SegmentLog::Frame> frames;
  std::uint64_t head = 0;
  std::size_t written = 0;
  std::error_code ec;
  std::string stage;  // where it failed: write, fsync, head
  std::size_t segments = 0;
};

Spool::Spool(asio::any_io_executor loop, BlockingPool& pool, Options options)
    : loop_(loop),
      pool_(pool),
      options_(std::move(options)),
      log_(std::make_shared<SegmentLog>(options_.dir, options_.segment_bytes)),
      timer_(loop),
      idle_(loop, std::chrono::steady_clock::time_point::max()) {
  Recovery rec;
  if (const auto ec = log_->open(rec)) {
    throw std::runtime_error("disk buffer " + options_.dir + ": " + ec.message());
  }
  corrupt_ = rec.corrupt;
  torn_bytes_ = rec.torn_bytes;
  head_ = durable_head_ = rec.head;
  next_seq_ = rec.next_seq;
  segments_ = log_->segment_count();
  const auto steady_now = std::chrono::steady_clock::now();
  const auto wall_now = std::chrono::system_clock::now();
  recovered_.reserve(rec.records.size());
  for (auto& r : rec.records) {
    auto decoded = decode_body(r.body, steady_now, wall_now);
    if (!decoded) {
      ++corrupt_;
      continue;
    }
    recovered_.push_back(std::move(*decoded));
  }
}

Spool::~Spool() = default;

std::vector<DecodedRecord> Spool::take_recovered() {
  return std::exchange(recovered_, {});
}

std::uint64_t Spool::append(const Record& record) {
  const std::uint64_t seq = next_seq_++;
  // The wall time the event was received, so its age survives a restart.
  auto received_wall = std::chrono::system_clock::now();
  if (record.event && record.event->received != std::chrono::steady_clock::time_point{}) {
    const auto age = std::chrono::steady_clock::now() - record.event->received;
    if (age > std::chrono::steady_clock::duration::zero())
      received_wall -= std::chrono::duration_cast<std::chrono::system_clock::duration>(age);
  }
  const auto bytes = append_frame(pending_, seq, record, received_wall);
  pending_frames_.push_back(SegmentLog::Frame{seq, static_cast<std::uint32_t>(bytes)});
  kick();
  return seq;
}

void Spool::set_head(std::uint64_t head) {
  if (head <= head_)
    return;
  head_ = head;
  kick();
}

void Spool::trim_acknowledged() {
  // Records acknowledged before they reached the files need never be written: after a crash
  // they would not be delivered again anyway. Without this, a disk that keeps failing while
  // the sink keeps acknowledging would grow `pending_` without bound, past max_bytes.
  std::size_t frames = 0;
  std::size_t bytes = 0;
  while (frames < pending_frames_.size() && pending_frames_[frames].seq < head_)
    bytes += pending_frames_[frames++].bytes;
  if (frames == 0)
    return;
  pending_.erase(0, bytes);
  pending_frames_.erase(pending_frames_.begin(),
                        pending_frames_.begin() + static_cast<std::ptrdiff_t>(frames));
}

bool Spool::has_work() const {
  return !pending_frames_.empty() || head_ != durable_head_ || unsynced_;
}

void Spool::kick() {
  if (running_ || !has_work())
    return;
  running_ = true;
  asio::co_spawn(loop_, commit_loop(), asio::detached);
}

asio::awaitable<void> Spool::commit_loop() {
  while (has_work()) {
    const auto now = std::chrono::steady_clock::now();
    const auto earliest = last_commit_ + options_.commit_interval;
    if (!closing_ && now < earliest) {
      timer_.expires_at(earliest);
      co_await timer_.async_wait(wait_token);
      continue;
    }
    last_commit_ = now;
    trim_acknowledged();
    auto batch = std::make_shared<Batch>();
    batch->bytes.swap(pending_);
    batch->frames.swap(pending_frames_);
    pending_.swap(spare_bytes_);
    pending_frames_.swap(spare_frames_);
    batch->head = head_;
    auto job = [log = log_, batch] {
      Batch& b = *batch;
      // The head and the reclaim do not depend on the frames (every frame of the batch is at
      // or above its head), so a failed write still lets them through: on a full disk, the
      // segments the sink has caught up with are deleted, and that is what frees the space.
      const auto write_ec = log->append(b.bytes, b.frames, b.written);
      if ((b.ec = log->sync())) {
        b.stage = "fsync";
      } else if ((b.ec = log->write_head(b.head))) {
        b.stage = "head";
      } else {
        log->reclaim(b.head);
        if (write_ec) {
          b.ec = write_ec;
          b.stage = "write";
        }
      }
      b.segments = log->segment_count();
    };
    in_commit_ = true;
    committing_frames_ = batch->frames.size();
    co_await pool_.run(std::move(job));
    in_commit_ = false;
    committing_frames_ = 0;
    ++commits_;
    segments_ = batch->segments;
    if (!batch->ec) {
      batch->bytes.clear();
      batch->frames.clear();
      spare_bytes_.swap(batch->bytes);
      spare_frames_.swap(batch->frames);
      durable_head_ = batch->head;
      unsynced_ = false;
      if (std::exchange(failing_, false) && options_.on_recovered)
        options_.on_recovered();
      continue;
    }
    failing_ = true;
    // Frames that reached the files are not appended again; the others go back in front.
    std::size_t written_bytes = 0;
    for (std::size_t i = 0; i < batch->written; ++i)
      written_bytes += batch->frames[i].bytes;
    if (batch->written < batch->frames.size()) {
      batch->bytes.erase(0, written_bytes);
      batch->bytes.append(pending_);
      pending_ = std::move(batch->bytes);
      batch->frames.erase(batch->frames.begin(),
                          batch->frames.begin() + static_cast<std::ptrdiff_t>(batch->written));
      batch->frames.insert(batch->frames.end(), pending_frames_.begin(), pending_frames_.end());
      pending_frames_ = std::move(batch->frames);
    }
    if (batch->stage == "write") {
      durable_head_ = batch->head;  // written after the failed write: see the job above
    } else {
      unsynced_ = true;  // a frame may have been written without its fdatasync
    }
    const std::string reason = batch->stage + ": " + batch->ec.message();
    if (options_.on_error)
      options_.on_error(reason);
    if (closing_)
      break;  // one attempt at close: what is left is reported by the caller
    timer_.expires_after(kRetryDelay);
    co_await timer_.async_wait(wait_token);
  }
  running_ = false;
  idle_.cancel();
}

asio::awaitable<void> Spool::close() {
  closing_ = true;
  timer_.cancel();
  kick();
  while (running_)
    co_await idle_.async_wait(wait_token);
}

}  // namespace sluice::sinks::spool
