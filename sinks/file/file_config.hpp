#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "config/sink_type.hpp"
#include "core/template.hpp"
#include "sinks/sink.hpp"
#include "sinks/sink_context.hpp"

// The settings of a `type: file` sink and their keys.
namespace sluice::sinks {

struct FileSinkConfig {
  static constexpr std::string_view kType = "file";
  static config::SinkType config_type();  // the keys, for the loader
  enum class Fsync { always, batch, never };
  Template path;                       // strftime allowed
  std::uint64_t rotate_max_size = 0;   // 0: no size rotation
  config::Duration rotate_max_age{0};  // 0: no age rotation
  Fsync fsync = Fsync::batch;
  bool operator==(const FileSinkConfig&) const = default;
};

// Makes the sink (defined next to it, in file_sink.cpp); nullptr with `error` set when it
// cannot.
std::unique_ptr<Sink> build_sink(const FileSinkConfig& settings, const config::SinkConfig& sink,
                                 SinkContext context, std::string& error);

// Why the file sink dead-letters a record whose path renders as `path` (its own check, shared
// with `sluice test`); empty when it writes the record. Only the template's own `..` are
// allowed: event data may not add any.
std::string check_rendered_path(const FileSinkConfig& config, std::string_view path);

}  // namespace sluice::sinks
