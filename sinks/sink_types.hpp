#pragma once

#include <tuple>

#include "config/sink_type.hpp"
#include "sinks/file/file_config.hpp"
#include "sinks/kafka/kafka_config.hpp"
#include "sinks/webhook/webhook_config.hpp"

// The sink types sluice has. Each one's folder declares its settings struct `T` (with `T::kType`
// and `T::config_type()`, its keys for the loader) and a build_sink() overload for it that makes
// the Sink; this list is the one place that names them all. Only the settings side is needed to
// load a file, so --check-config's code (and the config fuzz target) builds without the sinks.
namespace sluice::sinks {

using SinkList = std::tuple<FileSinkConfig, KafkaSinkConfig, WebhookSinkConfig>;

// What config::load_file()/load_string() read sinks with. Built once, then read-only.
const config::SinkTypes& sink_types();

}  // namespace sluice::sinks
