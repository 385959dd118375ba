#pragma once

#include <string>

#include <boost/asio/any_io_executor.hpp>

#include "core/metrics.hpp"
#include "sinks/blocking_pool.hpp"

namespace sluice::sinks {

// What a sink is built with (each type's build_sink(), through make_sink() in
// sinks/factory.hpp): by the App at start-up and on reload, on the event loop.
struct SinkContext {
  std::string project;
  BlockingPool& pool;
  boost::asio::any_io_executor loop;
  const SinkMetrics* metrics = nullptr;  // receives what only the sink sees; may be null
};

}  // namespace sluice::sinks
