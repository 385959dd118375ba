// Throughput of the disk buffer (sinks/spool) against the memory buffer, through the real
// SinkWorker with a sink that acknowledges at once, and (when SQLite is available at build
// time) against SQLite in WAL mode doing the same FIFO work with the same group commits.
// A program, not a test: it prints figures.
//
//   spool_bench [events=200000] [payload_bytes=300] [dir=<temp dir>]
#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include <boost/asio/io_context.hpp>

#include "core/metrics.hpp"
#include "sinks/file/file_config.hpp"
#include "sinks/spool/record_codec.hpp"
#include "sinks/worker.hpp"
#include "tests/unit/sinks/test_support.hpp"

#ifdef SLUICE_BENCH_SQLITE
#include <sqlite3.h>
#endif

namespace {

using namespace sluice;
using namespace sluice::sinks;
using Clock = std::chrono::steady_clock;

class NullSink final : public Sink {
 public:
  std::size_t max_batch() const override { return 1024; }
  boost::asio::awaitable<void> deliver(std::span<const Record>, std::span<Result>) override {
    co_return;
  }
};

struct Run {
  double seconds = 0;
};

Run run_worker(config::BufferConfig::Type type, const std::string& dir,
               const std::vector<Record>& records) {
  boost::asio::io_context ctx;
  BlockingPool pool{1};
  Metrics metrics;
  config::SinkConfig config;
  config.name = type == config::BufferConfig::Type::disk ? "disk" : "memory";
  config.settings = config::make_settings(FileSinkConfig{});
  config.buffer.type = type;
  config.buffer.dir = dir;
  config.buffer.max_events = 0;
  config.buffer.max_bytes = 0;
  Run run;
  {
    SinkWorker worker(ctx.get_executor(), std::make_unique<NullSink>(), config,
                      metrics.sink(config.name), pool);
    worker.start();
    const auto t0 = Clock::now();
    // Offered in slices with the loop running between them, as the upstream reader would.
    std::size_t i = 0;
    while (i < records.size()) {
      for (std::size_t k = 0; k < 1000 && i < records.size(); ++k, ++i)
        worker.offer(records[i]);
      ctx.poll();
    }
    test::run_until(
        ctx, [&] { return worker.stats().sent == records.size() && worker.stats().spool_synced; },
        std::chrono::minutes{10});
    run.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    test::run_co(ctx, worker.stop(Clock::now()));
  }
  return run;
}

#ifdef SLUICE_BENCH_SQLITE
// The same FIFO in SQLite (WAL, synchronous=FULL so a commit is durable like a spool commit):
// every `group` records, one transaction appends them and deletes the previous group (acked).
double run_sqlite(const std::string& path, const std::vector<Record>& records, std::size_t group) {
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", nullptr, nullptr, nullptr);
  sqlite3_exec(db, "CREATE TABLE q(seq INTEGER PRIMARY KEY, body BLOB NOT NULL)", nullptr, nullptr,
               nullptr);
  sqlite3_stmt* ins = nullptr;
  sqlite3_stmt* del = nullptr;
  sqlite3_prepare_v2(db, "INSERT INTO q VALUES(?, ?)", -1, &ins, nullptr);
  sqlite3_prepare_v2(db, "DELETE FROM q WHERE seq < ?", -1, &del, nullptr);
  std::string frame;
  const auto t0 = Clock::now();
  for (std::size_t i = 0; i < records.size();) {
    sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
    const std::size_t end = std::min(records.size(), i + group);
    sqlite3_bind_int64(del, 1, static_cast<sqlite3_int64>(i));
    sqlite3_step(del);
    sqlite3_reset(del);
    for (; i < end; ++i) {
      frame.clear();
      spool::append_frame(frame, i, records[i], std::chrono::system_clock::now());
      sqlite3_bind_int64(ins, 1, static_cast<sqlite3_int64>(i));
      sqlite3_bind_blob(ins, 2, frame.data(), static_cast<int>(frame.size()), SQLITE_STATIC);
      sqlite3_step(ins);
      sqlite3_reset(ins);
    }
    sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  }
  sqlite3_exec(db, "BEGIN; DELETE FROM q; COMMIT", nullptr, nullptr, nullptr);
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  sqlite3_finalize(ins);
  sqlite3_finalize(del);
  sqlite3_close(db);
  return s;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  const std::size_t n = argc > 1 ? std::stoul(argv[1]) : 200000;
  const std::size_t payload_bytes = argc > 2 ? std::stoul(argv[2]) : 300;
  std::string dir;
  if (argc > 3) {
    dir = argv[3];
  } else {
    std::string tmpl = (std::filesystem::temp_directory_path() / "spool-bench-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr)
      return 1;
    dir = tmpl;
  }
  std::vector<Record> records;
  records.reserve(n);
  const std::string filler(payload_bytes > 20 ? payload_bytes - 20 : 1, 'x');
  for (std::size_t i = 0; i < n; ++i) {
    records.push_back(
        test::make_record(R"({"i":)" + std::to_string(i) + R"(,"f":")" + filler + R"("})"));
  }
  const auto mem = run_worker(config::BufferConfig::Type::memory, dir, records);
  const auto disk = run_worker(config::BufferConfig::Type::disk, dir, records);
  std::printf("events=%zu data_bytes=%zu dir=%s\n", n, records[0].bytes(), dir.c_str());
  std::printf("memory buffer: %.0f events/s (offered, delivered, acknowledged)\n",
              static_cast<double>(n) / mem.seconds);
  std::printf(
      "disk buffer:   %.0f events/s (appended, group-committed with fdatasync, "
      "acknowledged, segments reclaimed)\n",
      static_cast<double>(n) / disk.seconds);
#ifdef SLUICE_BENCH_SQLITE
  for (const std::size_t group : {100, 1000}) {
    const std::string path = dir + "/bench-" + std::to_string(group) + ".sqlite";
    const double s = run_sqlite(path, records, group);
    std::printf("sqlite WAL:    %.0f events/s (synchronous=FULL, %zu records per transaction)\n",
                static_cast<double>(n) / s, group);
  }
#endif
  if (argc <= 3)
    std::filesystem::remove_all(dir);
  return 0;
}
