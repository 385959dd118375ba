#include "daemon/recovery/recovery.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/log.hpp"
#include "core/utc.hpp"

namespace sluice::recovery {

namespace {

// How often the checkpoints are saved (when they changed) and live_until advances. A crash
// loses at most this much progress, which the next start recovers again from Appwrite.
constexpr std::chrono::seconds kCheckpointInterval{1};

}  // namespace

Recovery::Recovery(boost::asio::any_io_executor loop, const std::string& state_dir,
                   Dispatcher& dispatcher, Metrics& metrics, sinks::BlockingPool& pool,
                   Upstream upstream)
    : dispatcher_(dispatcher),
      metrics_(metrics),
      pool_(pool),
      upstream_(std::move(upstream)),
      store_(state_dir,
             [&metrics](std::string_view op) { metrics.checkpoint_errors(op).Increment(); }),
      timer_(loop) {
  restored_ = store_.load();  // a small file, read before the loop runs
  if (restored_) {
    tracker_.restore(*restored_);
    last_saved_ = *restored_;
    log::info(
        "recovery", "checkpoints restored",
        {{"path", store_.path()}, {"resources", std::to_string(restored_->resources.size())}});
  }
  metrics_.checkpoint_resources().Set(static_cast<double>(tracker_.snapshot().resources.size()));
  dispatcher_.set_tracker(&tracker_);
  backfill_ = std::make_unique<BackfillRunner>(loop, dispatcher_, tracker_, metrics_, upstream_);
}

Recovery::~Recovery() = default;

void Recovery::start() {
  backfill_->start();
  if (restored_)
    backfill_->request(std::nullopt, std::nullopt);  // the downtime before this start
}

bool Recovery::live_is_complete() const {
  return upstream_().subscribed && !backfill_->busy() && !dispatcher_.blocked();
}

// A connection that died silently still looks subscribed until the heartbeat misses its pongs,
// and a gap is measured from then, not from the last frame. Claiming less keeps those seconds
// inside the next backfill.
std::chrono::system_clock::duration Recovery::live_lag() const {
  return 2 * std::chrono::duration_cast<std::chrono::system_clock::duration>(
                 dispatcher_.current().config.appwrite.heartbeat) +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(kCheckpointInterval);
}

boost::asio::awaitable<void> Recovery::checkpointer() {
  while (!stopping_) {
    timer_.expires_after(kCheckpointInterval);
    co_await timer_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    if (stopping_)
      break;
    if (live_is_complete())
      tracker_.advance_live(std::chrono::system_clock::now() - live_lag());
    // Named, not a temporary in the co_await: GCC 12 destroys such temporaries twice.
    auto state = tracker_.snapshot();
    co_await save(std::move(state));
  }
}

void Recovery::on_gap(std::chrono::system_clock::time_point from,
                      std::chrono::system_clock::time_point to) {
  log::warn("upstream", "events may be missing: the subscription was down; recovering them",
            {{"from", format_utc_millis(from, "+00:00")}, {"to", format_utc_millis(to, "+00:00")}});
  backfill_->request(from, to);  // it writes the gap markers once it knows the counts
}

void Recovery::restart() {
  backfill_->restart();
}

admin::StatusReport::Recovery Recovery::status() const {
  return backfill_->status();
}

void Recovery::stop() {
  stopping_ = true;
  backfill_->stop();
}

boost::asio::awaitable<void> Recovery::stopped() {
  co_await backfill_->stopped();
  timer_.cancel();
}

State Recovery::snapshot() const {
  return tracker_.snapshot();
}

// Writes `state` unless it is what the file already holds. On the pool: it fsyncs.
boost::asio::awaitable<void> Recovery::save(State state) {
  metrics_.checkpoint_resources().Set(static_cast<double>(state.resources.size()));
  if (last_saved_ && *last_saved_ == state)
    co_return;
  auto job = [store = &store_, &state] { return store->save(state); };
  const bool saved = co_await pool_.run(std::move(job));
  if (!saved)
    co_return;  // logged and counted by the store; the next tick tries again
  metrics_.checkpoint_saves().Increment();
  last_saved_ = std::move(state);
}

}  // namespace sluice::recovery
