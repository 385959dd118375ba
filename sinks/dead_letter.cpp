#include "sinks/dead_letter.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <exception>

#include <fmt/format.h>

#include "core/json.hpp"
#include "core/utc.hpp"
#include "sinks/posix_file.hpp"

namespace sluice::sinks {

DeadLetterFile::DeadLetterFile(std::string path, std::string sink, BlockingPool& pool)
    : path_(std::move(path)), sink_(std::move(sink)), pool_(pool) {}

void DeadLetterFile::append_line(std::string& out, const DeadLetter& entry, std::string_view sink,
                                 std::chrono::system_clock::time_point now) {
  const Record& r = entry.record;
  const Event* ev = r.event.get();
  out += "{\"time\":\"";
  out += format_utc_millis(now);
  out += "\",\"sink\":";
  append_json_string(out, sink);
  out += ",\"route\":";
  append_json_string(out, r.route.view());
  out += ",\"event_id\":";
  append_json_string(out, ev ? std::string_view{ev->id} : std::string_view{});
  out += ",\"reason\":";
  append_json_string(out, entry.reason);
  out += ",\"attempts\":";
  out += std::to_string(entry.attempts);
  out += ",\"first_attempt\":\"";
  out += format_utc_millis(entry.first_attempt);
  out += "\",\"last_attempt\":\"";
  out += format_utc_millis(entry.last_attempt);
  // The record goes in as the bytes that were received, never re-serialised.
  out += "\",\"record\":";
  if (ev && !ev->data.empty()) {
    out += ev->data;
  } else {
    out += "null";
  }
  out += "}\n";
}

std::error_code DeadLetterFile::append_durably(const std::string& path, std::string_view lines) {
  if (auto ec = posix::create_parent_directories(path))
    return ec;
  const int fd = ::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0)
    return {errno, std::generic_category()};
  struct stat st {};
  std::error_code ec;
  if (::fstat(fd, &st) != 0)
    ec = {errno, std::generic_category()};
  std::string torn;
  if (!ec && st.st_size > 0) {
    char last = '\n';
    if (::pread(fd, &last, 1, st.st_size - 1) != 1)
      ec = {errno, std::generic_category()};
    else if (last != '\n')
      torn = "\n";
  }
  if (!ec) {
    ec = torn.empty()
             ? posix::append_all(fd, lines, static_cast<std::uint64_t>(st.st_size))
             : posix::append_all(fd, torn.append(lines), static_cast<std::uint64_t>(st.st_size));
  }
  // A dead letter is the last copy of the record: make it durable before anyone lets go of it.
  if (!ec && ::fsync(fd) != 0 && errno != EINVAL)
    ec = {errno, std::generic_category()};
  ::close(fd);
  return ec;
}

boost::asio::awaitable<std::error_code> DeadLetterFile::write(
    std::span<const DeadLetter> entries, std::chrono::system_clock::time_point now) {
  if (!enabled() || entries.empty())
    co_return std::error_code{};
  std::string buffer;
  for (const auto& e : entries)
    append_line(buffer, e, sink_, now);

  try {
    auto job = [path = path_, buffer = std::move(buffer)]() -> std::error_code {
      return append_durably(path, buffer);
    };
    co_return co_await pool_.run(std::move(job));
  } catch (const std::exception&) {
    // Only allocation failures can get here; report them like any other write error.
    co_return std::make_error_code(std::errc::not_enough_memory);
  }
}

}  // namespace sluice::sinks
