#pragma once

#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>

#include "config/config.hpp"
#include "core/metrics.hpp"
#include "sinks/blocking_pool.hpp"
#include "sinks/sink.hpp"
#include "sinks/sink_types.hpp"

// Builds the Sink for one configured sink, through its type's build_sink() (the types are
// listed in sinks/sink_types.hpp); its SinkWorker (sinks/worker.hpp) is built around it.
// Called by the App at start-up and on reload, on the event loop.
namespace sluice::sinks {

// Returns nullptr with `error` set when the sink cannot be made (its type refuses the settings
// or is unknown). `metrics`, when given, receives what only the sink sees (HTTP responses by
// class).
std::unique_ptr<Sink> make_sink(const config::SinkConfig& config, std::string project,
                                BlockingPool& pool, boost::asio::any_io_executor loop,
                                std::string& error, const SinkMetrics* metrics = nullptr);

}  // namespace sluice::sinks
