#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/metrics.hpp"
#include "daemon/admin/status.hpp"
#include "daemon/dispatcher.hpp"
#include "daemon/recovery/backfill.hpp"
#include "daemon/recovery/checkpoint.hpp"
#include "daemon/recovery/checkpoint_store.hpp"
#include "sinks/blocking_pool.hpp"

// Gap recovery as the daemon runs it: the checkpoint tracker, its file in state_dir, the
// backfill runner, and the checkpointer that advances live_until and saves the file once a
// second. The App creates it only with backfill.enabled, feeds it gaps, reloads and shutdown,
// and asks it nothing else; what is delivered, listed and saved is decided here and below.
//
// Owned by the App; runs on the daemon's event loop (the file is read at construction, before
// the loop runs, and written on the blocking pool).
namespace sluice::recovery {

class Recovery {
 public:
  // Whether the primary connection is subscribed now, and the server version it saw.
  using Upstream = std::function<BackfillRunner::Upstream()>;

  // Restores what the previous run saved, if anything; an unusable file or state_dir is logged
  // and counted by the store, and recovery goes on without it. Installs the tracker in
  // `dispatcher`, which must outlive this.
  Recovery(boost::asio::any_io_executor loop, const std::string& state_dir, Dispatcher& dispatcher,
           Metrics& metrics, sinks::BlockingPool& pool, Upstream upstream);
  ~Recovery();
  Recovery(const Recovery&) = delete;
  Recovery& operator=(const Recovery&) = delete;

  // Starts the backfill runner, with the downtime before this start when checkpoints were
  // restored.
  void start();
  // Every kCheckpointInterval until stop(): advances live_until while live delivery is
  // complete, and saves the checkpoints when they changed. The App runs it in the background.
  boost::asio::awaitable<void> checkpointer();

  // The subscription was down from `from` to `to`: the backfill lists it and then writes the
  // gap markers with its counts.
  void on_gap(std::chrono::system_clock::time_point from, std::chrono::system_clock::time_point to);
  // The configuration changed: a backfill in progress lists again under the new routes.
  void restart();
  admin::StatusReport::Recovery status() const;

  // Shutdown, in this order: stop() (no new requests or events); stopped() (the backfill runner
  // has ended and the checkpointer's timer is cancelled; a save the checkpointer has started
  // still runs, so the caller awaits the checkpointer() task itself before its own save());
  // snapshot() before the sinks drain; and save() of what the drain left claimable.
  void stop();
  boost::asio::awaitable<void> stopped();
  State snapshot() const;
  boost::asio::awaitable<void> save(State state);

 private:
  // Whether everything the subscription delivered has been offered to the sinks.
  bool live_is_complete() const;
  // How far behind now live_until stays (see live_is_complete's caller).
  std::chrono::system_clock::duration live_lag() const;

  Dispatcher& dispatcher_;
  Metrics& metrics_;
  sinks::BlockingPool& pool_;
  Upstream upstream_;
  CheckpointStore store_;
  CheckpointTracker tracker_;
  std::optional<State> restored_;
  std::optional<State> last_saved_;  // what the file holds
  boost::asio::steady_timer timer_;
  std::unique_ptr<BackfillRunner> backfill_;
  bool stopping_ = false;
};

}  // namespace sluice::recovery
