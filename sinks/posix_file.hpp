#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

// Small POSIX helpers shared by the file sink and the dead-letter file. Blocking: call them on
// the BlockingPool, never on the event loop. Stateless and thread-safe.
namespace sluice::sinks::posix {

// `errno` as the system's text, e.g. "No space left on device".
std::string error_text(int err);
std::string error_text(const std::error_code& ec);

// mkdir -p of the directory that holds `file_path` (nothing to do for a bare file name).
std::error_code create_parent_directories(const std::string& file_path);

// Writes all of `data` to `fd` (opened with O_APPEND), retrying short writes and EINTR. On
// failure after part of `data` reached the file, truncates the file back to `size_before` so no
// torn line is left for the next write to glue onto; the error returned is the write's.
// `truncated` reports whether the file is known to end at `size_before` after a failure.
std::error_code append_all(int fd, std::string_view data, std::uint64_t size_before,
                           bool* truncated = nullptr);

// fsync(2) of the directory holding `file_path`, so a create or rename survives a crash.
std::error_code sync_parent_directory(const std::string& file_path);

}  // namespace sluice::sinks::posix
