#include "tools/replay.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <fstream>
#include <iostream>
#include <memory>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
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

// The state of one run: what was read, and what the delivery loop reports. Lives in
// run_replay()'s frame; the coroutine runs on its io_context, on the same thread.
struct Run {
  const config::Config& config;
  const ReplayOptions& options;
  std::vector<Item> items;
  std::vector<sinks::DeadLetter> failed;
  std::vector<std::string> failed_sink;  // the sink each failed entry names
  std::string unreadable;                // the lines that cannot be replayed, as they were read
  ReplayTotals totals;
  std::size_t done = 0;

  void fail(const Item& item, std::string reason, std::uint32_t attempts,
            std::chrono::system_clock::time_point first) {
    sinks::DeadLetter d;
    d.record = record_of(item);
    d.reason = std::move(reason);
    d.attempts = attempts;
    d.first_attempt = first;
    d.last_attempt = std::chrono::system_clock::now();
    failed.push_back(std::move(d));
    failed_sink.push_back(item.sink != nullptr ? item.sink->name : item.entry.sink);
    ++totals.failed;
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

  void progress() {
    ++done;
    if (options.progress) {
      std::cerr << "\rreplaying: " << done << "/" << totals.selected << " (" << totals.delivered
                << " delivered, " << totals.failed << " failed)" << std::flush;
    }
  }
};

// Delivers `items` (all for `sink`) in batches of the sink's size, one batch at a time,
// retrying as the sink's retry settings say.
asio::awaitable<void> deliver_to(Run& run, sinks::Sink& sink, const config::SinkConfig& config,
                                 std::vector<const Item*> items) {
  const sinks::RetryPolicy policy(config.retry);
  auto executor = co_await asio::this_coro::executor;
  const std::size_t batch_size = std::max<std::size_t>(1, sink.max_batch());
  for (std::size_t pos = 0; pos < items.size(); pos += batch_size) {
    std::vector<const Item*> pending(
        items.begin() + static_cast<std::ptrdiff_t>(pos),
        items.begin() + static_cast<std::ptrdiff_t>(std::min(items.size(), pos + batch_size)));
    const auto first_wall = std::chrono::system_clock::now();
    const auto first = std::chrono::steady_clock::now();
    std::chrono::steady_clock::duration paused{};
    for (std::uint32_t attempt = 1; !pending.empty(); ++attempt) {
      std::vector<sinks::Record> records;
      for (const auto* item : pending)
        records.push_back(run.record_of(*item));
      std::vector<sinks::Result> results(records.size());
      co_await sink.deliver(records, results);
      std::vector<const Item*> again;
      std::chrono::milliseconds delay{0};
      bool server_pause = false;
      for (std::size_t i = 0; i < pending.size(); ++i) {
        const auto& result = results[i];
        if (result.outcome == sinks::Outcome::ok) {
          ++run.totals.delivered;
          run.progress();
          continue;
        }
        if (result.outcome == sinks::Outcome::retry) {
          const auto decision = policy.next(
              attempt - 1, std::chrono::steady_clock::now() - first - paused, result.retry_after);
          if (!decision.give_up) {
            again.push_back(pending[i]);
            if (decision.delay > delay) {
              delay = decision.delay;
              server_pause = decision.server_pause;
            }
            continue;
          }
        }
        run.fail(*pending[i], result.reason, attempt, first_wall);
        run.progress();
      }
      pending = std::move(again);
      if (!pending.empty()) {
        asio::steady_timer timer(executor, delay);
        co_await timer.async_wait(asio::use_awaitable);
        if (server_pause)
          paused += delay;
      }
    }
  }
}

asio::awaitable<void> deliver_all(Run& run, sinks::BlockingPool& pool) {
  auto executor = co_await asio::this_coro::executor;
  // Sinks in the order they first appear in the file.
  std::vector<const config::SinkConfig*> order;
  for (const auto& item : run.items) {
    if (item.sink == nullptr) {
      run.fail(item,
               "replay: sink " + config::quote(item.entry.sink) + " is not in " + run.config.path,
               0, std::chrono::system_clock::now());
      run.progress();
    } else if (std::find(order.begin(), order.end(), item.sink) == order.end()) {
      order.push_back(item.sink);
    }
  }
  for (const auto* config : order) {
    std::vector<const Item*> items;
    for (const auto& item : run.items) {
      if (item.sink == config)
        items.push_back(&item);
    }
    std::string error;
    auto sink = sinks::make_sink(*config, run.config.appwrite.project, pool, executor, error);
    if (!sink) {
      for (const auto* item : items) {
        run.fail(*item, "replay: cannot open the sink: " + error, 0,
                 std::chrono::system_clock::now());
        run.progress();
      }
      continue;
    }
    co_await deliver_to(run, *sink, *config, std::move(items));
    co_await sink->close();
  }
}

// Appends the lines that cannot be replayed and the failed entries to `path` in one durable
// write, as the daemon writes its dead letters: they are the last copy.
std::error_code write_failed(const Run& run, const std::string& path) {
  std::string buffer = run.unreadable;
  const auto now = std::chrono::system_clock::now();
  for (std::size_t i = 0; i < run.failed.size(); ++i)
    sinks::DeadLetterFile::append_line(buffer, run.failed[i], run.failed_sink[i], now);
  return sinks::DeadLetterFile::append_durably(path, buffer);
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
  Run run{config, options, {}, {}, {}, {}, {}, 0};
  std::string text;
  std::size_t number = 1;
  for (; std::getline(in, text); ++number) {
    if (text.find_first_not_of(" \t\r") == std::string::npos)
      continue;
    const auto at = options.file + ":" + std::to_string(number) + ": ";
    std::string error;
    auto entry = parse_dead_letter_line(text, error);
    EventPtr event;
    if (entry)
      event = event_from_data(entry->record, error, entry->first_attempt);
    if (!event) {
      std::cerr << at << (entry ? "the record is " : "") << error
                << (options.dry_run ? " (would be copied to " : " (copied to ") << failed_path
                << " as it is)\n";
      run.unreadable += text;
      run.unreadable += '\n';
      ++run.totals.unreadable;
      continue;
    }
    if (!selected(options, *entry)) {
      ++run.totals.skipped;
      continue;
    }
    const auto* sink = config.find_sink(options.sink ? *options.sink : entry->sink);
    run.items.push_back({number, std::move(*entry), std::move(event), sink});
    ++run.totals.selected;
  }
  // A read error ends getline() like the end of the file does: tell them apart.
  if (in.bad()) {
    std::cerr << "sluice: cannot read " << options.file << " after line " << number - 1 << ": "
              << (errno != 0 ? std::strerror(errno) : "read error") << "; nothing was sent\n";
    return std::nullopt;
  }

  if (options.dry_run) {
    for (const auto& item : run.items) {
      std::cout << options.file << ":" << item.line << ": " << item.event->id << " ("
                << item.event->first_event() << ") would go to sink "
                << config::quote(item.sink != nullptr ? item.sink->name : item.entry.sink)
                << (item.sink != nullptr ? "" : ", which is not in the configuration") << '\n';
    }
    std::cout << "dry run: " << run.totals.selected << " selected, " << run.totals.skipped
              << " skipped by the filters, " << run.totals.unreadable << " unreadable\n";
    return run.totals;
  }

  {
    asio::io_context loop;
    sinks::BlockingPool pool(1);
    std::exception_ptr failure;
    asio::co_spawn(loop, deliver_all(run, pool),
                   [&failure](std::exception_ptr e) { failure = std::move(e); });
    loop.run();
    if (failure)
      std::rethrow_exception(failure);
  }
  if (options.progress && run.totals.selected > 0)
    std::cerr << '\n';
  if (!run.failed.empty() || !run.unreadable.empty()) {
    if (const auto ec = write_failed(run, failed_path)) {
      // The input file still holds every record: nothing is lost, but say so loudly.
      std::cerr << "sluice: cannot write " << failed_path << ": " << sinks::posix::error_text(ec)
                << "; the records that failed again are only in " << options.file << ": keep it\n";
      run.totals.not_written = true;
    }
  }
  const auto kept = run.totals.failed + run.totals.unreadable;
  std::cout << "replayed " << run.totals.selected << " of the records in " << options.file << ": "
            << run.totals.delivered << " delivered, " << run.totals.failed << " failed again";
  if (kept > 0) {
    if (run.totals.not_written)
      std::cout << " (kept only in " << options.file << ", see above)";
    else
      std::cout << " (written to " << failed_path << ")";
  }
  std::cout << ", " << run.totals.skipped << " skipped by the filters, " << run.totals.unreadable
            << " unreadable\n";
  return run.totals;
}

}  // namespace sluice::tools
