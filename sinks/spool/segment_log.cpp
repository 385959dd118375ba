#include "sinks/spool/segment_log.hpp"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>
#include <xxhash.h>

#include "sinks/posix_file.hpp"
#include "sinks/spool/record_codec.hpp"

namespace sluice::sinks::spool {

namespace {

constexpr std::size_t kHeadSlotBytes = 16;

std::error_code last_error() {
  return {errno, std::generic_category()};
}

std::uint64_t head_hash(std::uint64_t head, std::uint64_t slot) {
  return XXH3_64bits_withSeed(&head, sizeof head, 0x68656164 + slot);
}

std::error_code read_all(const std::string& path, std::string& out) {
  out.clear();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return last_error();
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      const auto ec = last_error();
      ::close(fd);
      return ec;
    }
    if (n == 0)
      break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return {};
}

// A frame that is whole and carries the magic but fails its checksum: the bytes were written
// and later damaged, which is corruption, not a write torn by a crash.
bool damaged_whole_frame(std::string_view buf, std::size_t at) {
  if (buf.size() - at < kHeaderBytes)
    return false;
  std::uint32_t magic = 0;
  std::uint32_t size = 0;
  std::memcpy(&magic, buf.data() + at, 4);
  std::memcpy(&size, buf.data() + at + 4, 4);
  return magic == kMagic && size > 0 && size <= kMaxBodyBytes &&
         buf.size() - at - kHeaderBytes >= size;
}

// The first offset after `from` where a valid frame starts, or npos.
std::size_t resync(std::string_view buf, std::size_t from) {
  char magic[4];
  std::memcpy(magic, &kMagic, 4);
  const std::string_view needle(magic, 4);
  for (auto at = buf.find(needle, from); at != std::string_view::npos;
       at = buf.find(needle, at + 1)) {
    std::size_t frame_bytes = 0;
    if (check_frame(buf, at, frame_bytes) == FrameCheck::ok)
      return at;
  }
  return std::string_view::npos;
}

}  // namespace

SegmentLog::SegmentLog(std::string dir, std::uint64_t segment_bytes)
    : dir_(std::move(dir)), segment_bytes_(std::max<std::uint64_t>(segment_bytes, 4096)) {}

SegmentLog::~SegmentLog() {
  if (active_fd_ >= 0)
    ::close(active_fd_);
  if (head_fd_ >= 0)
    ::close(head_fd_);
}

std::string SegmentLog::segment_path(std::uint64_t first_seq) const {
  return fmt::format("{}/{:016x}.seg", dir_, first_seq);
}

std::uint64_t SegmentLog::disk_bytes() const {
  std::uint64_t total = 0;
  for (const auto& s : segments_)
    total += s.bytes;
  return total;
}

std::error_code SegmentLog::open(Recovery& out) {
  out = Recovery{};
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec)
    return ec;

  // The head: the valid slot with the larger value (a slot torn by a crash fails its hash).
  const std::string head_path = dir_ + "/head";
  head_fd_ = ::open(head_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (head_fd_ < 0)
    return last_error();
  char slots[2 * kHeadSlotBytes] = {};
  const ssize_t got = ::pread(head_fd_, slots, sizeof slots, 0);
  std::uint64_t best_slot = 1;
  for (std::uint64_t slot = 0; slot < 2; ++slot) {
    if (got < static_cast<ssize_t>((slot + 1) * kHeadSlotBytes))
      break;
    std::uint64_t value = 0;
    std::uint64_t hash = 0;
    std::memcpy(&value, slots + slot * kHeadSlotBytes, 8);
    std::memcpy(&hash, slots + slot * kHeadSlotBytes + 8, 8);
    if (hash == head_hash(value, slot) && value >= head_) {
      head_ = value;
      best_slot = slot;
    }
  }
  head_writes_ = best_slot + 1;  // the next write goes to the other slot
  out.head = head_;

  std::vector<std::uint64_t> firsts;
  for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
    const auto name = entry.path().filename().string();
    if (name.size() != 20 || !name.ends_with(".seg"))
      continue;
    std::uint64_t first = 0;
    const auto [end, err] = std::from_chars(name.data(), name.data() + 16, first, 16);
    if (err == std::errc{} && end == name.data() + 16)
      firsts.push_back(first);
  }
  if (ec)
    return ec;
  std::sort(firsts.begin(), firsts.end());

  bool any = false;
  std::uint64_t last_seq = 0;
  std::string buf;
  for (std::size_t i = 0; i < firsts.size(); ++i) {
    const bool last_segment = i + 1 == firsts.size();
    const std::string path = segment_path(firsts[i]);
    if (const auto rec = read_all(path, buf))
      return rec;
    const std::string_view view(buf);
    std::size_t pos = 0;
    while (pos < view.size()) {
      std::size_t frame_bytes = 0;
      const auto check = check_frame(view, pos, frame_bytes);
      if (check == FrameCheck::ok) {
        const auto body = frame_body(view, pos);
        const auto seq = body_seq(body);
        if (!seq) {
          ++out.corrupt;
        } else if (!any || *seq > last_seq) {
          any = true;
          last_seq = *seq;
          if (*seq >= head_)
            out.records.push_back(RecoveredBody{*seq, std::string(body)});
        }
        pos += frame_bytes;
        continue;
      }
      const auto next = resync(view, pos + 1);
      if (next != std::string_view::npos) {
        ++out.corrupt;
        pos = next;
        continue;
      }
      // Nothing valid follows. At the end of the last segment this is where a crash cut a
      // write short: cut it off so appends continue from a clean end.
      if (damaged_whole_frame(view, pos) || !last_segment)
        ++out.corrupt;
      if (last_segment) {
        const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
        if (fd < 0)
          return last_error();
        if (::ftruncate(fd, static_cast<off_t>(pos)) != 0 || ::fdatasync(fd) != 0) {
          const auto e = last_error();
          ::close(fd);
          return e;
        }
        ::close(fd);
        out.torn_bytes = view.size() - pos;
        buf.resize(pos);
      }
      break;
    }
    segments_.push_back(Segment{firsts[i], buf.size()});
  }

  out.next_seq = std::max(any ? last_seq + 1 : 0, head_);
  appended_ = any;
  last_seq_ = last_seq;
  reclaim(head_);
  if (!segments_.empty()) {
    if (const auto e = open_active(segments_.back().first_seq, false))
      return e;
  }
  return {};
}

std::error_code SegmentLog::open_active(std::uint64_t first_seq, bool create) {
  const std::string path = segment_path(first_seq);
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    return last_error();
  if (create) {
    // The new file's directory entry must survive a crash as well as its content.
    if (const auto ec = posix::sync_parent_directory(path)) {
      ::close(fd);
      ::unlink(path.c_str());
      return ec;
    }
    segments_.push_back(Segment{first_seq, 0});
  }
  active_fd_ = fd;
  return {};
}

std::error_code SegmentLog::roll(std::uint64_t first_seq) {
  if (active_fd_ >= 0) {
    if (dirty_ && ::fdatasync(active_fd_) != 0)
      return last_error();
    dirty_ = false;
    ::close(active_fd_);
    active_fd_ = -1;
  }
  return open_active(first_seq, true);
}

std::error_code SegmentLog::append(std::string_view bytes, const std::vector<Frame>& frames,
                                   std::size_t& written) {
  written = 0;
  std::size_t run_start = 0;  // byte offset of the first frame not yet written
  std::size_t offset = 0;
  auto write_run = [&] {
    return posix::append_all(active_fd_, bytes.substr(run_start, offset - run_start),
                             segments_.back().bytes);
  };
  auto flush = [&](std::size_t end_index) -> std::error_code {
    if (offset == run_start)
      return {};
    auto ec = write_run();
    // The file cannot grow (a file size limit, or a full disk). If the sink has acknowledged
    // everything in it, a fresh segment lets the old one be reclaimed: without the roll, the
    // active segment is never deleted and the spool would stay stuck once space returns.
    if ((ec == std::errc::file_too_large || ec == std::errc::no_space_on_device) &&
        segments_.back().bytes > 0 && appended_ && head_ > last_seq_) {
      if (const auto rolled = roll(frames[written].seq))
        return ec;
      ec = write_run();
    }
    if (ec)
      return ec;
    segments_.back().bytes += offset - run_start;
    dirty_ = true;
    run_start = offset;
    written = end_index;
    last_seq_ = frames[end_index - 1].seq;
    appended_ = true;
    return {};
  };
  for (std::size_t i = 0; i < frames.size(); ++i) {
    const auto& f = frames[i];
    if (active_fd_ < 0) {
      if (const auto ec = open_active(f.seq, true))
        return ec;
    } else if (segments_.back().bytes + (offset - run_start) > 0 &&
               segments_.back().bytes + (offset - run_start) + f.bytes > segment_bytes_) {
      if (const auto ec = flush(i))
        return ec;
      if (const auto ec = roll(f.seq))
        return ec;
    }
    offset += f.bytes;
  }
  return flush(frames.size());
}

std::error_code SegmentLog::sync() {
  if (!dirty_ || active_fd_ < 0)
    return {};
  if (::fdatasync(active_fd_) != 0)
    return last_error();
  dirty_ = false;
  return {};
}

std::error_code SegmentLog::write_head(std::uint64_t head) {
  if (head == head_ && head_writes_ > 0)
    return {};
  const std::uint64_t slot = head_writes_ % 2;
  char buf[kHeadSlotBytes];
  const std::uint64_t hash = head_hash(head, slot);
  std::memcpy(buf, &head, 8);
  std::memcpy(buf + 8, &hash, 8);
  const auto at = static_cast<off_t>(slot * kHeadSlotBytes);
  if (::pwrite(head_fd_, buf, sizeof buf, at) != static_cast<ssize_t>(sizeof buf))
    return errno != 0 ? last_error() : std::make_error_code(std::errc::io_error);
  if (::fdatasync(head_fd_) != 0)
    return last_error();
  head_ = head;
  ++head_writes_;
  return {};
}

std::size_t SegmentLog::reclaim(std::uint64_t head) {
  std::size_t deleted = 0;
  while (segments_.size() >= 2 && segments_[1].first_seq <= head) {
    ::unlink(segment_path(segments_.front().first_seq).c_str());
    segments_.erase(segments_.begin());
    ++deleted;
  }
  return deleted;
}

}  // namespace sluice::sinks::spool
