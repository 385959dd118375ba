#include "sinks/file/file_sink.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <exception>
#include <string_view>
#include <unordered_map>

#include <fmt/format.h>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/log.hpp"
#include "core/template.hpp"
#include "core/utc.hpp"
#include "sinks/posix_file.hpp"

namespace sluice::sinks {

namespace {

std::size_t count_dotdot(std::string_view path) {
  std::size_t n = 0;
  std::size_t start = 0;
  while (start <= path.size()) {
    const auto end = std::min(path.find('/', start), path.size());
    if (path.substr(start, end - start) == "..")
      ++n;
    start = end + 1;
  }
  return n;
}

std::string op_error(std::string_view op, int err) {
  return std::string(op) + ": " + posix::error_text(err);
}

std::string op_error(std::string_view op, const std::error_code& ec) {
  return std::string(op) + ": " + posix::error_text(ec);
}

// fsync on something that cannot be synced (a pipe, /dev/stdout) is not a failure of the write.
bool fsync_ok(int fd, int& err) {
  if (::fsync(fd) == 0)
    return true;
  err = errno;
  return err == EINVAL || err == EROFS;
}

// Runs `job` on a pool thread and resumes the caller on its own executor: one post there and
// one back. BlockingPool::run does the same through co_spawn, whose coroutine frame and
// awaitable thread per call cost about as much as writing a small batch (callgrind, issue
// #10); the file sink calls this once per batch, so it uses the lighter path. An exception
// from `job` is rethrown in the caller, as with BlockingPool::run.
template <class F>
boost::asio::awaitable<void> run_on(BlockingPool& pool, F& job) {
  std::exception_ptr failure;
  auto initiate = [&pool, &job, &failure](auto handler) {
    // Counts as work on the caller's executor, as any asynchronous operation does, so its
    // loop does not run dry (and return) while the job is on the pool.
    auto busy = boost::asio::make_work_guard(handler);
    auto work = [&job, &failure, busy = std::move(busy), handler = std::move(handler)]() mutable {
      try {
        job();
      } catch (...) {
        failure = std::current_exception();
      }
      const auto home = boost::asio::get_associated_executor(handler);
      boost::asio::post(home, std::move(handler));
      busy.reset();
    };
    boost::asio::post(pool.executor(), std::move(work));
  };
  co_await boost::asio::async_initiate<const boost::asio::use_awaitable_t<>, void()>(
      std::move(initiate), boost::asio::use_awaitable);
  if (failure)
    std::rethrow_exception(failure);
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

}  // namespace

FileSink::FileSink(FileSinkConfig config, std::string project, BlockingPool& pool, Options options)
    : config_(std::move(config)),
      project_(std::move(project)),
      pool_(pool),
      options_(std::move(options)) {
  if (options_.max_batch == 0)
    options_.max_batch = 1;
  if (options_.max_open_files == 0)
    options_.max_open_files = 1;
}

FileSink::~FileSink() {
  close_all();
}

FileSink::Time FileSink::now() const {
  return options_.now ? options_.now() : std::chrono::system_clock::now();
}

std::string FileSink::rotation_suffix(Time t) {
  const auto u = to_utc(t);
  return fmt::format("{:04}{:02}{:02}T{:02}{:02}{:02}.{:03}Z", u.tm.tm_year + 1900, u.tm.tm_mon + 1,
                     u.tm.tm_mday, u.tm.tm_hour, u.tm.tm_min, u.tm.tm_sec, u.millis);
}

FileSink::Stats FileSink::stats() const {
  return Stats{writes_.load(), fsyncs_.load(), rotations_.load(), open_files_.load()};
}

std::string check_rendered_path(const FileSinkConfig& config, std::string_view path) {
  if (path.empty())
    return "path: renders empty";
  if (path.back() == '/')
    return "path: renders as a directory: " + std::string(path);
  if (path.find('\0') != std::string_view::npos)
    return "path: contains a NUL byte";
  if (count_dotdot(path) > count_dotdot(config.path.source()))
    return "path: event data adds '..': " + std::string(path);
  return {};
}

boost::asio::awaitable<void> FileSink::deliver(std::span<const Record> batch,
                                               std::span<Result> results) {
  // Rendering reads the event on the loop, where it is owned; only strings cross to the pool.
  std::vector<std::string> paths(batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const Record& r = batch[i];
    if (!r.event) {
      results[i] = Result{Outcome::failed, "record: no event", {}};
      continue;
    }
    paths[i] = config_.path.render(*r.event, r.template_context(project_));
    if (auto error = check_rendered_path(config_, paths[i]); !error.empty()) {
      results[i] = Result{Outcome::failed, std::move(error), {}};
      paths[i].clear();
    }
  }
  auto job = [this, batch, &paths, results] { write_batch(batch, paths, results); };
  co_await run_on(pool_, job);
}

boost::asio::awaitable<void> FileSink::close() {
  auto job = [this] { close_all(); };
  co_await run_on(pool_, job);
}

void FileSink::close_all() {
  for (auto& [path, f] : files_)
    ::close(f.fd);
  files_.clear();
  open_files_.store(0);
}

void FileSink::close_file(const std::string& path) {
  const auto it = files_.find(path);
  if (it == files_.end())
    return;
  ::close(it->second.fd);
  files_.erase(it);
  open_files_.store(files_.size());
}

void FileSink::write_batch(std::span<const Record> batch, const std::vector<std::string>& paths,
                           std::span<Result> results) {
  const Time t = now();
  for (auto it = files_.begin(); it != files_.end();) {
    if (t - it->second.last_used >= options_.idle_close) {
      ::close(it->second.fd);
      it = files_.erase(it);
    } else {
      ++it;
    }
  }
  open_files_.store(files_.size());

  // Group by file, keeping the records' order within each file. Usually every record of a
  // batch goes to the same file: that case skips the map.
  std::vector<std::pair<std::string_view, std::vector<std::size_t>>> groups;
  const bool one_file = std::all_of(paths.begin(), paths.end(),
                                    [&](const std::string& p) { return p == paths.front(); });
  if (!paths.empty() && one_file && !paths.front().empty()) {
    std::vector<std::size_t> all(batch.size());
    for (std::size_t i = 0; i < all.size(); ++i)
      all[i] = i;
    write_group(paths.front(), all, batch, results, t);
    return;
  }
  std::unordered_map<std::string_view, std::size_t> group_of;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (paths[i].empty())
      continue;  // already failed
    const auto [it, inserted] = group_of.try_emplace(paths[i], groups.size());
    if (inserted)
      groups.emplace_back(paths[i], std::vector<std::size_t>{});
    groups[it->second].second.push_back(i);
  }
  for (const auto& [path, indices] : groups) {
    write_group(std::string(path), indices, batch, results, t);
  }
}

void FileSink::write_group(const std::string& path, const std::vector<std::size_t>& indices,
                           std::span<const Record> batch, std::span<Result> results, Time t) {
  using Fsync = FileSinkConfig::Fsync;
  const auto fail_from = [&](std::size_t pos, const std::string& reason) {
    for (; pos < indices.size(); ++pos)
      results[indices[pos]] = Result{Outcome::retry, reason, {}};
  };

  std::string error;
  OpenFile* f = open_file(path, t, error);
  if (!f) {
    fail_from(0, error);
    return;
  }

  // A segment is the run of records written since the file was last made durable; on a failed
  // fsync it is cut off again so the retry does not duplicate it.
  std::size_t segment_begin = 0;
  std::uint64_t segment_size = f->size;
  // Sized once for the whole group: growing it line by line copied every record several times.
  std::string buffer;
  if (config_.fsync != Fsync::always) {
    std::size_t total = 1;  // a leading '\n' for a torn line
    for (const std::size_t i : indices)
      total += batch[i].event->data.size() + 1;
    buffer.reserve(total);
  }

  const auto flush = [&]() -> bool {
    if (buffer.empty())
      return true;
    if (f->needs_newline)
      buffer.insert(buffer.begin(), '\n');
    bool truncated = false;
    if (const auto ec = posix::append_all(f->fd, buffer, f->size, &truncated)) {
      // Whether or not the truncation worked, a reopen re-reads the size and the last byte.
      close_file(path);
      f = nullptr;
      fail_from(segment_begin, op_error("write", ec));
      return false;
    }
    f->size += buffer.size();
    f->needs_newline = false;
    buffer.clear();
    writes_.fetch_add(1);
    return true;
  };

  const auto finish_segment = [&](std::size_t end) -> bool {
    if (config_.fsync != Fsync::never && end > segment_begin) {
      int err = 0;
      if (!fsync_ok(f->fd, err)) {
        if (::ftruncate(f->fd, static_cast<off_t>(segment_size)) != 0) {
          log::warn("file_sink", "could not cut unsynced lines after a failed fsync",
                    {{"path", path}, {"error", posix::error_text(errno)}});
        }
        close_file(path);
        f = nullptr;
        fail_from(segment_begin, op_error("fsync", err));
        return false;
      }
      fsyncs_.fetch_add(1);
    }
    for (std::size_t p = segment_begin; p < end; ++p)
      results[indices[p]] = Result{};
    segment_begin = end;
    segment_size = f->size;
    return true;
  };

  const std::uint64_t max_size = config_.rotate_max_size;
  const auto max_age = config_.rotate_max_age;
  for (std::size_t pos = 0; pos < indices.size(); ++pos) {
    const std::string_view data = batch[indices[pos]].event->data;
    const std::uint64_t line = data.size() + 1;
    const std::uint64_t pending = f->size + buffer.size();
    const bool too_big = max_size > 0 && pending > 0 && pending + line > max_size;
    const bool too_old = max_age.count() > 0 && pending > 0 && t - f->born >= max_age;
    if (too_big || too_old) {
      if (!flush() || !finish_segment(pos))
        return;
      if (!rotate(path, t, error)) {
        fail_from(pos, error);
        return;
      }
      f = open_file(path, t, error);
      if (!f) {
        fail_from(pos, error);
        return;
      }
      segment_size = f->size;
    }
    buffer.append(data);
    buffer.push_back('\n');
    if (config_.fsync == Fsync::always && (!flush() || !finish_segment(pos + 1)))
      return;
  }
  if (flush())
    finish_segment(indices.size());
}

FileSink::OpenFile* FileSink::open_file(const std::string& path, Time t, std::string& error) {
  if (const auto it = files_.find(path); it != files_.end()) {
    it->second.last_used = t;
    return &it->second;
  }
  if (files_.size() >= options_.max_open_files) {
    const auto lru = std::min_element(
        files_.begin(), files_.end(),
        [](const auto& a, const auto& b) { return a.second.last_used < b.second.last_used; });
    ::close(lru->second.fd);
    files_.erase(lru);
  }
  if (const auto ec = posix::create_parent_directories(path)) {
    error = op_error("mkdir", ec);
    return nullptr;
  }
  // Read access only serves the torn-line check below; a write-only file still works.
  bool readable = true;
  int fd = ::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0 && errno == EACCES) {
    readable = false;
    fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  }
  if (fd < 0) {
    error = op_error("open", errno);
    return nullptr;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    error = op_error("open", errno);
    ::close(fd);
    return nullptr;
  }
  OpenFile f;
  f.fd = fd;
  f.size = S_ISREG(st.st_mode) ? static_cast<std::uint64_t>(st.st_size) : 0;
  f.born = t;
  f.last_used = t;
  if (f.size > 0) {
    // An existing file keeps its age across restarts where the filesystem records birth times.
    struct statx stx {};
    if (::statx(fd, "", AT_EMPTY_PATH, STATX_BTIME, &stx) == 0 && (stx.stx_mask & STATX_BTIME)) {
      const Time birth = Time{std::chrono::seconds{stx.stx_btime.tv_sec}} +
                         std::chrono::duration_cast<Time::duration>(
                             std::chrono::nanoseconds{stx.stx_btime.tv_nsec});
      f.born = std::min(birth, t);
    }
    char last = '\n';
    if (readable && ::pread(fd, &last, 1, static_cast<off_t>(f.size - 1)) == 1 && last != '\n') {
      f.needs_newline = true;
    }
  } else if (config_.fsync != FileSinkConfig::Fsync::never) {
    // Make the new directory entry durable too; the data's own fsync does not cover it.
    if (const auto ec = posix::sync_parent_directory(path)) {
      log::warn("file_sink", "fsync of the directory failed",
                {{"path", path}, {"error", ec.message()}});
    }
  }
  const auto [it, inserted] = files_.emplace(path, f);
  open_files_.store(files_.size());
  return &it->second;
}

bool FileSink::rotate(const std::string& path, Time t, std::string& error) {
  close_file(path);
  const std::string base = path + "." + rotation_suffix(t);
  std::string target = base;
  for (int n = 1; exists(target); ++n)
    target = base + "." + std::to_string(n);
  if (::rename(path.c_str(), target.c_str()) != 0) {
    error = op_error("rename", errno);
    return false;
  }
  rotations_.fetch_add(1);
  if (config_.fsync != FileSinkConfig::Fsync::never) {
    if (const auto ec = posix::sync_parent_directory(path)) {
      log::warn("file_sink", "fsync of the directory failed",
                {{"path", path}, {"error", ec.message()}});
    }
  }
  return true;
}

std::unique_ptr<Sink> build_sink(const FileSinkConfig& settings, const config::SinkConfig&,
                                 SinkContext context, std::string&) {
  return std::make_unique<FileSink>(settings, std::move(context.project), context.pool);
}

}  // namespace sluice::sinks
