#include "tools/replay.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <exception>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "config/reader.hpp"
#include "core/json.hpp"
#include "daemon/upstream/decoder.hpp"
#include "sinks/blocking_pool.hpp"
#include "sinks/dead_letter.hpp"
#include "sinks/factory.hpp"
#include "sinks/posix_file.hpp"
#include "sinks/retry_policy.hpp"
#include "tools/route_test.hpp"

namespace sluice::tools {

namespace {

namespace asio = boost::asio;

// One selected record on its way to its sink.
struct Item {
  std::size_t line = 0;
  DeadLetterLine entry;
  EventPtr event;
  const config::SinkConfig* sink = nullptr;  // null: the sink is not in the configuration
};

// Consecutive selected lines for one sink, at most the sink's batch size: the file is replayed
// in its order, so a stop leaves everything before one line handled and nothing after it sent.
struct Batch {
  const config::SinkConfig* sink = nullptr;
  std::vector<Item> items;
};

// A sink opened on first use and kept open for the rest of the run, or why it cannot be opened.
struct OpenSink {
  std::unique_ptr<sinks::Sink> sink;
  std::string error;
};

// Lines kept between batches (unreadable ones, records for a sink the configuration lacks) are
// written to the new dead-letter file once this much is waiting.
constexpr std::size_t kFailedBufferLimit = 1 << 20;

// The state of one run. Lives in run_replay()'s frame; the coroutines and the signal handler
// run on its io_context, on the same thread.
struct Run {
  const config::Config& config;
  const ReplayOptions& options;
  std::string failed_path;
  std::string pending;  // lines for the new dead-letter file, not yet written
  ReplayTotals totals;
  bool stopping = false;                  // SIGINT or SIGTERM arrived: send nothing more
  asio::steady_timer* waiting = nullptr;  // the retry wait in progress, cut short by a stop

  void fail(const Item& item, std::string reason, std::uint32_t attempts,
            std::chrono::system_clock::time_point first) {
    sinks::DeadLetter d;
    d.record = record_of(item);
    d.reason = std::move(reason);
    d.attempts = attempts;
    d.first_attempt = first;
    d.last_attempt = std::chrono::system_clock::now();
    sinks::DeadLetterFile::append_line(
        pending, d, item.sink != nullptr ? item.sink->name : item.entry.sink, d.last_attempt);
    ++totals.failed;
  }

  // Appends what is waiting to the new dead-letter file, durably: it is the last copy of those
  // records. After a failed write, nothing more is sent (see replay_stream()).
  void write_pending() {
    if (pending.empty() || totals.not_written)
      return;
    if (const auto ec = sinks::DeadLetterFile::append_durably(failed_path, pending)) {
      std::cerr << (options.progress ? "\n" : "") << "sluice: cannot write " << failed_path << ": "
                << sinks::posix::error_text(ec) << "; the records that failed again are only in "
                << options.file << ": keep it\n";
      totals.not_written = true;
      return;
    }
    pending.clear();
  }

  // The record as the daemon queued it: the route from the line, and the first of the event's
  // channels that route listens on (for the {channel} template).
  sinks::Record record_of(const Item& item) const {
    sinks::Record r{item.event, RouteName::intern(item.entry.route), sinks::Record::kNoChannel};
    for (const auto& route : config.routes) {
      if (route.name != item.entry.route)
        continue;
      for (std::uint32_t c = 0; c < item.event->channels.size(); ++c) {
        if (std::find(route.channels.begin(), route.channels.end(), item.event->channels[c]) !=
            route.channels.end()) {
          r.channel = c;
          break;
        }
      }
    }
    return r;
  }

  void progress(std::size_t line) const {
    if (options.progress) {
      std::cerr << "\rreplaying: line " << line << " (" << totals.delivered << " delivered, "
                << totals.failed << " failed)" << std::flush;
    }
  }
};

// Delivers one batch, retrying as the sink's retry settings say. A stop cuts a retry wait short:
// what still waits for a retry then fails again with the reason, so nothing is left in between.
asio::awaitable<void> deliver_batch(Run& run, sinks::Sink& sink, const config::SinkConfig& config,
                                    const std::vector<Item>& items) {
  const sinks::RetryPolicy policy(config.retry);
  auto executor = co_await asio::this_coro::executor;
  std::vector<const Item*> pending;
  for (const auto& item : items)
    pending.push_back(&item);
  const auto first_wall = std::chrono::system_clock::now();
  const auto first = std::chrono::steady_clock::now();
  std::chrono::steady_clock::duration paused{};
  for (std::uint32_t attempt = 1; !pending.empty(); ++attempt) {
    std::vector<sinks::Record> records;
    for (const auto* item : pending)
      records.push_back(run.record_of(*item));
    std::vector<sinks::Result> results(records.size());
    co_await sink.deliver(records, results);
    std::vector<std::pair<const Item*, std::string>> again;
    std::chrono::milliseconds delay{0};
    bool server_pause = false;
    for (std::size_t i = 0; i < pending.size(); ++i) {
      const auto& result = results[i];
      if (result.outcome == sinks::Outcome::ok) {
        ++run.totals.delivered;
        continue;
      }
      if (result.outcome == sinks::Outcome::retry) {
        const auto decision = policy.next(
            attempt - 1, std::chrono::steady_clock::now() - first - paused, result.retry_after);
        if (!decision.give_up) {
          again.emplace_back(pending[i], result.reason);
          if (decision.delay > delay) {
            delay = decision.delay;
            server_pause = decision.server_pause;
          }
          continue;
        }
      }
      run.fail(*pending[i], result.reason, attempt, first_wall);
    }
    pending.clear();
    if (again.empty())
      break;
    if (!run.stopping) {
      asio::steady_timer timer(executor, delay);
      run.waiting = &timer;
      boost::system::error_code ec;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      run.waiting = nullptr;
      if (server_pause)
        paused += delay;
    }
    for (const auto& [item, reason] : again) {
      if (run.stopping)
        run.fail(*item, "replay: stopped before a retry; " + reason, attempt, first_wall);
      else
        pending.push_back(item);
    }
  }
}

// The sink `config` names, opened on first use and kept open for the rest of the run.
OpenSink& open_sink(Run& run, std::map<const config::SinkConfig*, OpenSink>& open,
                    const config::SinkConfig& config, sinks::BlockingPool& pool,
                    const asio::any_io_executor& executor) {
  auto [it, added] = open.try_emplace(&config);
  if (added) {
    it->second.sink =
        sinks::make_sink(config, run.config.appwrite.project, pool, executor, it->second.error);
  }
  return it->second;
}

// Sends `batch` to its sink, then writes what failed.
asio::awaitable<void> flush(Run& run, Batch& batch, OpenSink& sink) {
  if (batch.items.empty())
    co_return;
  if (sink.sink) {
    co_await deliver_batch(run, *sink.sink, *batch.sink, batch.items);
  } else {
    for (const auto& item : batch.items)
      run.fail(item, "replay: cannot open the sink: " + sink.error, 0,
               std::chrono::system_clock::now());
  }
  run.progress(batch.items.back().line);
  batch.items.clear();
  run.write_pending();
}

// Reads `in` line by line and replays it, one batch at a time: memory holds one batch, whatever
// the size of the file. Stops reading at a stop (SIGINT/SIGTERM) or when the new dead-letter
// file cannot be written, and then records in the totals the first line it did not handle.
asio::awaitable<void> replay_stream(Run& run, std::istream& in, sinks::BlockingPool& pool) {
  auto executor = co_await asio::this_coro::executor;
  const auto& options = run.options;
  std::map<const config::SinkConfig*, OpenSink> open;
  Batch batch;
  std::string text;
  std::size_t number = 0;
  std::size_t next = 1;  // the first line not handled, batched lines aside
  const auto halted = [&run] { return run.stopping || run.totals.not_written; };
  while (!halted() && std::getline(in, text)) {
    next = ++number + 1;
    if (text.find_first_not_of(" \t\r") == std::string::npos)
      continue;
    if (number < options.from_line) {
      ++run.totals.skipped;
      continue;
    }
    std::string error;
    auto entry = parse_dead_letter_line(text, error);
    EventPtr event;
    if (entry)
      event =
          event_from_data(run.config.appwrite.project, entry->record, error, entry->first_attempt);
    if (!event) {
      std::cerr << (options.progress ? "\n" : "") << options.file << ":" << number << ": "
                << (entry ? "the record is " : "") << error
                << (options.dry_run ? " (would be copied to " : " (copied to ") << run.failed_path
                << " as it is)\n";
      if (!options.dry_run) {
        run.pending += text;
        run.pending += '\n';
      }
      ++run.totals.unreadable;
      continue;
    }
    if (!selected(options, *entry)) {
      ++run.totals.skipped;
      continue;
    }
    ++run.totals.selected;
    const auto* sink = run.config.find_sink(options.sink ? *options.sink : entry->sink);
    Item item{number, std::move(*entry), std::move(event), sink};
    if (options.dry_run) {
      std::cout << options.file << ":" << item.line << ": " << item.event->id << " ("
                << item.event->first_event() << ") would go to sink "
                << config::quote(sink != nullptr ? sink->name : item.entry.sink)
                << (sink != nullptr ? "" : ", which is not in the configuration") << '\n';
      continue;
    }
    if (sink == nullptr) {
      run.fail(item,
               "replay: sink " + config::quote(item.entry.sink) + " is not in " + run.config.path,
               0, std::chrono::system_clock::now());
    } else {
      if (!batch.items.empty() && batch.sink != sink) {
        co_await flush(run, batch, open.at(batch.sink));
        if (halted()) {
          next = number;
          break;
        }
      }
      auto& opened = open_sink(run, open, *sink, pool, executor);
      batch.sink = sink;
      batch.items.push_back(std::move(item));
      const auto limit = opened.sink ? std::max<std::size_t>(1, opened.sink->max_batch()) : 1;
      if (batch.items.size() >= limit)
        co_await flush(run, batch, opened);
    }
    if (run.pending.size() >= kFailedBufferLimit)
      run.write_pending();
  }
  if (!halted()) {
    if (!batch.items.empty())
      co_await flush(run, batch, open.at(batch.sink));
  } else if (!batch.items.empty()) {
    run.totals.stopped_at = batch.items.front().line;
  } else if (in.peek() != std::char_traits<char>::eof()) {
    run.totals.stopped_at = next;
  }
  // A read error ends getline() like the end of the file does: tell them apart.
  if (in.bad()) {
    run.totals.read_error = errno != 0 ? errno : EIO;
    run.totals.stopped_at = next;
  }
  for (auto& [config, opened] : open) {
    if (opened.sink)
      co_await opened.sink->close();
  }
  run.write_pending();
}

// Runs replay_stream() until it ends; SIGINT and SIGTERM make it stop (see Run::stopping).
asio::awaitable<void> replay_until_stopped(Run& run, std::istream& in, sinks::BlockingPool& pool) {
  auto executor = co_await asio::this_coro::executor;
  asio::signal_set signals(executor, SIGINT, SIGTERM);
  signals.async_wait([&run](const boost::system::error_code& ec, int) {
    if (ec)
      return;
    run.stopping = true;
    if (run.waiting != nullptr)
      run.waiting->cancel();
  });
  co_await replay_stream(run, in, pool);
  signals.cancel();
}

}  // namespace

std::optional<DeadLetterLine> parse_dead_letter_line(std::string_view line, std::string& error) {
  const JsonBytes bytes{line.data(), line.size(), line.size()};
  const auto field = [&](std::string_view name) { return json_lookup(bytes, name); };
  const auto record = field("record");
  if (record.type != JsonValue::Type::object) {
    error = json_lookup(bytes, "").present() ? "not a dead-letter record (no `record` object)"
                                             : "not valid JSON";
    return std::nullopt;
  }
  DeadLetterLine out;
  out.record = record.text;
  for (auto [name, member] :
       {std::pair{"sink", &DeadLetterLine::sink}, std::pair{"route", &DeadLetterLine::route},
        std::pair{"reason", &DeadLetterLine::reason}}) {
    const auto value = field(name);
    if (value.type != JsonValue::Type::string) {
      error = std::string("not a dead-letter record (no `") + name + "` string)";
      return std::nullopt;
    }
    out.*member = value.text;
  }
  const auto time = field("time");
  const auto parsed =
      time.type == JsonValue::Type::string ? upstream::parse_timestamp(time.text) : std::nullopt;
  if (!parsed) {
    error = "not a dead-letter record (no `time`)";
    return std::nullopt;
  }
  out.time = *parsed;
  const auto first = field("first_attempt");
  const auto first_parsed =
      first.type == JsonValue::Type::string ? upstream::parse_timestamp(first.text) : std::nullopt;
  out.first_attempt = first_parsed.value_or(out.time);
  return out;
}

bool selected(const ReplayOptions& options, const DeadLetterLine& line) {
  if (options.reason && line.reason.find(*options.reason) == std::string::npos)
    return false;
  if (options.since && line.time < *options.since)
    return false;
  if (options.until && line.time >= *options.until)
    return false;
  return true;
}

std::optional<UtcTime> parse_time(std::string_view text) {
  if (text.size() == 10)  // a date alone: its midnight, UTC
    return upstream::parse_timestamp(std::string(text) + "T00:00:00Z");
  return upstream::parse_timestamp(text);
}

std::optional<ReplayTotals> run_replay(const config::Config& config, const ReplayOptions& options) {
  const std::string failed_path =
      options.failed.empty() ? options.file + ".failed" : options.failed;
  const auto cannot_read = [&options](int err) {
    std::cerr << "sluice: cannot read " << options.file << ": "
              << (err != 0 ? std::strerror(err) : "cannot open") << "; nothing was sent\n";
    return std::nullopt;
  };
  struct stat input {};
  if (::stat(options.file.c_str(), &input) != 0)
    return cannot_read(errno);
  if (S_ISDIR(input.st_mode))
    return cannot_read(EISDIR);
  // Appending to the file being read would replay the new lines again, and a rerun would send
  // every record twice.
  if (struct stat out{}; ::stat(failed_path.c_str(), &out) == 0 && out.st_dev == input.st_dev &&
                         out.st_ino == input.st_ino) {
    std::cerr << "sluice: --failed-to " << failed_path << " is " << options.file
              << " itself; name another file\n";
    return std::nullopt;
  }
  errno = 0;
  std::ifstream in(options.file, std::ios::binary);
  if (!in)
    return cannot_read(errno);
  Run run{config, options, failed_path, {}, {}, false, nullptr};
  {
    asio::io_context loop;
    sinks::BlockingPool pool(1);
    std::exception_ptr failure;
    errno = 0;
    asio::co_spawn(loop, replay_until_stopped(run, in, pool),
                   [&failure](std::exception_ptr e) { failure = std::move(e); });
    loop.run();
    if (failure)
      std::rethrow_exception(failure);
  }
  const auto& totals = run.totals;
  if (options.progress && totals.selected > 0)
    std::cerr << '\n';
  const auto at = [&](std::size_t line) { return options.file + ":" + std::to_string(line); };
  if (totals.read_error != 0) {
    std::cerr << "sluice: cannot read " << options.file << " after line " << totals.stopped_at - 1
              << ": " << std::strerror(totals.read_error) << "\n";
  }
  if (options.dry_run) {
    std::cout << "dry run: " << totals.selected << " selected, " << totals.skipped << " skipped, "
              << totals.unreadable << " unreadable";
  } else {
    const auto kept = totals.failed + totals.unreadable;
    std::cout << "replayed " << totals.selected << " of the records in " << options.file << ": "
              << totals.delivered << " delivered, " << totals.failed << " failed again";
    if (kept > 0) {
      if (totals.not_written)
        std::cout << " (kept only in " << options.file << ", see above)";
      else
        std::cout << " (written to " << failed_path << ")";
    }
    std::cout << ", " << totals.skipped << " skipped, " << totals.unreadable << " unreadable";
  }
  if (totals.stopped_at != 0) {
    std::cout << "; stopped at " << at(totals.stopped_at) << ": nothing from there on was "
              << (options.dry_run ? "listed" : "sent") << " (resume with --from-line "
              << totals.stopped_at << ")";
  }
  std::cout << '\n';
  return totals;
}

}  // namespace sluice::tools
