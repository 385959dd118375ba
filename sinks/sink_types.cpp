#include "sinks/sink_types.hpp"

#include <type_traits>

namespace sluice::sinks {

namespace {

template <class... T>
config::SinkTypes settings_of(std::type_identity<std::tuple<T...>>) {
  return config::SinkTypes({T::config_type()...});
}

}  // namespace

const config::SinkTypes& sink_types() {
  static const config::SinkTypes types = settings_of(std::type_identity<SinkList>{});
  return types;
}

}  // namespace sluice::sinks
