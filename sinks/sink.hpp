#pragma once

#include <chrono>
#include <optional>
#include <span>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "core/event.hpp"

// The contract between the delivery engine (SinkWorker, sinks/worker.hpp) and the sinks.
//
// A sink only delivers and classifies: it never sleeps, retries, drops or dead-letters on its
// own. The engine owns the queue in front of each sink, the retry policy (exponential backoff
// with full jitter, honouring retry_after), the dead-letter file and the metrics. An event is
// acknowledged (removed from its queue) only after its sink returned Outcome::ok for it.
namespace sluice::sinks {

// One routed event for one sink. The route and channel are the first route that sent the
// event to this sink and the first of the event's channels that route matched; they feed the
// sink's templates ({route}, {channel}) and the Kafka `sluice-route` header.
struct Record {
  EventPtr event;
  std::string route;
  std::string channel;
  std::size_t bytes() const { return event ? event->data.size() : 0; }
};

enum class Outcome {
  ok,      // delivered and durable as the sink's policy defines: acknowledge
  retry,   // transient (connection refused, 5xx, disk full): try again later
  failed,  // permanent (4xx, message too large): dead-letter with `reason`
};

struct Result {
  Outcome outcome = Outcome::ok;
  std::string reason;  // short, for logs, the dead-letter file and the `reason` metric label
  std::optional<std::chrono::milliseconds> retry_after;  // server-requested delay, if any
};

// Implemented once per sink type (sinks/file, sinks/kafka, sinks/webhook). Owned by its
// SinkWorker and called only from the worker's coroutine on the daemon's event loop; a sink
// that must block (fsync, librdkafka) does that work off the loop and resumes on it.
class Sink {
 public:
  virtual ~Sink() = default;

  // The most records the worker may hand to one deliver() call.
  virtual std::size_t max_batch() const { return 1; }

  // How many deliver() calls the worker may have outstanding at once, each with the next
  // records in queue order. Above 1 the sink must take concurrent calls and keep their order
  // (the Kafka producer does: it queues per partition in call order).
  virtual std::size_t max_in_flight() const { return 1; }

  // How long the worker may hold pending records back to fill a batch: it calls deliver()
  // once max_batch() records are pending or the oldest has waited this long (webhook
  // `batch.max_wait`). Zero: deliver whatever is pending at once.
  virtual std::chrono::milliseconds max_wait() const { return std::chrono::milliseconds{0}; }

  // Delivers `batch` (1..max_batch() records, in queue order) and sets one Result per record
  // (`results` has the same size). Must not throw for expected failures.
  virtual boost::asio::awaitable<void> deliver(std::span<const Record> batch,
                                               std::span<Result> results) = 0;

  // Flushes and releases what the sink holds (files, connections). Called once, after the last
  // deliver(); must finish promptly.
  virtual boost::asio::awaitable<void> close() { co_return; }
};

}  // namespace sluice::sinks
