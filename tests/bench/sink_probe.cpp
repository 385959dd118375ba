// The benchmarks' far end of a sink, and their receive→acknowledge stopwatch.
//
// Watches what sluice delivers — either as the webhook receiver (an HTTP/1.1 server that answers
// every request 200 at once and counts the records in its bodies) or by following the JSON Lines
// file the file sink appends to — and counts events until COUNT arrived. With --ws it also holds
// its own realtime subscription to the emulator on the same channel as sluice: the emulator
// writes each frame to both connections in the same loop turn, so the time the probe reads frame
// `seq` stands in for the time sluice received it, and the time the record with the same `seq`
// reaches the receiver or the file is when sluice delivered it. Both stamps come from one clock in
// one process, which is why this needs no change to the daemon and beats its histogram buckets.
//
// usage: sink_probe COUNT [--http] [--file PATH] [--ws HOST PORT PROJECT SESSION CHANNEL]
//                         [--timeout SECONDS]
// Prints `ready PORT` (0 without --http) once listening and subscribed, then one line:
//   events E requests R bytes B matched M p50 X p99 Y p999 Z max W   (latencies in ms)
// and exits 0, or 1 when the timeout passed first (the line is printed anyway).
#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <fcntl.h>
#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace websocket = boost::beast::websocket;
using tcp = asio::ip::tcp;

namespace {

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Arrival times by sequence number, written by the reader threads; 0 = not seen. Owned by main,
// shared by every thread for the life of the process.
class Stamps {
 public:
  explicit Stamps(long count)
      : upstream_(static_cast<std::size_t>(count) + 1), delivered_(upstream_.size()) {}

  void upstream(long seq, std::int64_t t) { set(upstream_, seq, t); }

  // Counts a delivered record; wakes main when the last one arrived.
  void delivered(long seq, std::int64_t t) {
    set(delivered_, seq, t);
    if (events_.fetch_add(1) + 1 >= static_cast<long>(delivered_.size()) - 1) {
      std::lock_guard lock(mutex_);
      done_.notify_all();
    }
  }

  void add_request(std::size_t bytes) {
    requests_.fetch_add(1);
    bytes_.fetch_add(static_cast<long>(bytes));
  }

  bool wait(std::chrono::seconds timeout) {
    std::unique_lock lock(mutex_);
    return done_.wait_for(lock, timeout, [this] {
      return events_.load() >= static_cast<long>(delivered_.size()) - 1;
    });
  }

  void report() const {
    std::vector<double> ms;
    for (std::size_t i = 1; i < upstream_.size(); ++i) {
      const auto a = upstream_[i].load(), b = delivered_[i].load();
      if (a > 0 && b > 0)
        ms.push_back(static_cast<double>(b - a) / 1e6);
    }
    std::sort(ms.begin(), ms.end());
    auto pct = [&](double q) {
      if (ms.empty())
        return -1.0;
      const auto i = static_cast<std::size_t>(q * static_cast<double>(ms.size() - 1) + 0.5);
      return ms[std::min(i, ms.size() - 1)];
    };
    std::printf(
        "events %ld requests %ld bytes %ld matched %zu p50 %.3f p99 %.3f p999 %.3f max %.3f\n",
        events_.load(), requests_.load(), bytes_.load(), ms.size(), pct(0.5), pct(0.99), pct(0.999),
        ms.empty() ? -1.0 : ms.back());
    std::fflush(stdout);
  }

 private:
  static void set(std::vector<std::atomic<std::int64_t>>& v, long seq, std::int64_t t) {
    if (seq > 0 && static_cast<std::size_t>(seq) < v.size())
      v[static_cast<std::size_t>(seq)].store(t);
  }

  std::vector<std::atomic<std::int64_t>> upstream_;
  std::vector<std::atomic<std::int64_t>> delivered_;
  std::atomic<long> events_{0};
  std::atomic<long> requests_{0};
  std::atomic<long> bytes_{0};
  std::mutex mutex_;
  std::condition_variable done_;
};

// Calls f(seq) for every `"seq":N` in text. The emulator's load generator puts it first in each
// payload, and the bench payload has no other field of that name.
template <class F>
void for_each_seq(std::string_view text, F&& f) {
  constexpr std::string_view key = R"("seq":)";
  for (auto at = text.find(key); at != std::string_view::npos; at = text.find(key, at)) {
    at += key.size();
    long seq = 0;
    const auto [end, ec] = std::from_chars(text.data() + at, text.data() + text.size(), seq);
    if (ec == std::errc{})
      f(seq);
    at = static_cast<std::size_t>(end - text.data());
  }
}

// One thread per webhook connection: sluice keeps up to `concurrency` of them alive.
void serve_http(tcp::socket socket, Stamps& stamps) {
  boost::beast::flat_buffer buffer;
  boost::system::error_code ec;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(64u << 20);
    http::read(socket, buffer, parser, ec);
    if (ec)
      return;
    const auto t = now_ns();
    auto& req = parser.get();
    http::response<http::empty_body> res{http::status::ok, req.version()};
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    http::write(socket, res, ec);
    // Counted once answered: main exits at the last record, and sluice must see its 200 first.
    stamps.add_request(req.body().size());
    for_each_seq(req.body(), [&](long seq) { stamps.delivered(seq, t); });
    if (ec || !req.keep_alive())
      return;
  }
}

// Follows a file that sluice creates and appends to, woken by inotify on its directory.
void follow_file(const std::string& path, Stamps& stamps) {
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  const int in = inotify_init1(IN_CLOEXEC);
  if (in < 0 || inotify_add_watch(in, dir.c_str(), IN_MODIFY | IN_CREATE) < 0) {
    std::perror("sink_probe: inotify");
    std::exit(1);
  }
  int fd = -1;
  std::string pending;
  std::vector<char> chunk(1 << 20);
  std::vector<char> events(64 * 1024);
  for (;;) {
    if (fd < 0)
      fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      for (;;) {
        const auto n = ::read(fd, chunk.data(), chunk.size());
        if (n <= 0)
          break;
        const auto t = now_ns();
        pending.append(chunk.data(), static_cast<std::size_t>(n));
        std::size_t start = 0;
        for (auto nl = pending.find('\n'); nl != std::string::npos;
             nl = pending.find('\n', start)) {
          bool seen = false;
          for_each_seq(std::string_view(pending).substr(start, nl - start), [&](long seq) {
            if (!seen)
              stamps.delivered(seq, t);
            seen = true;  // only the payload's own seq, first in the record's payload
          });
          start = nl + 1;
        }
        pending.erase(0, start);
      }
    }
    // Blocks until the directory changes; inotify coalesces, so every wake-up reads to EOF.
    pollfd p{in, POLLIN, 0};
    if (::poll(&p, 1, 100) > 0 && ::read(in, events.data(), events.size()) < 0)
      return;
  }
}

// Our own subscription beside sluice's: stamps when each frame left the emulator's socket.
void read_upstream(websocket::stream<tcp::socket>& ws, Stamps& stamps) {
  boost::beast::flat_buffer buffer;
  boost::system::error_code ec;
  for (;;) {
    buffer.clear();
    ws.read(buffer, ec);
    if (ec)
      return;
    const auto t = now_ns();
    const std::string_view frame(static_cast<const char*>(buffer.data().data()), buffer.size());
    if (!frame.starts_with(R"({"type":"event",)"))
      continue;
    bool seen = false;
    for_each_seq(frame, [&](long seq) {
      if (!seen)
        stamps.upstream(seq, t);
      seen = true;
    });
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: sink_probe COUNT [--http] [--file PATH] "
                 "[--ws HOST PORT PROJECT SESSION CHANNEL] [--timeout SECONDS]\n");
    return 2;
  }
  const long count = std::strtol(argv[1], nullptr, 10);
  bool serve = false;
  std::string file;
  std::vector<std::string> ws_args;
  long timeout = 600;
  for (int i = 2; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--http") {
      serve = true;
    } else if (a == "--file" && i + 1 < argc) {
      file = argv[++i];
    } else if (a == "--ws" && i + 5 < argc) {
      ws_args.assign(argv + i + 1, argv + i + 6);
      i += 5;
    } else if (a == "--timeout" && i + 1 < argc) {
      timeout = std::strtol(argv[++i], nullptr, 10);
    } else {
      std::fprintf(stderr, "sink_probe: bad argument %s\n", argv[i]);
      return 2;
    }
  }
  try {
    Stamps stamps(count);
    asio::io_context io;
    unsigned short port = 0;
    std::unique_ptr<tcp::acceptor> acceptor;
    if (serve) {
      acceptor = std::make_unique<tcp::acceptor>(
          io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
      port = acceptor->local_endpoint().port();
      std::thread([&] {
        for (;;) {
          tcp::socket socket(io);
          boost::system::error_code ec;
          acceptor->accept(socket, ec);
          if (ec)
            return;
          socket.set_option(tcp::no_delay(true));
          std::thread(serve_http, std::move(socket), std::ref(stamps)).detach();
        }
      }).detach();
    }
    std::unique_ptr<websocket::stream<tcp::socket>> ws;
    if (!ws_args.empty()) {
      const auto& host = ws_args[0];
      const auto& wport = ws_args[1];
      const auto& project = ws_args[2];
      const auto& session = ws_args[3];
      tcp::resolver resolver(io);
      ws = std::make_unique<websocket::stream<tcp::socket>>(io);
      asio::connect(ws->next_layer(), resolver.resolve(host, wport));
      ws->set_option(websocket::stream_base::decorator([&](websocket::request_type& req) {
        req.set("Cookie", "a_session_" + project + "=" + session);
      }));
      ws->read_message_max(16u << 20);
      ws->handshake(host + ":" + wport,
                    "/v1/realtime?project=" + project + "&channels[]=" + ws_args[4]);
      std::thread(read_upstream, std::ref(*ws), std::ref(stamps)).detach();
    }
    if (!file.empty())
      std::thread(follow_file, file, std::ref(stamps)).detach();
    std::printf("ready %u\n", static_cast<unsigned>(port));
    std::fflush(stdout);
    const bool done = stamps.wait(std::chrono::seconds(timeout));
    // The upstream reader stamps a frame before sluice can deliver it, so it is complete by now.
    stamps.report();
    std::_Exit(done ? 0 : 1);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sink_probe: %s\n", e.what());
    return 1;
  }
}
