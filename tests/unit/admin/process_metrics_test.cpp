#include "core/process_metrics.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <ctime>
#include <vector>

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

namespace sluice {
namespace {

// A real line from proc(5), with a command name that holds a space and a ')'.
constexpr std::string_view kStat =
    "4242 (my prog) x) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 150 0 0 20 0 3 0 "
    "360000 104857600 2560 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n";

TEST(ParseProcStat, ReadsCpuMemoryAndStartTime) {
  const auto fields = parse_proc_stat(kStat, 100, 4096);
  ASSERT_TRUE(fields.has_value());
  EXPECT_DOUBLE_EQ(fields->cpu_seconds, 4.0);  // (250 + 150) ticks / 100
  EXPECT_DOUBLE_EQ(fields->start_seconds_after_boot, 3600.0);
  EXPECT_DOUBLE_EQ(fields->virtual_memory_bytes, 104857600.0);
  EXPECT_DOUBLE_EQ(fields->resident_memory_bytes, 2560.0 * 4096);
}

TEST(ParseProcStat, RejectsTruncatedOrMalformedLines) {
  EXPECT_FALSE(parse_proc_stat("4242 (prog) S 1 2 3", 100, 4096).has_value());
  EXPECT_FALSE(parse_proc_stat("no parenthesis at all", 100, 4096).has_value());
  std::string bad(kStat);
  bad.replace(bad.find(" 250 "), 5, " 2x0 ");
  EXPECT_FALSE(parse_proc_stat(bad, 100, 4096).has_value());
  EXPECT_FALSE(parse_proc_stat(kStat, 0, 4096).has_value());
}

TEST(ParseBootTime, FindsTheBtimeLine) {
  EXPECT_EQ(parse_boot_time("cpu  1 2 3\nintr 5\nbtime 1700000000\nprocesses 9\n"), 1700000000.0);
  EXPECT_FALSE(parse_boot_time("cpu  1 2 3\n").has_value());
  EXPECT_FALSE(parse_boot_time("btime soon\n").has_value());
}

TEST(ReadProcessStats, DescribesThisProcess) {
  const auto stats = read_process_stats();
  ASSERT_TRUE(stats.has_value());
  EXPECT_GT(stats->resident_memory_bytes, 0);
  EXPECT_GE(stats->virtual_memory_bytes, stats->resident_memory_bytes);
  EXPECT_GE(stats->cpu_seconds, 0);
  EXPECT_GE(stats->open_fds, 3);  // stdin, stdout, stderr
  EXPECT_GE(stats->max_fds, stats->open_fds);
  const auto now = static_cast<double>(std::time(nullptr));
  EXPECT_GT(stats->start_time_seconds, 1.0e9);
  EXPECT_LE(stats->start_time_seconds, now + 1);
}

TEST(ReadProcessStats, CountsNewDescriptors) {
  const auto before = read_process_stats();
  ASSERT_TRUE(before.has_value());
  std::vector<int> fds;
  for (int i = 0; i < 8; ++i)
    fds.push_back(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  const auto after = read_process_stats();
  for (const int fd : fds)
    ::close(fd);
  ASSERT_TRUE(after.has_value());
  EXPECT_GE(after->open_fds, before->open_fds + 8);
}

TEST(ProcessMetrics, ExportsTheStandardSeriesWithTheirTypes) {
  prometheus::Registry registry;
  ProcessMetrics metrics(registry);
  ProcessMetrics again(registry);  // a second instance shares the series
  again.refresh();
  const auto text = prometheus::TextSerializer().Serialize(registry.Collect());
  for (const auto* line : {
           "# TYPE process_cpu_seconds_total counter",
           "# TYPE process_resident_memory_bytes gauge",
           "# TYPE process_virtual_memory_bytes gauge",
           "# TYPE process_open_fds gauge",
           "# TYPE process_max_fds gauge",
           "# TYPE process_start_time_seconds gauge",
           "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.",
       }) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
  }
  EXPECT_EQ(text.find("process_open_fds 0\n"), std::string::npos) << text;
  // Exactly one sample per series, however many instances refreshed.
  std::size_t samples = 0;
  for (std::size_t pos = 0;
       (pos = text.find("\nprocess_resident_memory_bytes ", pos)) != std::string::npos; ++pos) {
    ++samples;
  }
  EXPECT_EQ(samples, 1u);
}

}  // namespace
}  // namespace sluice
