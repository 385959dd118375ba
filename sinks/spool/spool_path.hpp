#pragma once

#include <string>

#include "config/config.hpp"

namespace sluice::sinks {

// Where a sink's disk buffer lives (<buffer.dir>/<name>), "" for a memory buffer: its worker
// opens the buffer there, and a reload hands a disk buffer from one worker to the next by it.
inline std::string spool_path(const config::SinkConfig& sink) {
  if (sink.buffer.type != config::BufferConfig::Type::disk)
    return {};
  return sink.buffer.dir + "/" + sink.name;
}

}  // namespace sluice::sinks
