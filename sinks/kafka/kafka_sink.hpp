#pragma once

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "config/config.hpp"
#include "sinks/blocking_pool.hpp"
#include "sinks/kafka/kafka_config.hpp"
#include "sinks/sink.hpp"

// The Kafka sink on librdkafka's C API: an idempotent producer with acks=all
// and the Java-compatible murmur2 partitioner by default. value = Event::data unchanged (not
// copied: librdkafka points into the event, which the batch keeps alive until its delivery
// report), key from the `key` template (absent or empty → null key), topic from the `topic`
// template, headers sluice-event-id, sluice-event, sluice-route, appwrite-project,
// appwrite-timestamp and the configured extra `headers`.
//
// Owned by its SinkWorker; deliver() and close() are called from the worker's coroutines on the
// event loop, up to max_in_flight() deliver() calls at once, close() after the last. deliver()
// renders and produces the whole batch on the loop (rd_kafka_producev never blocks: a full local
// queue is reported, not waited for), then suspends until every delivery report is in. Delivery
// reports are served by a dedicated poll thread owned by the sink; the last one of a batch posts
// the completion back to the loop. close() flushes (bounded) and destroys the producer on the
// BlockingPool.
//
// Each deliver() is bounded by librdkafka's message.timeout.ms (default here 15 s, below the
// daemon's drain grace; `properties` may change it). After a fatal idempotence error the
// producer is rebuilt before the next batch; the affected records are retried.
namespace sluice::sinks {

// How a librdkafka error (from produce or a delivery report) is handled: NO_ERROR → ok; the
// local queue being full → retry "queue_full"; errors that a retry cannot cure (unknown
// topic/partition, message too large, authorization, invalid message or topic, unsupported
// format) → failed; everything else (transport, timeouts, leader changes, broker down) → retry.
// The reason is "<ERROR_NAME>: <description>", so the metric label is the error's name.
Result classify_kafka_error(rd_kafka_resp_err_t err);

struct KafkaSinkOptions {
  std::size_t max_batch = 1000;
  // Batches handed over while earlier ones await their reports: the next records reach
  // librdkafka at once instead of waiting a round trip, which halves the latency at a steady
  // rate. Their order is kept: librdkafka queues each partition's messages in call order.
  std::size_t max_in_flight = 4;
  std::chrono::milliseconds close_timeout{10000};  // how long close() flushes
};

class KafkaSink final : public Sink {
 public:
  using Options = KafkaSinkOptions;

  // What one record turns into; exposed for tests.
  struct Message {
    std::string topic;
    std::optional<std::string> key;
    std::vector<std::pair<std::string, std::string>> headers;
  };

  // Creates the producer (no network I/O happens before the first message). Returns nullptr
  // with `error` set when librdkafka refuses the configuration.
  static std::unique_ptr<KafkaSink> create(const KafkaSinkConfig& config, std::string project,
                                           BlockingPool& pool, boost::asio::any_io_executor loop,
                                           std::string& error, Options options = {});

  // The librdkafka properties the producer is built with: sluice's defaults, then the
  // configuration's `compression` and `properties` (which win).
  static std::vector<std::pair<std::string, std::string>> producer_properties(
      const KafkaSinkConfig& config);

  ~KafkaSink() override;
  KafkaSink(const KafkaSink&) = delete;
  KafkaSink& operator=(const KafkaSink&) = delete;

  std::size_t max_batch() const override { return options_.max_batch; }
  std::size_t max_in_flight() const override { return options_.max_in_flight; }
  boost::asio::awaitable<void> deliver(std::span<const Record> batch,
                                       std::span<Result> results) override;
  boost::asio::awaitable<void> close() override;

  // Renders topic, key and headers for one record (on the loop).
  Message render(const Record& record) const;

  // Messages handed to librdkafka and not yet acknowledged (rd_kafka_outq_len).
  int in_flight() const;

 private:
  class Producer;
  struct Batch;

  KafkaSink(const KafkaSinkConfig& config, std::string project, BlockingPool& pool,
            boost::asio::any_io_executor loop, Options options);
  void warm_up();  // creates the handle of a constant topic with the producer
  // The topic for `record`: the constant one, or rendered into `scratch`.
  const std::string& topic_of(const Record& record, std::string& scratch) const;
  // Renders the key into `key`; false when there is none (null key).
  bool key_of(const Record& record, std::string& key) const;
  // Calls add(name, value) for each header of `record` (string_views, valid during the call).
  template <typename Add>
  void for_each_header(const Record& record, std::string& scratch, Add&& add) const;

  KafkaSinkConfig config_;
  std::string project_;
  BlockingPool& pool_;
  boost::asio::any_io_executor loop_;
  Options options_;
  std::string constant_topic_;  // the topic when the template has no placeholders, else ""
  std::unique_ptr<Producer> producer_;
  bool rebuild_ = false;    // a fatal error was seen: make a new producer before the next batch
  std::size_t active_ = 0;  // deliver() calls running: the producer is replaced only when idle
};

}  // namespace sluice::sinks
