#include "sinks/factory.hpp"

#include <type_traits>
#include <utility>

#include "sinks/sink_context.hpp"

namespace sluice::sinks {

namespace {

template <class T>
bool build_if(const config::SinkConfig& config, SinkContext& context, std::string& error,
              std::unique_ptr<Sink>& out) {
  if (config.type_name() != T::kType)
    return false;
  out = build_sink(config.settings_as<T>(), config, std::move(context), error);
  return true;
}

template <class... T>
std::unique_ptr<Sink> build(std::type_identity<std::tuple<T...>>, const config::SinkConfig& config,
                            SinkContext context, std::string& error) {
  std::unique_ptr<Sink> out;
  if (!(build_if<T>(config, context, error, out) || ...)) {
    error =
        "sink \"" + config.name + "\": unknown type \"" + std::string(config.type_name()) + "\"";
  }
  return out;
}

}  // namespace

std::unique_ptr<Sink> make_sink(const config::SinkConfig& config, std::string project,
                                BlockingPool& pool, boost::asio::any_io_executor loop,
                                std::string& error, const SinkMetrics* metrics) {
  return build(std::type_identity<SinkList>{}, config,
               {std::move(project), pool, std::move(loop), metrics}, error);
}

}  // namespace sluice::sinks
