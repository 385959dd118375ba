#include "sinks/file/file_sink.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <filesystem>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "core/metrics.hpp"
#include "core/template.hpp"
#include "sinks/factory.hpp"
#include "sinks/webhook/webhook_config.hpp"
#include "sinks/worker.hpp"
#include "tests/unit/sinks/test_support.hpp"

namespace sluice::sinks {
namespace {

using namespace std::chrono_literals;
using test::make_event;
using test::make_record;
using test::read_file;
namespace fs = std::filesystem;
using Fsync = FileSinkConfig::Fsync;

Template path_template(const std::string& source) {
  Template t;
  Template::Error error;
  EXPECT_TRUE(Template::parse(source, true, t, error)) << error.message;
  return t;
}

std::vector<std::string> listing(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string lines_of(const std::vector<Record>& records) {
  std::string out;
  for (const auto& r : records) {
    out += r.event->data;
    out += '\n';
  }
  return out;
}

class FileSinkTest : public ::testing::Test {
 protected:
  FileSinkTest() {
    config.path = path_template(dir / "out.jsonl");
    config.fsync = Fsync::batch;
    options.now = [this] { return clock; };
  }

  void make() { sink = std::make_unique<FileSink>(config, "shop", pool, options); }

  std::vector<Result> deliver(const std::vector<Record>& records) {
    std::vector<Result> results(records.size(), Result{Outcome::failed, "unset", {}});
    EXPECT_TRUE(test::run_co(ctx, sink->deliver(records, results)));
    return results;
  }

  static void expect_all(const std::vector<Result>& results, Outcome outcome) {
    for (std::size_t i = 0; i < results.size(); ++i) {
      EXPECT_EQ(results[i].outcome, outcome) << "record " << i << ": " << results[i].reason;
    }
  }

  boost::asio::io_context ctx;
  BlockingPool pool{1};
  test::TempDir dir;
  FileSinkConfig config;
  FileSink::Options options;
  std::chrono::system_clock::time_point clock =
      std::chrono::sys_days{std::chrono::year{2024} / 5 / 1} + 12h;
  std::unique_ptr<FileSink> sink;
};

TEST_F(FileSinkTest, LinesAreTheRecordBytesUnchanged) {
  make();
  const std::vector<Record> records{
      make_record(R"({"$id":"a","n":1})"),
      make_record(R"({ "spaced" : [1, 2.50, -0e0], "s":"\u00e9\"\\", "utf8":"héllo" })"),
      make_record(R"({"nested":{"deep":{"x":null}},"b":true})")};
  const auto results = deliver(records);
  expect_all(results, Outcome::ok);
  EXPECT_EQ(read_file(dir / "out.jsonl"), lines_of(records));
  // A second batch appends.
  expect_all(deliver({records[0]}), Outcome::ok);
  EXPECT_EQ(read_file(dir / "out.jsonl"),
            lines_of({records[0], records[1], records[2], records[0]}));
  EXPECT_EQ((fs::status(dir / "out.jsonl").permissions() & fs::perms::all),
            fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
}

TEST_F(FileSinkTest, PathTemplatesCreateDirectories) {
  config.path = path_template(dir / "%Y/%m/%d/{project}/{route}-{payload.kind}.jsonl");
  make();
  const auto a = Record{make_event(R"({"kind":"order"})", "2024-05-01T23:59:59.999+00:00"),
                        RouteName::intern("r1"), 0};
  const auto b = Record{make_event(R"({"kind":"refund"})", "2024-05-02T00:00:00.000+00:00"),
                        RouteName::intern("r2"), 0};
  const auto c = Record{make_event(R"({"kind":"order","n":2})", "2024-05-01T10:00:00.000+00:00"),
                        RouteName::intern("r1"), 0};
  expect_all(deliver({a, b, c}), Outcome::ok);
  EXPECT_EQ(read_file(dir / "2024/05/01/shop/r1-order.jsonl"), lines_of({a, c}));
  EXPECT_EQ(read_file(dir / "2024/05/02/shop/r2-refund.jsonl"), lines_of({b}));
  EXPECT_EQ(sink->stats().open_files, 2u);
  EXPECT_EQ(sink->stats().fsyncs, 2u);  // batch: one per file touched
  ASSERT_TRUE(test::run_co(ctx, sink->close()));
  EXPECT_EQ(sink->stats().open_files, 0u);
}

TEST_F(FileSinkTest, BadRenderedPathsFailPermanently) {
  config.path = path_template(dir / "{payload.name}");
  make();
  const auto results = deliver({make_record(R"({"name":""})"), make_record(R"({"other":1})"),
                                make_record(R"({"name":"ok.jsonl"})")});
  EXPECT_EQ(results[0].outcome, Outcome::failed);
  EXPECT_EQ(results[1].outcome, Outcome::failed);
  EXPECT_EQ(results[2].outcome, Outcome::ok);
  EXPECT_EQ(results[0].reason.rfind("path: ", 0), 0u) << results[0].reason;
  EXPECT_EQ(listing(dir.path()), std::vector<std::string>{"ok.jsonl"});
}

// The one-file fast path must not treat "every path rendered empty" as one file.
TEST_F(FileSinkTest, ABatchWhosePathsAllFailWritesNothing) {
  config.path = path_template(dir / "{payload.name}");
  make();
  const auto results = deliver({make_record(R"({"other":1})"), make_record(R"({"name":""})")});
  expect_all(results, Outcome::failed);
  EXPECT_TRUE(listing(dir.path()).empty());
  EXPECT_EQ(sink->stats().writes, 0u);
}

// While a batch is on the pool it counts as work on the loop: a plain run() returns only once
// the delivery has finished, like the daemon's loop at shutdown.
TEST_F(FileSinkTest, ADeliveryOnThePoolKeepsTheLoopRunning) {
  make();
  const std::vector<Record> records{make_record(R"({"$id":"a"})")};
  std::vector<Result> results(1, Result{Outcome::failed, "unset", {}});
  bool done = false;
  boost::asio::co_spawn(
      ctx,
      [&]() -> boost::asio::awaitable<void> {
        co_await sink->deliver(records, results);
        done = true;
      },
      boost::asio::detached);
  ctx.run();
  EXPECT_TRUE(done);
  expect_all(results, Outcome::ok);
  EXPECT_EQ(read_file(dir / "out.jsonl"), lines_of(records));
}

TEST_F(FileSinkTest, RotatesBySizeBeforeAWriteWouldExceedIt) {
  // Every record below is 60 bytes of data, 61 with the newline: two fit in 130 bytes.
  const auto record = [](int i) { return make_record(R"({"i":)" + std::to_string(i) + "}"); };
  const auto line = record(0).bytes() + 1;
  config.rotate_max_size = 2 * line + 8;
  make();
  const std::vector<Record> records{record(0), record(1), record(2), record(3), record(4)};
  expect_all(deliver(records), Outcome::ok);
  const std::string suffix = ".20240501T120000.000Z";
  EXPECT_EQ(listing(dir.path()), (std::vector<std::string>{"out.jsonl", "out.jsonl" + suffix,
                                                           "out.jsonl" + suffix + ".1"}));
  EXPECT_EQ(read_file(dir / ("out.jsonl" + suffix)), lines_of({records[0], records[1]}));
  EXPECT_EQ(read_file(dir / ("out.jsonl" + suffix + ".1")), lines_of({records[2], records[3]}));
  EXPECT_EQ(read_file(dir / "out.jsonl"), lines_of({records[4]}));
  EXPECT_EQ(sink->stats().rotations, 2u);

  // A record larger than max_size gets a file of its own.
  clock += 1234ms;
  const auto big = make_record(R"({"blob":")" + std::string(3 * line, 'x') + "\"}");
  expect_all(deliver({big, record(5)}), Outcome::ok);
  EXPECT_EQ(read_file(dir / "out.jsonl.20240501T120001.234Z"), lines_of({records[4]}));
  EXPECT_EQ(read_file(dir / "out.jsonl.20240501T120001.234Z.1"), lines_of({big}));
  EXPECT_EQ(read_file(dir / "out.jsonl"), lines_of({record(5)}));
}

TEST_F(FileSinkTest, RotatesByAge) {
  config.rotate_max_age = 1h;
  options.idle_close = std::chrono::hours{24};  // keep the file open: its age is sluice's clock
  make();
  const std::vector<Record> records{make_record("1"), make_record("2"), make_record("3")};
  expect_all(deliver({records[0]}), Outcome::ok);
  clock += 59min;
  expect_all(deliver({records[1]}), Outcome::ok);
  EXPECT_EQ(listing(dir.path()), std::vector<std::string>{"out.jsonl"});
  clock += 1min;
  expect_all(deliver({records[2]}), Outcome::ok);
  EXPECT_EQ(listing(dir.path()),
            (std::vector<std::string>{"out.jsonl", "out.jsonl.20240501T130000.000Z"}));
  EXPECT_EQ(read_file(dir / "out.jsonl.20240501T130000.000Z"), lines_of({records[0], records[1]}));
  EXPECT_EQ(read_file(dir / "out.jsonl"), lines_of({records[2]}));
}

TEST_F(FileSinkTest, FsyncAlwaysSyncsEveryRecord) {
  config.fsync = Fsync::always;
  make();
  const std::vector<Record> records{make_record("1"), make_record("2"), make_record("3")};
  expect_all(deliver(records), Outcome::ok);
  EXPECT_EQ(sink->stats().writes, 3u);
  EXPECT_EQ(sink->stats().fsyncs, 3u);
  EXPECT_EQ(read_file(dir / "out.jsonl"), lines_of(records));
}

TEST_F(FileSinkTest, FsyncBatchSyncsOncePerBatch) {
  config.fsync = Fsync::batch;
  make();
  const std::vector<Record> records{make_record("1"), make_record("2"), make_record("3")};
  expect_all(deliver(records), Outcome::ok);
  EXPECT_EQ(sink->stats().writes, 1u);
  EXPECT_EQ(sink->stats().fsyncs, 1u);
  EXPECT_EQ(read_file(dir / "out.jsonl"), lines_of(records));
  EXPECT_EQ(sink->max_batch(), 256u);
}

TEST_F(FileSinkTest, FsyncNeverDoesNotSync) {
  config.fsync = Fsync::never;
  make();
  const std::vector<Record> records{make_record("1"), make_record("2"), make_record("3")};
  expect_all(deliver(records), Outcome::ok);
  EXPECT_EQ(sink->stats().writes, 1u);
  EXPECT_EQ(sink->stats().fsyncs, 0u);
  EXPECT_EQ(read_file(dir / "out.jsonl"), lines_of(records));
}

TEST_F(FileSinkTest, UnwritablePathIsRetriedThenRecovers) {
  test::write_file(dir / "blocker", "not a directory");
  config.path = path_template(dir / "blocker/out.jsonl");
  make();
  const std::vector<Record> records{make_record("1"), make_record("2")};
  const auto results = deliver(records);
  expect_all(results, Outcome::retry);
  EXPECT_EQ(results[0].reason, "mkdir: Not a directory");
  fs::remove(dir / "blocker");
  expect_all(deliver(records), Outcome::ok);
  EXPECT_EQ(read_file(dir / "blocker/out.jsonl"), lines_of(records));
}

TEST_F(FileSinkTest, DiskFullIsRetriedWithTheErrnoText) {
  config.path = path_template("/dev/full");
  make();
  const auto results = deliver({make_record("1")});
  expect_all(results, Outcome::retry);
  EXPECT_EQ(results[0].reason, "write: No space left on device");
}

TEST_F(FileSinkTest, ShortWriteIsCutBackSoNoTornLineRemains) {
  make();
  const std::vector<Record> records{make_record("1"), make_record("2"), make_record("3")};
  expect_all(deliver({records[0]}), Outcome::ok);
  const auto size = fs::file_size(dir / "out.jsonl");

  // The file size limit makes the kernel accept 10 bytes of the batch, then refuse (EFBIG).
  struct sigaction ignore {};
  struct sigaction previous {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGXFSZ, &ignore, &previous), 0);
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  rlimit limited = saved;
  limited.rlim_cur = static_cast<rlim_t>(size + 10);
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &limited), 0);
  const auto results = deliver({records[1], records[2]});
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &saved), 0);
  ASSERT_EQ(::sigaction(SIGXFSZ, &previous, nullptr), 0);

  expect_all(results, Outcome::retry);
  EXPECT_EQ(results[0].reason, "write: File too large");
  EXPECT_EQ(read_file(dir / "out.jsonl"), lines_of({records[0]}));  // no partial line left

  expect_all(deliver({records[1], records[2]}), Outcome::ok);
  EXPECT_EQ(read_file(dir / "out.jsonl"), lines_of(records));
}

TEST_F(FileSinkTest, ALineTornByACrashIsNotGluedToTheNextRecord) {
  test::write_file(dir / "out.jsonl", "{\"torn\":");
  make();
  const auto r = make_record("1");
  expect_all(deliver({r}), Outcome::ok);
  EXPECT_EQ(read_file(dir / "out.jsonl"), "{\"torn\":\n" + lines_of({r}));
}

TEST_F(FileSinkTest, IdleFilesAreClosed) {
  options.idle_close = std::chrono::seconds{60};
  config.path = path_template(dir / "{payload.f}.jsonl");
  make();
  expect_all(deliver({make_record(R"({"f":"a"})"), make_record(R"({"f":"b"})")}), Outcome::ok);
  EXPECT_EQ(sink->stats().open_files, 2u);
  clock += 30s;
  expect_all(deliver({make_record(R"({"f":"a"})")}), Outcome::ok);
  EXPECT_EQ(sink->stats().open_files, 2u);
  clock += 45s;  // b unused for 75 s, a for 45 s
  expect_all(deliver({make_record(R"({"f":"c"})")}), Outcome::ok);
  EXPECT_EQ(sink->stats().open_files, 2u);  // a and c
}

TEST_F(FileSinkTest, WorkerAndFileSinkEndToEnd) {
  config.fsync = Fsync::batch;
  Metrics metrics;
  config::SinkConfig sink_config;
  sink_config.name = "archive";
  sink_config.settings = config::make_settings(config);
  std::string error;
  auto made = make_sink(sink_config, "shop", pool, ctx.get_executor(), error);
  ASSERT_NE(made, nullptr) << error;
  SinkWorker worker(ctx.get_executor(), std::move(made), sink_config, metrics.sink("archive"),
                    pool);
  std::vector<Record> records;
  for (int i = 0; i < 600; ++i) {
    records.push_back(make_record(R"({"seq":)" + std::to_string(i) + "}"));
    ASSERT_EQ(worker.offer(records.back()), SinkWorker::Accept::queued);
  }
  worker.start();
  ASSERT_TRUE(test::run_co(ctx, worker.stop(std::chrono::steady_clock::now() + 60s)));
  EXPECT_EQ(worker.stats().sent, 600u);
  EXPECT_EQ(read_file(dir / "out.jsonl"), lines_of(records));
}

TEST(SinkFactory, MakesFileSinksAndReportsUnusableOnes) {
  BlockingPool pool(1);
  boost::asio::io_context ctx;
  config::SinkConfig c;
  c.name = "orders";
  std::string error;
  c.settings =
      config::make_settings(WebhookSinkConfig{});  // no URL: the loader never lets this through
  EXPECT_EQ(make_sink(c, "p", pool, ctx.get_executor(), error), nullptr);
  EXPECT_FALSE(error.empty());
  error.clear();
  c.settings = config::make_settings(FileSinkConfig{});
  EXPECT_NE(make_sink(c, "p", pool, ctx.get_executor(), error), nullptr);
  EXPECT_TRUE(error.empty());
}

TEST(FileSinkSuffix, IsUtcWithMilliseconds) {
  const auto t = std::chrono::sys_days{std::chrono::year{2023} / 12 / 31} + 23h + 59min + 59s + 7ms;
  EXPECT_EQ(FileSink::rotation_suffix(t), "20231231T235959.007Z");
}

}  // namespace
}  // namespace sluice::sinks
