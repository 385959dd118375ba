#include "sinks/posix_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

namespace sluice::sinks::posix {

std::string error_text(int err) {
  return std::generic_category().message(err);
}

std::string error_text(const std::error_code& ec) {
  return ec.message();
}

namespace {

std::string parent_of(const std::string& file_path) {
  const auto slash = file_path.find_last_of('/');
  if (slash == std::string::npos)
    return {};
  if (slash == 0)
    return "/";
  return file_path.substr(0, slash);
}

}  // namespace

std::error_code create_parent_directories(const std::string& file_path) {
  const std::string dir = parent_of(file_path);
  if (dir.empty())
    return {};
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return ec;
  // create_directories succeeds when the path exists as anything; a file in the way must fail.
  if (!std::filesystem::is_directory(dir, ec)) {
    return ec ? ec : std::make_error_code(std::errc::not_a_directory);
  }
  return {};
}

std::error_code append_all(int fd, std::string_view data, std::uint64_t size_before,
                           bool* truncated) {
  if (truncated)
    *truncated = false;
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    // n == 0 cannot make progress; report it as the disk being full, which is what it means
    // for a regular file.
    const int err = n < 0 ? errno : ENOSPC;
    bool clean = done == 0;
    if (!clean) {
      int rc;
      do {
        rc = ::ftruncate(fd, static_cast<off_t>(size_before));
      } while (rc != 0 && errno == EINTR);
      clean = rc == 0;
    }
    if (truncated)
      *truncated = clean;
    return {err, std::generic_category()};
  }
  return {};
}

std::error_code sync_parent_directory(const std::string& file_path) {
  std::string dir = parent_of(file_path);
  if (dir.empty())
    dir = ".";
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return {errno, std::generic_category()};
  std::error_code ec;
  if (::fsync(fd) != 0)
    ec = {errno, std::generic_category()};
  ::close(fd);
  return ec;
}

}  // namespace sluice::sinks::posix
