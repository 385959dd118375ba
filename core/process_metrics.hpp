#pragma once

#include <optional>
#include <string_view>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

// The standard process_* series (names, types and help as the official Prometheus client
// libraries export them), read from /proc/self.
namespace sluice {

// One sample of the process, in the units Prometheus expects.
struct ProcessStats {
  double cpu_seconds = 0;  // user + system
  double resident_memory_bytes = 0;
  double virtual_memory_bytes = 0;
  double start_time_seconds = 0;  // since the Unix epoch
  double open_fds = 0;
  double max_fds = 0;  // the soft RLIMIT_NOFILE
};

// The fields of /proc/[pid]/stat we export.
struct ProcStatFields {
  double cpu_seconds = 0;
  double virtual_memory_bytes = 0;
  double resident_memory_bytes = 0;
  double start_seconds_after_boot = 0;
};

// Parses the one line of /proc/[pid]/stat. The command name is in parentheses and may itself
// hold spaces and parentheses, so fields are counted from the last ')'. nullopt when malformed.
std::optional<ProcStatFields> parse_proc_stat(std::string_view text, long ticks_per_second,
                                              long page_size);
// The `btime` line of /proc/stat: the boot time in seconds since the epoch.
std::optional<double> parse_boot_time(std::string_view proc_stat);
// Reads /proc/self/stat, /proc/stat, /proc/self/fd and the fd limit. nullopt when /proc is
// unreadable (the series then keep their last values).
std::optional<ProcessStats> read_process_stats();

// Registers the process_* families on a registry (an ordinary prometheus-cpp Registry holds
// only its own counter/gauge families, so these are such families) and refreshes them from
// /proc on demand. Whoever serves the exposition calls refresh() right before rendering it,
// so the values are read at scrape time. Owned by that server (the AdminServer); refresh()
// may be called from any thread. Several instances on one registry share the same series.
class ProcessMetrics {
 public:
  explicit ProcessMetrics(prometheus::Registry& registry);

  void refresh();

 private:
  prometheus::Counter* cpu_seconds_;
  prometheus::Gauge* resident_memory_bytes_;
  prometheus::Gauge* virtual_memory_bytes_;
  prometheus::Gauge* start_time_seconds_;
  prometheus::Gauge* open_fds_;
  prometheus::Gauge* max_fds_;
};

}  // namespace sluice
