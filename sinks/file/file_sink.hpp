#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "config/config.hpp"
#include "sinks/blocking_pool.hpp"
#include "sinks/file/file_config.hpp"
#include "sinks/sink.hpp"

// The file sink: JSON Lines, one record (Event::data, byte for byte) per line,
// appended to the file its path template renders for that record. Files are created with their
// directories (mode 0640), kept open in a small cache, rotated by size or age (the current file
// is renamed `<path>.<YYYYmmddTHHMMSS.mmmZ>` and a new one started) and fsynced per policy:
// `always` after every record, `batch` once per file per deliver() call, `never` not at all.
//
// Owned by its SinkWorker; deliver() and close() are called from the worker's coroutine on the
// event loop, one at a time. Paths are rendered on the loop; every file operation runs on the
// BlockingPool, so the open-file cache is only touched by one pool thread at a time, handed over
// through the awaits.
//
// Failures: a failed mkdir/open/write/fsync/rename makes the affected records Outcome::retry
// with "<operation>: <errno text>" as the reason. A short write is truncated back to the size the
// file had before it, so a retried record never leaves a torn line; should that truncation fail
// too, the file is reopened and the next write starts with a newline (the same guard protects
// against a line torn by a crash). A path that renders empty, as a directory, or with more `..`
// segments than the template has (event data climbing out of the tree) is Outcome::failed.
namespace sluice::sinks {

struct FileSinkOptions {
  std::size_t max_batch = 256;
  std::size_t max_open_files = 64;       // least recently used closed beyond this
  std::chrono::seconds idle_close{300};  // files unused this long are closed at the next batch
  std::function<std::chrono::system_clock::time_point()> now;  // age rotation, suffixes
};

class FileSink final : public Sink {
 public:
  using Options = FileSinkOptions;

  // Counters for tests and /status; read them between deliveries.
  struct Stats {
    std::uint64_t writes = 0;
    std::uint64_t fsyncs = 0;
    std::uint64_t rotations = 0;
    std::size_t open_files = 0;
  };

  FileSink(FileSinkConfig config, std::string project, BlockingPool& pool, Options options = {});
  ~FileSink() override;
  FileSink(const FileSink&) = delete;
  FileSink& operator=(const FileSink&) = delete;

  std::size_t max_batch() const override { return options_.max_batch; }
  boost::asio::awaitable<void> deliver(std::span<const Record> batch,
                                       std::span<Result> results) override;
  boost::asio::awaitable<void> close() override;

  Stats stats() const;

  // The suffix a rotated file gets: "20240501T120000.123Z" (UTC).
  static std::string rotation_suffix(std::chrono::system_clock::time_point t);

 private:
  using Time = std::chrono::system_clock::time_point;
  struct OpenFile {
    int fd = -1;
    std::uint64_t size = 0;
    Time born{};  // start of the age used by rotate_max_age
    Time last_used{};
    bool needs_newline = false;  // the file ends in a torn line: start the next write with '\n'
  };

  void write_batch(std::span<const Record> batch, const std::vector<std::string>& paths,
                   std::span<Result> results);
  void write_group(const std::string& path, const std::vector<std::size_t>& indices,
                   std::span<const Record> batch, std::span<Result> results, Time now);
  OpenFile* open_file(const std::string& path, Time now, std::string& error);
  void close_file(const std::string& path);
  void close_all();
  bool rotate(const std::string& path, Time now, std::string& error);
  Time now() const;

  FileSinkConfig config_;
  std::string project_;
  BlockingPool& pool_;
  Options options_;

  std::map<std::string, OpenFile, std::less<>> files_;  // pool side only
  std::atomic<std::uint64_t> writes_{0};
  std::atomic<std::uint64_t> fsyncs_{0};
  std::atomic<std::uint64_t> rotations_{0};
  std::atomic<std::size_t> open_files_{0};
};

}  // namespace sluice::sinks
