#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "core/event.hpp"
#include "core/route_name.hpp"
#include "core/template.hpp"

// The contract between the delivery engine (SinkWorker, sinks/worker.hpp) and the sinks.
//
// A sink only delivers and classifies: it never sleeps, retries, drops or dead-letters on its
// own. The engine owns the queue in front of each sink, the retry policy (exponential backoff
// with full jitter, honouring retry_after), the dead-letter file and the metrics. An event is
// acknowledged (removed from its queue) only after its sink returned Outcome::ok for it.
namespace sluice::sinks {

// One routed event for one sink: what the engine queues and hands to deliver(). It names the
// first route that sent the event to this sink and the first of the event's channels that route
// matched; they feed the sink's templates ({route}, {channel}), the Kafka `sluice-route` header,
// the dead-letter file and the disk buffer. Both are references, not copies (an interned route
// name and an index into the event's own channel list), so a record is an EventPtr and two
// words: cheap to move through the queue and into a batch.
struct Record {
  static constexpr std::uint32_t kNoChannel = 0xffffffff;

  EventPtr event;
  RouteName route;
  std::uint32_t channel = kNoChannel;  // index into event->channels

  std::string_view channel_name() const {
    return event && channel < event->channels.size() ? event->channels[channel]
                                                     : std::string_view{};
  }
  std::size_t bytes() const { return event ? event->data.size() : 0; }
  // What the sink's templates may refer to besides the event.
  TemplateContext template_context(std::string_view project) const {
    return TemplateContext{route.view(), channel_name(), project};
  }
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
