#include "sinks/dead_letter.hpp"

#include <gtest/gtest.h>

#include "tests/unit/sinks/test_support.hpp"

namespace sluice::sinks {
namespace {

using namespace std::chrono_literals;

TEST(DeadLetterFile, LineFormat) {
  const auto record = test::make_record(R"({"$id":"x","q":"a\"b"})", "paid-orders");
  const auto t0 = std::chrono::sys_days{std::chrono::year{2024} / 5 / 1} + 12h;
  DeadLetter entry{record, "rejected: 400 \"bad\"", 3, t0 + 1ms, t0 + 2min + 7ms};
  std::string line;
  DeadLetterFile::append_line(line, entry, "audit", t0 + 1h);
  EXPECT_EQ(line,
            "{\"time\":\"2024-05-01T13:00:00.000Z\",\"sink\":\"audit\","
            "\"route\":\"paid-orders\",\"event_id\":\"" +
                record.event->id +
                "\",\"reason\":\"rejected: 400 \\\"bad\\\"\",\"attempts\":3,"
                "\"first_attempt\":\"2024-05-01T12:00:00.001Z\","
                "\"last_attempt\":\"2024-05-01T12:02:00.007Z\",\"record\":" +
                std::string(record.event->data) + "}\n");
}

TEST(DeadLetterFile, WritesAppendAndCreateDirectories) {
  boost::asio::io_context ctx;
  BlockingPool pool(1);
  test::TempDir dir;
  DeadLetterFile file(dir / "a/b/dead.jsonl", "s", pool);
  ASSERT_TRUE(file.enabled());
  const auto t0 = std::chrono::system_clock::now();
  std::vector<DeadLetter> entries{{test::make_record("1"), "r1", 1, t0, t0},
                                  {test::make_record("2"), "r2", 1, t0, t0}};
  std::error_code ec;
  ASSERT_TRUE(test::run_co(ctx, file.write(entries, t0), &ec));
  EXPECT_FALSE(ec);
  ASSERT_TRUE(test::run_co(ctx, file.write(std::span(entries).first(1), t0), &ec));
  EXPECT_FALSE(ec);
  std::string expected;
  DeadLetterFile::append_line(expected, entries[0], "s", t0);
  DeadLetterFile::append_line(expected, entries[1], "s", t0);
  DeadLetterFile::append_line(expected, entries[0], "s", t0);
  EXPECT_EQ(test::read_file(dir / "a/b/dead.jsonl"), expected);
}

TEST(DeadLetterFile, ReportsErrorsInsteadOfThrowing) {
  boost::asio::io_context ctx;
  BlockingPool pool(1);
  test::TempDir dir;
  test::write_file(dir / "file", "x");
  DeadLetterFile file(dir / "file/dead.jsonl", "s", pool);
  const auto t0 = std::chrono::system_clock::now();
  std::vector<DeadLetter> entries{{test::make_record("1"), "r", 1, t0, t0}};
  std::error_code ec;
  ASSERT_TRUE(test::run_co(ctx, file.write(entries, t0), &ec));
  EXPECT_EQ(ec, std::errc::not_a_directory);
}

}  // namespace
}  // namespace sluice::sinks
