#include "sinks/kafka/kafka_sink.hpp"

#include <cstring>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/log.hpp"
#include "core/template.hpp"

namespace sluice::sinks {

namespace {

std::string error_reason(rd_kafka_resp_err_t err) {
  return std::string(rd_kafka_err2name(err)) + ": " + rd_kafka_err2str(err);
}

std::string join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty())
      out.append(sep);
    out.append(item);
  }
  return out;
}

}  // namespace

Result classify_kafka_error(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
      return Result{};
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
      return Result{Outcome::retry, "queue_full", {}};
    // What retrying cannot cure: the record or the topic is wrong, or we are not allowed.
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR__BAD_MSG:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_COMPRESSION_TYPE:
      return Result{Outcome::failed, error_reason(err), {}};
    default:
      return Result{Outcome::retry, error_reason(err), {}};
  }
}

// One delivery batch in flight. Shared between the deliver() coroutine (on the loop) and the
// poll thread's delivery reports. `remaining` starts at 1 (held by deliver() while producing) so
// the batch cannot complete before every record was handed over; whoever takes it to zero
// posts the completion to the loop. `self` keeps the batch, and so the events librdkafka points
// into, alive while reports are outstanding, even if the coroutine were torn down.
struct KafkaSink::Batch {
  struct Slot {
    Batch* batch = nullptr;
    std::size_t index = 0;
  };

  explicit Batch(const boost::asio::any_io_executor& ex)
      : loop(ex), wake(ex, boost::asio::steady_timer::time_point::max()) {}

  void arrive() {
    if (remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      auto keep = std::move(self);
      boost::asio::post(loop, [keep] {
        keep->done = true;
        keep->wake.cancel();
      });
    }
  }

  boost::asio::any_io_executor loop;
  boost::asio::steady_timer wake;  // loop only: cancelled when the batch is complete
  bool done = false;               // loop only
  std::vector<EventPtr> events;
  std::vector<Slot> slots;
  std::vector<rd_kafka_resp_err_t> errors;  // written by the poll thread before arrive()
  std::atomic<std::size_t> remaining{1};
  std::shared_ptr<Batch> self;
};

// The librdkafka handle and the thread that serves its delivery reports and error callbacks.
// Owned by the KafkaSink; created on the loop, destroyed on the BlockingPool (close) because
// joining and rd_kafka_destroy block.
class KafkaSink::Producer {
 public:
  static std::unique_ptr<Producer> make(
      const std::vector<std::pair<std::string, std::string>>& props, std::string& error) {
    std::unique_ptr<Producer> p(new Producer());
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    char errstr[512];
    for (const auto& [name, value] : props) {
      if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), errstr, sizeof errstr) !=
          RD_KAFKA_CONF_OK) {
        error = "librdkafka rejected property \"" + name + "\": " + errstr;
        rd_kafka_conf_destroy(conf);
        return nullptr;
      }
    }
    rd_kafka_conf_set_dr_msg_cb(conf, &Producer::on_delivery);
    rd_kafka_conf_set_error_cb(conf, &Producer::on_error);
    rd_kafka_conf_set_log_cb(conf, &Producer::on_log);
    rd_kafka_conf_set_opaque(conf, p.get());
    p->rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!p->rk_) {
      rd_kafka_conf_destroy(conf);
      error = std::string("librdkafka: ") + errstr;
      return nullptr;
    }
    p->poller_ = std::thread([raw = p.get()] {
      while (!raw->stop_.load(std::memory_order_acquire))
        rd_kafka_poll(raw->rk_, 100);
    });
    return p;
  }

  ~Producer() {
    stop_.store(true, std::memory_order_release);
    if (poller_.joinable())
      poller_.join();
    for (auto& [name, rkt] : topics_)
      rd_kafka_topic_destroy(rkt);
    if (rk_)
      rd_kafka_destroy(rk_);
  }

  rd_kafka_t* rk() const { return rk_; }

  // The handle of topic `name`, created on first use (on the loop only). Creating it makes
  // librdkafka ask the cluster for the topic's partitions at once; a message produced by topic
  // name to a topic it has not seen waits for its once-a-second scan instead (~1 s for the
  // first event). nullptr when librdkafka refuses the name.
  rd_kafka_topic_t* topic(const std::string& name) {
    auto it = topics_.find(name);
    if (it != topics_.end())
      return it->second;
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk_, name.c_str(), nullptr);
    if (rkt)
      topics_.emplace(name, rkt);
    return rkt;
  }

  // Waits (blocking) for outstanding messages; reports are served by the poll thread.
  int flush(std::chrono::milliseconds timeout) {
    rd_kafka_flush(rk_, static_cast<int>(timeout.count()));
    return rd_kafka_outq_len(rk_);
  }

 private:
  Producer() = default;

  static void on_delivery(rd_kafka_t*, const rd_kafka_message_t* message, void*) {
    auto* slot = static_cast<Batch::Slot*>(message->_private);
    if (!slot)
      return;
    slot->batch->errors[slot->index] = message->err;
    slot->batch->arrive();
  }

  static void on_error(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
    auto* self = static_cast<Producer*>(opaque);
    const auto code = static_cast<rd_kafka_resp_err_t>(err);
    if (code == RD_KAFKA_RESP_ERR__FATAL) {
      char buf[512];
      const auto fatal = rd_kafka_fatal_error(rk, buf, sizeof buf);
      log::error("kafka", "fatal producer error; the producer will be rebuilt",
                 {{"error", rd_kafka_err2name(fatal)}, {"reason", buf}});
      return;
    }
    std::lock_guard lock(self->log_mutex_);
    if (self->error_limiter_.allow()) {
      log::warn("kafka", "producer error",
                {{"error", rd_kafka_err2name(code)},
                 {"reason", reason ? reason : ""},
                 {"suppressed", std::to_string(self->error_limiter_.take_suppressed())}});
    }
  }

  static void on_log(const rd_kafka_t*, int level, const char* facility, const char* text) {
    // Level 3 (connection failures and the like) repeats what on_error reports, rate-limited.
    const log::Level l = level <= 2   ? log::Level::error
                         : level == 4 ? log::Level::warn
                                      : log::Level::debug;
    if (log::enabled(l))
      log::write(l, "kafka", text ? text : "", {{"facility", facility ? facility : ""}});
  }

  rd_kafka_t* rk_ = nullptr;
  std::unordered_map<std::string, rd_kafka_topic_t*> topics_;  // loop only
  std::thread poller_;
  std::atomic<bool> stop_{false};
  std::mutex log_mutex_;  // error callbacks come from the poll thread and from flush()
  log::RateLimiter error_limiter_{5, std::chrono::seconds{10}};
};

std::vector<std::pair<std::string, std::string>> KafkaSink::producer_properties(
    const KafkaSinkConfig& config) {
  std::vector<std::pair<std::string, std::string>> props = {
      {"bootstrap.servers", join(config.brokers, ",")},
      {"enable.idempotence", "true"},
      {"acks", "all"},
      // Java's default partitioner for keyed records, so other clients agree on partitions.
      {"partitioner", "murmur2_random"},
      // Bounds one deliver() below the daemon's drain grace; librdkafka retries inside it.
      {"message.timeout.ms", "15000"},
      // Every event waits up to the linger before its batch goes out. librdkafka's 5 ms default
      // alone would spend the 5 ms p99 budget at 10,000 events/s; batches still fill at high
      // rates, since records arrive while earlier ones are in flight.
      {"linger.ms", "1"},
      {"compression.codec", std::string(compression_name(config.compression))},
  };
  for (const auto& [name, value] : config.properties)
    props.emplace_back(name, value);
  return props;
}

std::unique_ptr<KafkaSink> KafkaSink::create(const KafkaSinkConfig& config, std::string project,
                                             BlockingPool& pool, boost::asio::any_io_executor loop,
                                             std::string& error, Options options) {
  auto producer = Producer::make(producer_properties(config), error);
  if (!producer)
    return nullptr;
  std::unique_ptr<KafkaSink> sink(
      new KafkaSink(config, std::move(project), pool, std::move(loop), std::move(options)));
  sink->producer_ = std::move(producer);
  sink->warm_up();
  return sink;
}

KafkaSink::KafkaSink(const KafkaSinkConfig& config, std::string project, BlockingPool& pool,
                     boost::asio::any_io_executor loop, Options options)
    : config_(config),
      project_(std::move(project)),
      pool_(pool),
      loop_(std::move(loop)),
      options_(std::move(options)) {
  if (options_.max_batch == 0)
    options_.max_batch = 1;
  if (config_.topic.constant())
    constant_topic_ = config_.topic.render(Event{}, TemplateContext{{}, {}, project_});
}

KafkaSink::~KafkaSink() = default;  // close() normally released the producer already

void KafkaSink::warm_up() {
  // A constant topic is known before the first event: its metadata is fetched while the
  // producer connects, so the first batch does not wait for it.
  if (!constant_topic_.empty())
    producer_->topic(constant_topic_);
}

int KafkaSink::in_flight() const {
  return producer_ ? rd_kafka_outq_len(producer_->rk()) : 0;
}

template <typename Add>
void KafkaSink::for_each_header(const Record& record, std::string& scratch, Add&& add) const {
  const Event& e = *record.event;
  add("sluice-event-id", e.id);
  add("sluice-event", e.first_event());
  add("sluice-route", record.route.view());
  add("appwrite-project", project_);
  add("appwrite-timestamp", e.timestamp_text);
  const TemplateContext ctx = record.template_context(project_);
  for (const auto& [name, tmpl] : config_.headers) {
    scratch = tmpl.render(e, ctx);
    add(name, scratch);
  }
}

const std::string& KafkaSink::topic_of(const Record& record, std::string& scratch) const {
  if (!constant_topic_.empty())
    return constant_topic_;
  scratch = config_.topic.render(*record.event, record.template_context(project_));
  return scratch;
}

bool KafkaSink::key_of(const Record& record, std::string& key) const {
  key.clear();
  if (config_.key)
    key = config_.key->render(*record.event, record.template_context(project_));
  return !key.empty();  // an empty key is a null key
}

KafkaSink::Message KafkaSink::render(const Record& record) const {
  Message m;
  std::string scratch;
  m.topic = topic_of(record, scratch);
  if (std::string key; key_of(record, key))
    m.key = std::move(key);
  for_each_header(record, scratch, [&m](std::string_view name, std::string_view value) {
    m.headers.emplace_back(name, value);
  });
  return m;
}

boost::asio::awaitable<void> KafkaSink::deliver(std::span<const Record> batch,
                                                std::span<Result> results) {
  struct Active {
    std::size_t& count;
    explicit Active(std::size_t& c) : count(c) { ++count; }
    ~Active() { --count; }
  } active(active_);
  // After a fatal error the producer is replaced, but only when no other batch still awaits
  // reports from it; until then batches fail on it and are retried.
  if ((rebuild_ && active_ == 1) || !producer_) {
    std::string error;
    auto fresh = Producer::make(producer_properties(config_), error);
    if (!fresh) {
      for (auto& r : results)
        r = Result{Outcome::retry, "producer: " + error, {}};
      co_return;
    }
    auto old = std::move(producer_);
    producer_ = std::move(fresh);
    rebuild_ = false;
    warm_up();
    if (old) {
      auto job = [p = std::move(old)]() mutable { p.reset(); };
      co_await pool_.run(std::move(job));
    }
  }
  rd_kafka_t* rk = producer_->rk();

  auto state = std::make_shared<Batch>(loop_);
  state->self = state;
  state->events.resize(batch.size());
  state->slots.resize(batch.size());
  state->errors.assign(batch.size(), RD_KAFKA_RESP_ERR_NO_ERROR);
  std::vector<bool> produced(batch.size(), false);
  bool queue_full = false;
  std::string topic;  // reused across the batch
  std::string key;
  std::string scratch;

  for (std::size_t i = 0; i < batch.size(); ++i) {
    const Record& r = batch[i];
    if (!r.event) {
      results[i] = Result{Outcome::failed, "record: no event", {}};
      continue;
    }
    if (queue_full) {
      results[i] = classify_kafka_error(RD_KAFKA_RESP_ERR__QUEUE_FULL);
      continue;
    }
    // What render() gives, without building a Message: this runs for every record.
    const std::string& topic_name = topic_of(r, topic);
    if (auto error = check_rendered_topic(topic_name); !error.empty()) {
      results[i] = Result{Outcome::failed, std::move(error), {}};
      continue;
    }
    rd_kafka_topic_t* rkt = producer_->topic(topic_name);
    if (!rkt) {
      results[i] = classify_kafka_error(rd_kafka_last_error());
      continue;
    }
    const bool keyed = key_of(r, key);
    rd_kafka_headers_t* headers = rd_kafka_headers_new(5 + config_.headers.size());
    for_each_header(r, scratch, [headers](std::string_view name, std::string_view value) {
      rd_kafka_header_add(headers, name.data(), static_cast<ssize_t>(name.size()), value.data(),
                          static_cast<ssize_t>(value.size()));
    });
    state->events[i] = r.event;
    state->slots[i] = Batch::Slot{state.get(), i};

    rd_kafka_vu_t vu[5];
    std::memset(vu, 0, sizeof vu);
    std::size_t n = 0;
    vu[n].vtype = RD_KAFKA_VTYPE_RKT;
    vu[n++].u.rkt = rkt;
    // No copy: the value points into the event, which `state` keeps alive until the report.
    vu[n].vtype = RD_KAFKA_VTYPE_VALUE;
    vu[n].u.mem.ptr = const_cast<char*>(r.event->data.data());
    vu[n++].u.mem.size = r.event->data.size();
    if (keyed) {
      vu[n].vtype = RD_KAFKA_VTYPE_KEY;  // copied by librdkafka
      vu[n].u.mem.ptr = key.data();
      vu[n++].u.mem.size = key.size();
    }
    vu[n].vtype = RD_KAFKA_VTYPE_HEADERS;
    vu[n++].u.headers = headers;
    vu[n].vtype = RD_KAFKA_VTYPE_OPAQUE;
    vu[n++].u.ptr = &state->slots[i];

    state->remaining.fetch_add(1, std::memory_order_relaxed);
    rd_kafka_error_t* error = rd_kafka_produceva(rk, vu, n);
    if (!error) {
      produced[i] = true;
      continue;
    }
    const auto code = rd_kafka_error_code(error);
    rd_kafka_error_destroy(error);
    rd_kafka_headers_destroy(headers);
    state->events[i].reset();
    state->remaining.fetch_sub(1, std::memory_order_relaxed);  // never the last: we hold one
    if (code == RD_KAFKA_RESP_ERR__QUEUE_FULL)
      queue_full = true;
    if (code == RD_KAFKA_RESP_ERR__FATAL)
      rebuild_ = true;
    results[i] = classify_kafka_error(code);
  }

  state->arrive();
  while (!state->done) {
    boost::system::error_code ec;
    co_await state->wake.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
  }

  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (!produced[i])
      continue;
    const auto err = state->errors[i];
    if (err == RD_KAFKA_RESP_ERR__FATAL)
      rebuild_ = true;
    results[i] = classify_kafka_error(err);
  }
  char buf[256];
  if (rd_kafka_fatal_error(rk, buf, sizeof buf) != RD_KAFKA_RESP_ERR_NO_ERROR)
    rebuild_ = true;
}

boost::asio::awaitable<void> KafkaSink::close() {
  if (!producer_)
    co_return;
  auto producer = std::move(producer_);
  const auto timeout = options_.close_timeout;
  auto job = [p = std::move(producer), timeout]() mutable {
    const int left = p->flush(timeout);
    if (left > 0) {
      log::warn("kafka", "messages left undelivered at close", {{"count", std::to_string(left)}});
    }
    p.reset();
  };
  co_await pool_.run(std::move(job));
}

std::unique_ptr<Sink> build_sink(const KafkaSinkConfig& settings, const config::SinkConfig& sink,
                                 SinkContext context, std::string& error) {
  std::string why;
  auto made = KafkaSink::create(settings, std::move(context.project), context.pool,
                                std::move(context.loop), why);
  if (!made)
    error = "sink \"" + sink.name + "\": " + why;
  return made;
}

}  // namespace sluice::sinks
