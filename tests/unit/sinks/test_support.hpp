#pragma once

#include <stdlib.h>

#include <chrono>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "core/event.hpp"
#include "sinks/sink.hpp"

// Helpers shared by the sink tests: events built like the decoder builds them, a temporary
// directory per test, and a way to drive an io_context until a condition holds (with a deadline,
// so a broken condition fails the test instead of hanging it).
namespace sluice::sinks::test {

using namespace std::chrono_literals;

// A realtime `data` object around `payload`, decoded into an Event the way the upstream decoder
// does: views into a padded frame, parsed timestamp, deterministic id.
inline EventPtr make_event(std::string_view payload,
                           std::string_view timestamp_text = "2024-05-01T12:34:56.789+00:00",
                           std::string_view event_name = "databases.db.tables.t.rows.r.create") {
  auto ev = std::make_shared<Event>();
  std::string data = R"({"events":[")" + std::string(event_name) + R"("],"channels":["c1"],)" +
                     R"("timestamp":")" + std::string(timestamp_text) + R"(","payload":)" +
                     std::string(payload) + "}";
  ev->frame.reserve(data.size() + kJsonPadding);
  ev->frame.assign(data);
  const std::string_view f = ev->frame;
  ev->data = f;
  ev->payload = f.substr(f.find("\"payload\":") + 10, payload.size());
  ev->events.push_back(f.substr(f.find(event_name), event_name.size()));
  ev->channels.push_back(f.substr(f.find("c1"), 2));
  ev->timestamp_text = f.substr(f.find(timestamp_text), timestamp_text.size());
  // Only the date and time to the second matter to the tests (strftime in paths).
  std::tm tm{};
  const std::string ts(timestamp_text);
  strptime(ts.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  ev->timestamp =
      std::chrono::sys_time<std::chrono::milliseconds>{std::chrono::seconds{timegm(&tm)}};
  ev->id = make_event_id(ev->data);
  ev->received = std::chrono::steady_clock::now();
  return ev;
}

// A record of route `route` on the event's only channel, "c1".
inline Record make_record(std::string_view payload, std::string_view route = "r1") {
  return Record{make_event(payload), RouteName::intern(route), 0};
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sluice-sinks-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr)
      throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

inline void write_file(const std::string& path, std::string_view content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
}

// Runs handlers until `done()` or the deadline; false on timeout.
inline bool run_until(boost::asio::io_context& ctx, const std::function<bool()>& done,
                      std::chrono::steady_clock::duration timeout = 20s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    if (ctx.stopped())
      ctx.restart();
    ctx.run_one_for(10ms);
  }
  return true;
}

// Runs a coroutine on `ctx` to completion (rethrowing what it throws); false on timeout.
template <class T>
bool run_co(boost::asio::io_context& ctx, boost::asio::awaitable<T> co, T* result = nullptr,
            std::chrono::steady_clock::duration timeout = 20s) {
  bool done = false;
  std::exception_ptr error;
  boost::asio::co_spawn(
      ctx,
      [&, co = std::move(co)]() mutable -> boost::asio::awaitable<void> {
        if constexpr (std::is_void_v<T>) {
          co_await std::move(co);
        } else if (result) {
          *result = co_await std::move(co);
        } else {
          co_await std::move(co);
        }
      },
      [&](std::exception_ptr e) {
        error = e;
        done = true;
      });
  const bool ok = run_until(
      ctx, [&] { return done; }, timeout);
  if (error)
    std::rethrow_exception(error);
  return ok;
}

inline bool run_co(boost::asio::io_context& ctx, boost::asio::awaitable<void> co,
                   std::chrono::steady_clock::duration timeout = 20s) {
  return run_co<void>(ctx, std::move(co), nullptr, timeout);
}

}  // namespace sluice::sinks::test
