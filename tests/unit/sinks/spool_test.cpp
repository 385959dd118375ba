#include "sinks/spool/spool.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/metrics.hpp"
#include "sinks/file/file_config.hpp"
#include "sinks/spool/record_codec.hpp"
#include "sinks/worker.hpp"
#include "tests/unit/sinks/test_support.hpp"

namespace sluice::sinks::spool {
namespace {

using namespace std::chrono_literals;
using test::make_record;
using test::run_co;
using test::run_until;
namespace asio = boost::asio;
namespace fs = std::filesystem;

std::string payload(int n) {
  return R"({"n":)" + std::to_string(n) + "}";
}

std::vector<std::string> segments(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".seg")
      out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Payloads of the recovered records, in order.
std::vector<std::string> payloads(const std::vector<DecodedRecord>& records) {
  std::vector<std::string> out;
  for (const auto& r : records)
    out.emplace_back(r.record.event->payload);
  return out;
}

std::vector<std::string> expected(int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i < to; ++i)
    out.push_back(payload(i));
  return out;
}

class SpoolTest : public ::testing::Test {
 protected:
  std::unique_ptr<Spool> open(std::uint64_t segment_bytes = 16 << 20) {
    Spool::Options o;
    o.dir = dir / "s";
    o.segment_bytes = segment_bytes;
    o.commit_interval = 1ms;
    o.on_error = [this](std::string_view reason) { errors.emplace_back(reason); };
    return std::make_unique<Spool>(ctx.get_executor(), pool, std::move(o));
  }

  void append(Spool& s, int from, int to) {
    for (int i = from; i < to; ++i)
      s.append(make_record(payload(i), "route-" + std::to_string(i)));
  }

  void close(Spool& s) { ASSERT_TRUE(run_co(ctx, s.close())); }

  void flip_byte(const std::string& path, std::uint64_t at) {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(at));
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x5a);
    f.seekp(static_cast<std::streamoff>(at));
    f.write(&c, 1);
  }

  asio::io_context ctx;
  BlockingPool pool{1};
  test::TempDir dir;
  std::vector<std::string> errors;
};

TEST(RecordCodec, RoundTripRebuildsTheEventExactly) {
  const auto original = make_record(R"({"$id":"a\"b","total":12})", "paid");
  std::string buf;
  const auto wall = std::chrono::system_clock::now() - 3s;
  const auto size = append_frame(buf, 42, original, wall);
  ASSERT_EQ(size, buf.size());
  std::size_t frame_bytes = 0;
  ASSERT_EQ(check_frame(buf, 0, frame_bytes), FrameCheck::ok);
  EXPECT_EQ(frame_bytes, buf.size());
  const auto steady = std::chrono::steady_clock::now();
  const auto decoded = decode_body(frame_body(buf, 0), steady, std::chrono::system_clock::now());
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->seq, 42u);
  const Event& a = *original.event;
  const Event& b = *decoded->record.event;
  EXPECT_EQ(decoded->record.route, "paid");
  EXPECT_EQ(decoded->record.channel_name(), "c1");
  EXPECT_EQ(b.data, a.data);
  EXPECT_EQ(b.payload, a.payload);
  EXPECT_EQ(b.payload.data(), b.data.data() + (a.payload.data() - a.data.data()));
  EXPECT_EQ(b.events, a.events);
  EXPECT_EQ(b.channels, a.channels);
  EXPECT_EQ(b.timestamp_text, a.timestamp_text);
  EXPECT_EQ(b.timestamp, a.timestamp);
  EXPECT_EQ(b.id, a.id);
  EXPECT_GE(b.readable_after(b.data), b.data.size() + kJsonPadding);
  EXPECT_GE(steady - b.received, 2s);  // the age before the restart is kept

  buf[buf.size() - 3] ^= 1;
  EXPECT_EQ(check_frame(buf, 0, frame_bytes), FrameCheck::bad);
  EXPECT_EQ(check_frame(std::string_view(buf).substr(0, buf.size() - 1), 0, frame_bytes),
            FrameCheck::incomplete);
}

// A frame as the version that stored route and channel as strings in the record wrote it: the
// format is unchanged, so the names come back as an interned route and an index into the
// event's own channels.
TEST(RecordCodec, DecodesAFrameWrittenByThePreviousVersion) {
  const std::string hex =
      "53504c31e80000000efc64083862bd0d010700000000000000959c26348f010000009cc7b663170600640000"
      "000b00000004000000706169640200000063311d000000323032342d30352d30315431323a33343a35362e37"
      "38392b30303a30300100000008000000782e6372656174650200000002000000633002000000633100000000"
      "700000007b226576656e7473223a5b22782e637265617465225d2c226368616e6e656c73223a5b226330222c"
      "226331225d2c2274696d657374616d70223a22323032342d30352d30315431323a33343a35362e3738392b30"
      "303a3030222c227061796c6f6164223a7b22246964223a2261227d7d";
  std::string buf;
  for (std::size_t i = 0; i < hex.size(); i += 2)
    buf.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  std::size_t frame_bytes = 0;
  ASSERT_EQ(check_frame(buf, 0, frame_bytes), FrameCheck::ok);
  const auto decoded = decode_body(frame_body(buf, 0), std::chrono::steady_clock::now(),
                                   std::chrono::system_clock::now());
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->seq, 7u);
  EXPECT_EQ(decoded->record.route, "paid");
  EXPECT_EQ(decoded->record.channel, 1u);
  EXPECT_EQ(decoded->record.channel_name(), "c1");
  EXPECT_EQ(decoded->record.event->payload, R"({"$id":"a"})");
  EXPECT_EQ(decoded->record.event->timestamp_text, "2024-05-01T12:34:56.789+00:00");
  // That version stored no id: it was the hash of `data`, and stays so.
  EXPECT_EQ(decoded->record.event->id, make_event_id(decoded->record.event->data));
  // Encoding it again gives the current version, which keeps the id as it is.
  std::string again;
  append_frame(again, 7, decoded->record,
               std::chrono::system_clock::time_point{std::chrono::seconds{1714566896}});
  ASSERT_EQ(check_frame(again, 0, frame_bytes), FrameCheck::ok);
  const auto reread = decode_body(frame_body(again, 0), std::chrono::steady_clock::now(),
                                  std::chrono::system_clock::now());
  ASSERT_TRUE(reread);
  EXPECT_EQ(reread->record.event->data, decoded->record.event->data);
  EXPECT_EQ(reread->record.event->id, decoded->record.event->id);
  EXPECT_EQ(reread->record.channel_name(), "c1");
}

// The id identifies the change, not the bytes, so it is stored rather than recomputed.
TEST(RecordCodec, KeepsAnIdThatIsNotTheHashOfData) {
  auto ev = std::make_shared<Event>();
  ev->frame.reserve(64 + kJsonPadding);
  ev->frame = R"({"events":["e"],"channels":["c"],"payload":{}})";
  ev->data = ev->frame;
  ev->id = "0123456789abcdef0123456789abcdef";
  std::string buf;
  append_frame(buf, 1, Record{ev, RouteName::intern("r"), Record::kNoChannel},
               std::chrono::system_clock::now());
  const auto decoded = decode_body(frame_body(buf, 0), std::chrono::steady_clock::now(),
                                   std::chrono::system_clock::now());
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->record.event->id, ev->id);
}

TEST_F(SpoolTest, AppendAckReopenRoundTrip) {
  {
    auto s = open();
    EXPECT_TRUE(s->take_recovered().empty());
    append(*s, 0, 10);
    EXPECT_FALSE(s->synced());
    s->set_head(4);
    close(*s);
    EXPECT_TRUE(s->synced());
  }
  auto s = open();
  const auto rec = s->take_recovered();
  EXPECT_EQ(payloads(rec), expected(4, 10));
  ASSERT_EQ(rec.size(), 6u);
  EXPECT_EQ(rec.front().seq, 4u);
  EXPECT_EQ(rec.front().record.route, "route-4");
  EXPECT_EQ(s->corrupt(), 0u);
  EXPECT_EQ(s->next_seq(), 10u);
  // New records continue the sequence after the recovered ones.
  append(*s, 10, 12);
  s->set_head(11);
  close(*s);
  auto again = open();
  EXPECT_EQ(payloads(again->take_recovered()), expected(11, 12));
  EXPECT_TRUE(errors.empty());
}

TEST_F(SpoolTest, GroupCommitWritesWithoutClose) {
  auto s = open();
  append(*s, 0, 100);
  ASSERT_TRUE(run_until(ctx, [&] { return s->synced(); }));
  // Far fewer commits than records: the records were grouped.
  EXPECT_LT(s->commits(), 100u);
  // Reading the files now, as a restart after a crash would.
  s.reset();
  auto reopened = open();
  EXPECT_EQ(payloads(reopened->take_recovered()), expected(0, 100));
}

TEST_F(SpoolTest, TornTailIsCutAndAppendsContinue) {
  {
    auto s = open();
    append(*s, 0, 3);
    close(*s);
  }
  const auto segs = segments(dir / "s");
  ASSERT_EQ(segs.size(), 1u);
  const auto size = fs::file_size(segs[0]);
  fs::resize_file(segs[0], size - 5);  // the last record loses its end
  {
    auto s = open();
    EXPECT_EQ(payloads(s->take_recovered()), expected(0, 2));
    EXPECT_EQ(s->corrupt(), 0u);
    EXPECT_GT(s->torn_bytes(), 0u);
    EXPECT_LT(fs::file_size(segs[0]), size - 5);  // cut back to the last whole record
    append(*s, 10, 11);
    close(*s);
  }
  auto s = open();
  EXPECT_EQ(s->torn_bytes(), 0u);
  const auto rec = s->take_recovered();
  EXPECT_EQ(payloads(rec), (std::vector<std::string>{payload(0), payload(1), payload(10)}));
  EXPECT_LT(rec[1].seq, rec[2].seq);
}

TEST_F(SpoolTest, CorruptRecordIsSkippedCountedAndLaterOnesRecovered) {
  {
    auto s = open();
    append(*s, 0, 5);
    close(*s);
  }
  const auto seg = segments(dir / "s").at(0);
  const auto frame = fs::file_size(seg) / 5;  // equal-sized records
  flip_byte(seg, frame + frame / 2);          // inside the body of record 1
  {
    auto s = open();
    EXPECT_EQ(payloads(s->take_recovered()),
              (std::vector<std::string>{payload(0), payload(2), payload(3), payload(4)}));
    EXPECT_EQ(s->corrupt(), 1u);
  }
  // A damaged header (the length cannot be trusted): recovery finds the next record.
  flip_byte(seg, 3 * frame + 5);
  auto s = open();
  EXPECT_EQ(payloads(s->take_recovered()),
            (std::vector<std::string>{payload(0), payload(2), payload(4)}));
  EXPECT_EQ(s->corrupt(), 2u);
}

TEST_F(SpoolTest, CorruptLastRecordIsCountedAndCut) {
  {
    auto s = open();
    append(*s, 0, 3);
    close(*s);
  }
  const auto seg = segments(dir / "s").at(0);
  flip_byte(seg, fs::file_size(seg) - 2);
  auto s = open();
  EXPECT_EQ(payloads(s->take_recovered()), expected(0, 2));
  EXPECT_EQ(s->corrupt(), 1u);
}

TEST_F(SpoolTest, SegmentsRollOverAndAreDeletedOnceAcknowledged) {
  auto s = open(4096);
  append(*s, 0, 100);  // ~200 bytes each: several segments
  ASSERT_TRUE(run_until(ctx, [&] { return s->synced(); }));
  const auto many = segments(dir / "s").size();
  EXPECT_GE(many, 4u);
  EXPECT_EQ(s->segment_count(), many);
  s->set_head(50);
  ASSERT_TRUE(run_until(ctx, [&] { return s->synced(); }));
  const auto fewer = segments(dir / "s").size();
  EXPECT_LT(fewer, many);
  EXPECT_GT(fewer, 1u);
  s->set_head(100);  // everything acknowledged: only the segment being appended to is left
  close(*s);
  EXPECT_EQ(segments(dir / "s").size(), 1u);
  s.reset();
  auto reopened = open(4096);
  EXPECT_TRUE(reopened->take_recovered().empty());
  EXPECT_EQ(reopened->next_seq(), 100u);
}

TEST_F(SpoolTest, ReopenAcrossSegmentsKeepsOrder) {
  {
    auto s = open(4096);
    append(*s, 0, 60);
    s->set_head(7);
    close(*s);
  }
  auto s = open(4096);
  EXPECT_EQ(payloads(s->take_recovered()), expected(7, 60));
}

TEST_F(SpoolTest, ZeroFilledTailIsCutWithoutCountingCorruption) {
  // What a file system may leave after a crash: the size grew, the data never came.
  {
    auto s = open();
    append(*s, 0, 3);
    close(*s);
  }
  const auto seg = segments(dir / "s").at(0);
  const auto size = fs::file_size(seg);
  fs::resize_file(seg, size + 100);
  auto s = open();
  EXPECT_EQ(payloads(s->take_recovered()), expected(0, 3));
  EXPECT_EQ(s->corrupt(), 0u);
  EXPECT_EQ(s->torn_bytes(), 100u);
  EXPECT_EQ(fs::file_size(seg), size);
}

TEST_F(SpoolTest, CorruptRecordInAnOlderSegmentIsSkippedAndCounted) {
  {
    auto s = open(4096);
    append(*s, 0, 60);
    close(*s);
  }
  const auto segs = segments(dir / "s");
  ASSERT_GE(segs.size(), 3u);
  flip_byte(segs[0], fs::file_size(segs[0]) - 2);  // the last record of the first segment
  auto s = open(4096);
  const auto rec = s->take_recovered();
  EXPECT_EQ(rec.size(), 59u);
  EXPECT_EQ(s->corrupt(), 1u);
  EXPECT_EQ(s->torn_bytes(), 0u);  // only the last segment's tail is ever cut
  EXPECT_EQ(payloads(rec).back(), payload(59));
}

TEST_F(SpoolTest, TornHeadSlotFallsBackToThePreviousHead) {
  {
    auto s = open();
    append(*s, 0, 10);
    ASSERT_TRUE(run_until(ctx, [&] { return s->synced(); }));
    s->set_head(4);
    ASSERT_TRUE(run_until(ctx, [&] { return s->synced(); }));
    s->set_head(6);
    close(*s);
  }
  // Damage the slot holding 6: the other slot (4) is used, so records come back twice at
  // worst, never go missing.
  const std::string head = dir / "s" + "/head";
  std::ifstream in(head, std::ios::binary);
  char slots[32] = {};
  in.read(slots, sizeof slots);
  ASSERT_EQ(in.gcount(), 32);
  std::uint64_t first = 0;
  std::memcpy(&first, slots, 8);
  flip_byte(head, first == 6 ? 9 : 25);
  auto s = open();
  EXPECT_EQ(payloads(s->take_recovered()), expected(4, 10));
}

// A file that cannot grow (RLIMIT_FSIZE: EFBIG, as a full disk gives ENOSPC): commits fail and
// are reported, records acknowledged meanwhile are never written, and once the sink has caught
// up the spool moves to a new segment instead of staying stuck on the full one.
TEST_F(SpoolTest, FullFileIsReportedThenLeftForANewSegment) {
  auto s = open();
  append(*s, 0, 3);
  ASSERT_TRUE(run_until(ctx, [&] { return s->synced(); }));
  const auto first = segments(dir / "s").at(0);

  struct sigaction ignore {};
  struct sigaction previous {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGXFSZ, &ignore, &previous), 0);
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  rlimit limited = saved;
  limited.rlim_cur = static_cast<rlim_t>(fs::file_size(first));
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &limited), 0);

  append(*s, 3, 5);
  const bool failed = run_until(ctx, [&] { return !errors.empty(); });
  s->set_head(4);    // 0..3 acknowledged; 3 was never written and never will be
  append(*s, 5, 6);  // the new segment has room for 4 and 5 (the limit is 3 records)
  const bool recovered = run_until(
      ctx, [&] { return s->synced(); }, 10s);
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &saved), 0);
  ASSERT_EQ(::sigaction(SIGXFSZ, &previous, nullptr), 0);

  ASSERT_TRUE(failed);
  EXPECT_EQ(errors.front(), "write: File too large");
  ASSERT_TRUE(recovered);
  const auto segs = segments(dir / "s");
  ASSERT_EQ(segs.size(), 1u);  // the full one was reclaimed
  EXPECT_NE(segs[0], first);
  close(*s);
  s.reset();
  auto reopened = open();
  EXPECT_EQ(payloads(reopened->take_recovered()), expected(4, 6));
}

TEST_F(SpoolTest, UnusableDirectoryThrows) {
  test::write_file(dir / "s", "a file where the directory should be");
  EXPECT_THROW(open(), std::runtime_error);
}

// ---- The worker with buffer.type: disk ----

// Delivers everything (ok) and records payloads; with `hold`, deliver() waits for release().
class RecordingSink final : public Sink {
 public:
  explicit RecordingSink(asio::any_io_executor ex)
      : gate_(ex, std::chrono::steady_clock::time_point::max()) {}
  std::size_t max_batch() const override { return 2; }
  asio::awaitable<void> deliver(std::span<const Record> batch, std::span<Result>) override {
    in_flight = true;
    while (hold)
      co_await gate_.async_wait(asio::as_tuple(asio::use_awaitable));
    in_flight = false;
    for (const auto& r : batch)
      delivered.emplace_back(r.event->payload);
  }
  void release() {
    hold = false;
    gate_.cancel();
  }
  bool hold = false;
  bool in_flight = false;
  std::vector<std::string> delivered;

 private:
  asio::steady_timer gate_;
};

class DiskWorkerTest : public ::testing::Test {
 protected:
  DiskWorkerTest() {
    config.name = "s";
    config.settings = config::make_settings(FileSinkConfig{});
    config.buffer.type = config::BufferConfig::Type::disk;
    config.buffer.dir = dir.path();
    config.buffer.max_events = 1000;
    config.buffer.max_bytes = 1 << 20;
    options.spool_commit_interval = 1ms;
  }

  void make() {
    quiesce_pool();
    ctx = std::make_unique<asio::io_context>();
    auto s = std::make_unique<RecordingSink>(ctx->get_executor());
    sink = s.get();
    worker =
        std::make_unique<SinkWorker>(ctx->get_executor(), std::move(s), config, sm, pool, options);
  }

  void stop() {
    ASSERT_TRUE(run_co(*ctx, worker->stop(std::chrono::steady_clock::now())));
    worker.reset();
  }

  // A kill -9 after the group commit: the worker and its loop vanish without stop().
  void crash() {
    quiesce_pool();
    worker.reset();
    ctx.reset();
  }

  // A pool thread may still be unwinding the last commit job, which holds a copy of the loop's
  // executor: before a loop is destroyed, wait until a later job has run (one pool thread).
  void quiesce_pool() {
    std::atomic<bool> idle{false};
    asio::post(pool.executor(), [&idle] { idle = true; });
    while (!idle)
      std::this_thread::yield();
  }

  ~DiskWorkerTest() override {
    quiesce_pool();
    worker.reset();
    ctx.reset();
  }

  SinkWorker::Accept offer(int n) { return worker->offer(make_record(payload(n))); }

  test::TempDir dir;
  BlockingPool pool{1};
  Metrics metrics;
  SinkMetrics sm = metrics.sink("s");
  config::SinkConfig config;
  WorkerOptions options;
  std::unique_ptr<asio::io_context> ctx;
  RecordingSink* sink = nullptr;
  std::unique_ptr<SinkWorker> worker;
};

TEST_F(DiskWorkerTest, CrashAfterGroupCommitRedeliversOnlyUnacknowledgedInOrder) {
  make();
  for (int i = 0; i < 6; ++i)
    ASSERT_EQ(offer(i), SinkWorker::Accept::queued);
  worker->start();
  ASSERT_TRUE(
      run_until(*ctx, [&] { return worker->stats().sent == 6 && worker->stats().spool_synced; }));
  sink->hold = true;
  for (int i = 6; i < 15; ++i)
    ASSERT_EQ(offer(i), SinkWorker::Accept::queued);
  ASSERT_TRUE(run_until(*ctx, [&] { return sink->in_flight && worker->stats().spool_synced; }));
  crash();

  make();
  EXPECT_EQ(worker->stats().queued_events, 9u);  // re-queued before anything new
  ASSERT_EQ(offer(15), SinkWorker::Accept::queued);
  worker->start();
  ASSERT_TRUE(run_until(*ctx, [&] { return worker->stats().sent == 10; }));
  EXPECT_EQ(sink->delivered, expected(6, 16));
  ASSERT_TRUE(run_until(*ctx, [&] { return worker->stats().spool_synced; }));
  stop();

  make();  // a clean stop left nothing behind
  EXPECT_EQ(worker->stats().queued_events, 0u);
  stop();
}

TEST_F(DiskWorkerTest, StopKeepsUndeliveredRecordsForTheNextStart) {
  make();
  sink->hold = true;
  worker->start();
  for (int i = 0; i < 5; ++i)
    offer(i);
  ASSERT_TRUE(run_until(*ctx, [&] { return sink->in_flight; }));
  // The grace period is over at once: the batch in flight is let finish, the rest stays.
  bool stopped = false;
  asio::co_spawn(*ctx, worker->stop(std::chrono::steady_clock::now()),
                 [&](std::exception_ptr) { stopped = true; });
  ctx->poll();
  sink->release();
  ASSERT_TRUE(run_until(*ctx, [&] { return stopped; }));
  EXPECT_EQ(sink->delivered, expected(0, 2));
  worker.reset();

  make();
  EXPECT_EQ(worker->stats().queued_events, 3u);
  worker->start();
  ASSERT_TRUE(run_until(*ctx, [&] { return worker->stats().sent == 3; }));
  EXPECT_EQ(sink->delivered, expected(2, 5));
  stop();
}

TEST_F(DiskWorkerTest, CorruptRecordIsCountedAndTheRestDelivered) {
  make();
  for (int i = 0; i < 4; ++i)
    offer(i);
  ASSERT_TRUE(run_until(*ctx, [&] { return worker->stats().spool_synced; }));
  crash();
  const auto seg = segments(dir / "s").at(0);
  const auto frame = fs::file_size(seg) / 4;
  std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(2 * frame + frame / 2));
  f.write("#", 1);
  f.close();

  make();
  EXPECT_EQ(worker->stats().spool_corrupt, 1u);
  EXPECT_EQ(sm.events_failed("corrupt").Value(), 1);
  worker->start();
  ASSERT_TRUE(run_until(*ctx, [&] { return worker->stats().sent == 3; }));
  EXPECT_EQ(sink->delivered, (std::vector<std::string>{payload(0), payload(1), payload(3)}));
  stop();
}

// A disk that refuses writes (RLIMIT_FSIZE: EFBIG, as a full disk gives ENOSPC): the sink says
// so and stops accepting, so what it accepted is on disk but for the records of the failed
// commit, which it counts; once a commit succeeds again it accepts again.
TEST_F(DiskWorkerTest, ADiskThatRefusesWritesStopsAcceptingUntilItWritesAgain) {
  config.buffer.when_full = config::BufferConfig::WhenFull::block;
  make();  // not started: nothing is delivered, everything stays in the disk buffer
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(offer(i), SinkWorker::Accept::queued);
  ASSERT_TRUE(run_until(*ctx, [&] { return worker->stats().spool_synced; }));
  const auto first = segments(dir / "s").at(0);

  struct sigaction ignore {};
  struct sigaction previous {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGXFSZ, &ignore, &previous), 0);
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  rlimit limited = saved;
  limited.rlim_cur = static_cast<rlim_t>(fs::file_size(first));
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &limited), 0);

  // Accepted before the disk said no: they are the failed commit's records.
  ASSERT_EQ(offer(3), SinkWorker::Accept::queued);
  ASSERT_EQ(offer(4), SinkWorker::Accept::queued);
  const bool refused = run_until(*ctx, [&] { return !worker->stats().buffer_persisting; });
  const auto during = worker->stats();
  const auto answer = offer(5);
  bool woke = false;
  asio::co_spawn(
      *ctx,
      [&]() -> asio::awaitable<void> {
        co_await worker->wait_for_space();
        woke = true;
      },
      asio::detached);
  ctx->poll();
  const bool woke_early = woke;

  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &saved), 0);
  // The spool retries its commit and the disk takes it: the waiting producer goes on.
  const bool writes_again = run_until(
      *ctx, [&] { return worker->stats().buffer_persisting && woke; }, 10s);
  ASSERT_EQ(::sigaction(SIGXFSZ, &previous, nullptr), 0);

  ASSERT_TRUE(refused);
  EXPECT_EQ(during.unpersisted, 2u);
  EXPECT_EQ(during.queued_events, 5u);
  EXPECT_EQ(answer, SinkWorker::Accept::full);  // block: refused, not kept in memory
  EXPECT_FALSE(woke_early);
  ASSERT_TRUE(writes_again);
  EXPECT_EQ(worker->stats().unpersisted, 0u);
  ASSERT_EQ(offer(5), SinkWorker::Accept::queued);
  ASSERT_TRUE(run_until(*ctx, [&] { return worker->stats().spool_synced; }));
  crash();
  make();
  EXPECT_EQ(worker->stats().queued_events, 6u);
  worker->start();
  ASSERT_TRUE(run_until(*ctx, [&] { return worker->stats().sent == 6; }));
  EXPECT_EQ(sink->delivered, expected(0, 6));
  stop();
}

TEST_F(DiskWorkerTest, ADiskThatRefusesWritesMakesTheDropPoliciesDropTheNewRecord) {
  config.buffer.when_full = config::BufferConfig::WhenFull::drop_oldest;
  make();
  ASSERT_EQ(offer(0), SinkWorker::Accept::queued);
  ASSERT_TRUE(run_until(*ctx, [&] { return worker->stats().spool_synced; }));
  const auto first = segments(dir / "s").at(0);
  struct sigaction ignore {};
  struct sigaction previous {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGXFSZ, &ignore, &previous), 0);
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  rlimit limited = saved;
  limited.rlim_cur = static_cast<rlim_t>(fs::file_size(first));
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &limited), 0);
  ASSERT_EQ(offer(1), SinkWorker::Accept::queued);
  const bool refused = run_until(*ctx, [&] { return !worker->stats().buffer_persisting; });
  const auto answer = offer(2);
  quiesce_pool();
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &saved), 0);
  ASSERT_EQ(::sigaction(SIGXFSZ, &previous, nullptr), 0);
  ASSERT_TRUE(refused);
  EXPECT_EQ(answer, SinkWorker::Accept::dropped);
  EXPECT_EQ(sm.events_failed("disk_buffer").Value(), 1);
  EXPECT_EQ(worker->stats().queued_events, 2u);  // nothing evicted for it
  stop();
}

class DiskWorkerFullTest : public DiskWorkerTest {
 protected:
  DiskWorkerFullTest() { config.buffer.max_events = 3; }
};

TEST_F(DiskWorkerFullTest, BlockRefusesWithoutAppending) {
  config.buffer.when_full = config::BufferConfig::WhenFull::block;
  make();
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(offer(i), SinkWorker::Accept::queued);
  EXPECT_EQ(offer(3), SinkWorker::Accept::full);
  ASSERT_TRUE(run_until(*ctx, [&] { return worker->stats().spool_synced; }));
  crash();
  make();
  EXPECT_EQ(worker->stats().queued_events, 3u);
  worker->start();
  ASSERT_TRUE(run_until(*ctx, [&] { return worker->stats().sent == 3; }));
  EXPECT_EQ(sink->delivered, expected(0, 3));
  stop();
}

TEST_F(DiskWorkerFullTest, DropNewestDropsAndCounts) {
  config.buffer.when_full = config::BufferConfig::WhenFull::drop_newest;
  make();
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(offer(i), SinkWorker::Accept::queued);
  EXPECT_EQ(offer(3), SinkWorker::Accept::dropped);
  EXPECT_EQ(sm.events_failed("dropped_full").Value(), 1);
  ASSERT_TRUE(run_until(*ctx, [&] { return worker->stats().spool_synced; }));
  crash();
  make();
  worker->start();
  ASSERT_TRUE(run_until(*ctx, [&] { return worker->stats().sent == 3; }));
  EXPECT_EQ(sink->delivered, expected(0, 3));
  stop();
}

TEST_F(DiskWorkerFullTest, DropOldestEvictsAndQueuesTheNewRecord) {
  config.buffer.when_full = config::BufferConfig::WhenFull::drop_oldest;
  make();
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(offer(i), SinkWorker::Accept::queued);
  EXPECT_EQ(offer(3), SinkWorker::Accept::queued);
  EXPECT_EQ(offer(4), SinkWorker::Accept::queued);
  EXPECT_EQ(sm.events_failed("dropped_full").Value(), 2);
  // The evicted records were the head: the head moved past them on disk too.
  ASSERT_TRUE(run_until(*ctx, [&] { return worker->stats().spool_synced; }));
  crash();
  make();
  EXPECT_EQ(worker->stats().queued_events, 3u);
  worker->start();
  ASSERT_TRUE(run_until(*ctx, [&] { return worker->stats().sent == 3; }));
  EXPECT_EQ(sink->delivered, expected(2, 5));
  stop();
}

TEST_F(DiskWorkerFullTest, MaxBytesBoundsTheDiskBufferToo) {
  config.buffer.max_events = 0;
  config.buffer.max_bytes = 3 * make_record(payload(0)).bytes();
  config.buffer.when_full = config::BufferConfig::WhenFull::drop_newest;
  make();
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(offer(i), SinkWorker::Accept::queued);
  EXPECT_EQ(offer(3), SinkWorker::Accept::dropped);
  EXPECT_EQ(worker->stats().queued_bytes, config.buffer.max_bytes);
  stop();
}

}  // namespace
}  // namespace sluice::sinks::spool
