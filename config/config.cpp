#include "config/config.hpp"

namespace sluice::config {

std::string_view SinkConfig::type_name() const {
  switch (settings.index()) {
    case 0:
      return "kafka";
    case 1:
      return "webhook";
    default:
      return "file";
  }
}

const SinkConfig* Config::find_sink(std::string_view name) const {
  for (const auto& s : sinks) {
    if (s.name == name)
      return &s;
  }
  return nullptr;
}

}  // namespace sluice::config
