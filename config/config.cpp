#include "config/config.hpp"

namespace sluice::config {

std::string_view SinkConfig::type_name() const {
  return settings ? settings->type_name() : std::string_view();
}

bool SinkConfig::same_settings(const SinkConfig& other) const {
  const bool same_type_settings =
      settings && other.settings ? settings->equals(*other.settings) : settings == other.settings;
  return name == other.name && same_type_settings && buffer == other.buffer &&
         retry == other.retry && dead_letter == other.dead_letter && gap_marker == other.gap_marker;
}

const SinkConfig* Config::find_sink(std::string_view name) const {
  for (const auto& s : sinks) {
    if (s.name == name)
      return &s;
  }
  return nullptr;
}

}  // namespace sluice::config
