#pragma once

#include <chrono>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace sluice {

// A condition variable for coroutines on one single-threaded executor: wait() suspends until
// the next notify_all(). A notification reaches only the coroutines waiting at that moment, so
// every waiter checks its condition before waiting and again after waking. Asio has no such
// primitive; a steady timer that never expires is one, cancel() being the notification.
//
// Owned by the object whose state it guards, and used only on that object's executor.
class Condition {
 public:
  explicit Condition(boost::asio::any_io_executor loop)
      : timer_(std::move(loop), std::chrono::steady_clock::time_point::max()) {}

  boost::asio::awaitable<void> wait() {
    co_await timer_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  }

  void notify_all() { timer_.cancel(); }

 private:
  boost::asio::steady_timer timer_;
};

}  // namespace sluice
