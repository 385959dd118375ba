#include "sinks/factory.hpp"

#include <type_traits>
#include <variant>

#include "sinks/file/file_sink.hpp"

namespace sluice::sinks {

std::unique_ptr<Sink> make_sink(const config::SinkConfig& config, std::string project,
                                BlockingPool& pool, boost::asio::any_io_executor loop,
                                std::string& error) {
  (void)loop;  // the network sinks (kafka, webhook) will run their I/O on it
  return std::visit(
      [&](const auto& settings) -> std::unique_ptr<Sink> {
        using T = std::decay_t<decltype(settings)>;
        if constexpr (std::is_same_v<T, config::FileSinkConfig>) {
          return std::make_unique<FileSink>(settings, std::move(project), pool);
        } else if constexpr (std::is_same_v<T, config::KafkaSinkConfig>) {
          error = "sink \"" + config.name + "\": type kafka is not supported yet";
          return nullptr;
        } else {
          static_assert(std::is_same_v<T, config::WebhookSinkConfig>);
          error = "sink \"" + config.name + "\": type webhook is not supported yet";
          return nullptr;
        }
      },
      config.settings);
}

}  // namespace sluice::sinks
