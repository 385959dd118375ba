#include "daemon/config_watcher.hpp"

#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>
#include <iterator>

#include <xxhash.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/log.hpp"

namespace sluice {

namespace asio = boost::asio;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

ConfigWatcher::ConfigWatcher(asio::any_io_executor loop, std::string path,
                             std::function<void()> on_change, std::chrono::milliseconds settle)
    : path_(std::move(path)),
      on_change_(std::move(on_change)),
      settle_(settle),
      inotify_(loop),
      settle_timer_(loop) {
  const auto slash = path_.rfind('/');
  dir_ = slash == std::string::npos ? "." : (slash == 0 ? "/" : path_.substr(0, slash));
  name_ = slash == std::string::npos ? path_ : path_.substr(slash + 1);
  // The baseline is the content loaded at start-up, read before sinks recover their buffers
  // (which can take a while): an edit made meanwhile is still noticed.
  last_hash_ = content_hash();
}

ConfigWatcher::~ConfigWatcher() = default;

std::error_code ConfigWatcher::start() {
  const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0)
    return {errno, std::generic_category()};
  // Creations, renames and writes in the directory cover an editor's save, `cp`, and the
  // ConfigMap symlink swap (a rename of `..data_tmp` over `..data`).
  constexpr std::uint32_t kMask =
      IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_ATTRIB | IN_MODIFY;
  if (::inotify_add_watch(fd, dir_.c_str(), kMask) < 0) {
    const int err = errno;
    ::close(fd);
    return {err, std::generic_category()};
  }
  inotify_.assign(fd);
  asio::co_spawn(inotify_.get_executor(), read_events(), asio::detached);
  log::info("config", "watching the configuration file for changes", {{"path", path_}});
  return {};
}

void ConfigWatcher::stop() {
  stopped_ = true;
  boost::system::error_code ignored;
  inotify_.close(ignored);
  settle_timer_.cancel();
}

asio::awaitable<void> ConfigWatcher::read_events() {
  // Events about the file itself or the `..data` symlink lead to one re-read after they
  // settle, and the content hash decides.
  std::array<char, 4096> buffer;
  while (!stopped_) {
    auto [ec, n] = co_await inotify_.async_read_some(asio::buffer(buffer), use_tuple);
    if (ec) {
      if (!stopped_)
        log::error("config", "stopped watching the configuration file", {{"error", ec.message()}});
      co_return;
    }
    if (!concerns_config(std::string_view(buffer.data(), n)))
      continue;  // another file in the directory: a sink or log writing there is no reason
    // Every event restarts the settle period, so a burst of writes leads to one check.
    settle_timer_.expires_after(settle_);
    if (!settling_) {
      settling_ = true;
      asio::co_spawn(settle_timer_.get_executor(), settle_then_check(), asio::detached);
    }
  }
}

asio::awaitable<void> ConfigWatcher::settle_then_check() {
  for (;;) {
    const auto expiry = settle_timer_.expiry();
    co_await settle_timer_.async_wait(use_tuple);
    if (stopped_)
      co_return;
    if (settle_timer_.expiry() == expiry)
      break;  // no event arrived while waiting
  }
  settling_ = false;
  const auto hash = content_hash();
  if (hash == 0 || hash == last_hash_)
    co_return;  // unreadable mid-swap (the next event re-checks), or unchanged
  last_hash_ = hash;
  log::info("config", "the configuration file changed", {{"path", path_}});
  on_change_();
}

bool ConfigWatcher::concerns_config(std::string_view events) const {
  while (events.size() >= sizeof(inotify_event)) {
    inotify_event header;
    std::memcpy(&header, events.data(), sizeof header);
    const std::size_t size = sizeof(inotify_event) + header.len;
    if ((header.mask & IN_Q_OVERFLOW) != 0)
      return true;  // events were lost: check to be safe
    if (header.len > 0 && size <= events.size()) {
      // The name is NUL-padded to `len` bytes.
      std::string_view name(events.data() + sizeof(inotify_event), header.len);
      name = name.substr(0, name.find('\0'));
      if (name == name_ || name == "..data")
        return true;
    }
    events.remove_prefix(std::min(size, events.size()));
  }
  return false;
}

std::uint64_t ConfigWatcher::content_hash() const {
  std::ifstream in(path_, std::ios::binary);
  if (!in)
    return 0;
  const std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto h = XXH3_64bits(content.data(), content.size());
  return h == 0 ? 1 : h;
}

}  // namespace sluice
