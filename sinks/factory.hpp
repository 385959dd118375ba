#pragma once

#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>

#include "config/config.hpp"
#include "core/metrics.hpp"
#include "sinks/blocking_pool.hpp"
#include "sinks/sink.hpp"

// Builds the Sink for one configured sink; its SinkWorker (sinks/worker.hpp) is built around it.
// Called by the App at start-up and on reload, on the event loop. The config has been validated
// by the loader, so the only errors left are the ones of sink types not built yet.
namespace sluice::sinks {

// Returns nullptr with `error` set when the sink cannot be made.
// `metrics`, when given, receives what only the sink sees (HTTP responses by class).
std::unique_ptr<Sink> make_sink(const config::SinkConfig& config, std::string project,
                                BlockingPool& pool, boost::asio::any_io_executor loop,
                                std::string& error, const SinkMetrics* metrics = nullptr);

}  // namespace sluice::sinks
