#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <system_error>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

namespace sluice {

// Notices when the configuration file's content changes (--watch-config) and calls `on_change`
// once per change, after the writes have settled.
//
// It watches the file's directory with inotify, not the file: editors replace files by
// renaming over them, and Kubernetes updates a mounted ConfigMap by swapping the `..data`
// symlink in that directory, so the inode a file watch would follow is gone after either. Any
// event in the directory re-reads the file (following symlinks) after `settle`; only a content
// different from the last one seen is reported, so touch(1) causes nothing; events about other
// files in the directory are ignored.
//
// Owned by the App; runs on the daemon's event loop.
class ConfigWatcher {
 public:
  ConfigWatcher(boost::asio::any_io_executor loop, std::string path,
                std::function<void()> on_change,
                std::chrono::milliseconds settle = std::chrono::milliseconds(250));
  ~ConfigWatcher();

  // Starts watching; an error when inotify cannot watch the directory.
  std::error_code start();
  void stop();

 private:
  boost::asio::awaitable<void> read_events();
  boost::asio::awaitable<void> settle_then_check();
  std::uint64_t content_hash() const;                   // 0 when the file cannot be read
  bool concerns_config(std::string_view events) const;  // a read of inotify events

  std::string path_;
  std::string dir_;
  std::string name_;  // the file's name in dir_
  std::function<void()> on_change_;
  std::chrono::milliseconds settle_;
  boost::asio::posix::stream_descriptor inotify_;
  boost::asio::steady_timer settle_timer_;
  bool settling_ = false;
  bool stopped_ = false;
  std::uint64_t last_hash_ = 0;
};

}  // namespace sluice
