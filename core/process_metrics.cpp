#include "core/process_metrics.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <mutex>
#include <string>
#include <vector>

namespace sluice {
namespace {

// /proc files report a size of 0, so they are read until EOF rather than by their stat size.
std::optional<std::string> read_proc_file(const char* path) {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return std::nullopt;
  std::string out;
  std::array<char, 4096> chunk{};
  for (;;) {
    const ssize_t n = ::read(fd, chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0)
      break;
    out.append(chunk.data(), static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

template <typename T>
std::optional<T> parse_number(std::string_view text) {
  T value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size())
    return std::nullopt;
  return value;
}

std::vector<std::string_view> split_spaces(std::string_view text) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\n'))
      ++i;
    const std::size_t start = i;
    while (i < text.size() && text[i] != ' ' && text[i] != '\n')
      ++i;
    if (i > start)
      out.push_back(text.substr(start, i - start));
  }
  return out;
}

std::optional<double> count_open_fds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr)
    return std::nullopt;
  double count = 0;
  // readdir() is safe here: this call owns its DIR stream.
  while (const dirent* entry = ::readdir(dir)) {  // NOLINT(concurrency-mt-unsafe)
    if (entry->d_name[0] != '.')
      ++count;
  }
  ::closedir(dir);
  // The descriptor opendir() used is counted too, as the Go and Python clients count it.
  return count;
}

// Serialises refresh() across instances: they share the counter, and the CPU counter is
// advanced by a difference that must be computed and applied as one step.
std::mutex& refresh_mutex() {
  static std::mutex m;
  return m;
}

}  // namespace

std::optional<ProcStatFields> parse_proc_stat(std::string_view text, long ticks_per_second,
                                              long page_size) {
  const auto close = text.rfind(')');
  if (close == std::string_view::npos || ticks_per_second <= 0 || page_size <= 0) {
    return std::nullopt;
  }
  const auto fields = split_spaces(text.substr(close + 1));
  // fields[0] is field 3 of proc(5) (state); utime is field 14, rss field 24.
  constexpr std::size_t kUtime = 11, kStime = 12, kStartTime = 19, kVsize = 20, kRss = 21;
  if (fields.size() <= kRss)
    return std::nullopt;
  const auto utime = parse_number<unsigned long long>(fields[kUtime]);
  const auto stime = parse_number<unsigned long long>(fields[kStime]);
  const auto start = parse_number<unsigned long long>(fields[kStartTime]);
  const auto vsize = parse_number<unsigned long long>(fields[kVsize]);
  const auto rss = parse_number<long long>(fields[kRss]);
  if (!utime || !stime || !start || !vsize || !rss)
    return std::nullopt;
  const auto ticks = static_cast<double>(ticks_per_second);
  ProcStatFields out;
  out.cpu_seconds = static_cast<double>(*utime + *stime) / ticks;
  out.start_seconds_after_boot = static_cast<double>(*start) / ticks;
  out.virtual_memory_bytes = static_cast<double>(*vsize);
  out.resident_memory_bytes = static_cast<double>(*rss) * static_cast<double>(page_size);
  return out;
}

std::optional<double> parse_boot_time(std::string_view proc_stat) {
  std::size_t pos = 0;
  while (pos < proc_stat.size()) {
    auto end = proc_stat.find('\n', pos);
    if (end == std::string_view::npos)
      end = proc_stat.size();
    const auto line = proc_stat.substr(pos, end - pos);
    if (line.starts_with("btime ")) {
      const auto value = parse_number<unsigned long long>(line.substr(6));
      if (!value)
        return std::nullopt;
      return static_cast<double>(*value);
    }
    pos = end + 1;
  }
  return std::nullopt;
}

std::optional<ProcessStats> read_process_stats() {
  const auto stat = read_proc_file("/proc/self/stat");
  const auto system_stat = read_proc_file("/proc/stat");
  if (!stat || !system_stat)
    return std::nullopt;
  const auto fields = parse_proc_stat(*stat, ::sysconf(_SC_CLK_TCK), ::sysconf(_SC_PAGESIZE));
  const auto boot = parse_boot_time(*system_stat);
  const auto fds = count_open_fds();
  rlimit limit{};
  if (!fields || !boot || !fds || ::getrlimit(RLIMIT_NOFILE, &limit) != 0)
    return std::nullopt;

  ProcessStats out;
  out.cpu_seconds = fields->cpu_seconds;
  out.resident_memory_bytes = fields->resident_memory_bytes;
  out.virtual_memory_bytes = fields->virtual_memory_bytes;
  out.start_time_seconds = *boot + fields->start_seconds_after_boot;
  out.open_fds = *fds;
  out.max_fds = static_cast<double>(limit.rlim_cur);
  return out;
}

ProcessMetrics::ProcessMetrics(prometheus::Registry& registry)
    : cpu_seconds_(&prometheus::BuildCounter()
                        .Name("process_cpu_seconds_total")
                        .Help("Total user and system CPU time spent in seconds.")
                        .Register(registry)
                        .Add({})),
      resident_memory_bytes_(&prometheus::BuildGauge()
                                  .Name("process_resident_memory_bytes")
                                  .Help("Resident memory size in bytes.")
                                  .Register(registry)
                                  .Add({})),
      virtual_memory_bytes_(&prometheus::BuildGauge()
                                 .Name("process_virtual_memory_bytes")
                                 .Help("Virtual memory size in bytes.")
                                 .Register(registry)
                                 .Add({})),
      start_time_seconds_(&prometheus::BuildGauge()
                               .Name("process_start_time_seconds")
                               .Help("Start time of the process since unix epoch in seconds.")
                               .Register(registry)
                               .Add({})),
      open_fds_(&prometheus::BuildGauge()
                     .Name("process_open_fds")
                     .Help("Number of open file descriptors.")
                     .Register(registry)
                     .Add({})),
      max_fds_(&prometheus::BuildGauge()
                    .Name("process_max_fds")
                    .Help("Maximum number of open file descriptors.")
                    .Register(registry)
                    .Add({})) {
  refresh();
}

void ProcessMetrics::refresh() {
  const auto stats = read_process_stats();
  if (!stats)
    return;
  std::lock_guard lock(refresh_mutex());
  // prometheus-cpp counters only go up; the kernel's figure is monotonic, so the difference
  // brings the counter to it without ever decrementing.
  const double behind = stats->cpu_seconds - cpu_seconds_->Value();
  if (behind > 0)
    cpu_seconds_->Increment(behind);
  resident_memory_bytes_->Set(stats->resident_memory_bytes);
  virtual_memory_bytes_->Set(stats->virtual_memory_bytes);
  start_time_seconds_->Set(stats->start_time_seconds);
  open_fds_->Set(stats->open_fds);
  max_fds_->Set(stats->max_fds);
}

}  // namespace sluice
