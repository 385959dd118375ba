#pragma once

#include <cstddef>
#include <type_traits>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

// A few threads for work that blocks (file writes, fsync, rename, the dead-letter file), so the
// daemon's single-threaded event loop never waits on the disk. Owned by the App, created before
// the sinks and their workers and destroyed after them (the destructor joins the threads).
// run() may be awaited from any coroutine: the callable runs on a pool thread and the awaiting
// coroutine resumes on its own executor afterwards.
namespace sluice::sinks {

class BlockingPool {
 public:
  explicit BlockingPool(std::size_t threads = 2) : pool_(threads) {}
  ~BlockingPool() { pool_.join(); }
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  boost::asio::thread_pool::executor_type executor() { return pool_.get_executor(); }

  // Runs `f()` on a pool thread and returns its result (an exception it throws is rethrown in
  // the awaiting coroutine). The result type must be default-constructible or void. Whatever
  // `f` refers to must outlive the await, which it does when it lives in the caller's frame.
  // With GCC 12, pass a named callable (`co_await pool.run(std::move(job))`) when it owns
  // anything with a destructor: a temporary in a co_await expression is destroyed twice.
  template <class F>
  auto run(F f) -> boost::asio::awaitable<std::invoke_result_t<F&>> {
    using R = std::invoke_result_t<F&>;
    // co_spawn keeps `job` (and so `fn`) alive in its own frame until it completes; the
    // use_awaitable completion dispatches back to the awaiting coroutine's executor. `job` is
    // named rather than a temporary inside the co_await: GCC 12 destroys such temporaries twice.
    auto job = [fn = std::move(f)]() mutable -> boost::asio::awaitable<R> { co_return fn(); };
    co_return co_await boost::asio::co_spawn(pool_.get_executor(), std::move(job),
                                             boost::asio::use_awaitable);
  }

  // Waits for queued work to finish and the threads to exit (also done by the destructor).
  void join() { pool_.join(); }

 private:
  boost::asio::thread_pool pool_;
};

}  // namespace sluice::sinks
