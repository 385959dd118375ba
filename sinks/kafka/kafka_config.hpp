#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/sink_type.hpp"
#include "core/template.hpp"
#include "sinks/sink.hpp"
#include "sinks/sink_context.hpp"

// The settings of a `type: kafka` sink, their keys and their checks; librdkafka
// validates `compression` and `properties` at load time, without connecting.
namespace sluice::sinks {

struct KafkaSinkConfig {
  static constexpr std::string_view kType = "kafka";
  static config::SinkType config_type();  // the keys, for the loader
  enum class Compression { none, gzip, snappy, lz4, zstd };
  std::vector<std::string> brokers;
  Template topic;
  std::optional<Template> key;
  Compression compression = Compression::none;
  std::map<std::string, std::string> properties;  // passed to librdkafka
  std::map<std::string, Template> headers;        // extra headers
  bool operator==(const KafkaSinkConfig&) const = default;
};

// What librdkafka makes of sluice's producer defaults (acks=all, idempotence on) overridden by
// `properties` (valid ones, as the loader keeps them), parsed by librdkafka's own rules: `ALL`,
// `-1`, `f`, `0`, `False`, the `request.required.acks` alias.
struct KafkaDurability {
  bool acks_all = true;
  bool idempotence = true;
};
KafkaDurability kafka_durability(const std::map<std::string, std::string>& properties);

// Why the Kafka sink dead-letters a record whose topic renders as `topic` (its own check, shared
// with `sluice test`); empty when it sends the record.
std::string check_rendered_topic(std::string_view topic);

// librdkafka's name of a compression codec.
std::string_view compression_name(KafkaSinkConfig::Compression compression);

// Makes the sink (defined next to it, in kafka_sink.cpp); nullptr with `error` set when it
// cannot.
std::unique_ptr<Sink> build_sink(const KafkaSinkConfig& settings, const config::SinkConfig& sink,
                                 SinkContext context, std::string& error);

}  // namespace sluice::sinks
