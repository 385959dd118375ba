#include "sinks/factory.hpp"

#include <type_traits>
#include <variant>

#include "sinks/file/file_sink.hpp"
#include "sinks/kafka/kafka_sink.hpp"
#include "sinks/webhook/webhook_sink.hpp"

namespace sluice::sinks {

std::unique_ptr<Sink> make_sink(const config::SinkConfig& config, std::string project,
                                BlockingPool& pool, boost::asio::any_io_executor loop,
                                std::string& error, const SinkMetrics* metrics) {
  return std::visit(
      [&](const auto& settings) -> std::unique_ptr<Sink> {
        using T = std::decay_t<decltype(settings)>;
        if constexpr (std::is_same_v<T, config::FileSinkConfig>) {
          return std::make_unique<FileSink>(settings, std::move(project), pool);
        } else if constexpr (std::is_same_v<T, config::KafkaSinkConfig>) {
          std::string why;
          auto sink = KafkaSink::create(settings, std::move(project), pool, loop, why);
          if (!sink)
            error = "sink \"" + config.name + "\": " + why;
          return sink;
        } else {
          static_assert(std::is_same_v<T, config::WebhookSinkConfig>);
          WebhookSink::Options options;
          if (metrics && metrics->responses) {
            options.on_response = [responses = metrics->responses](unsigned status) {
              static constexpr std::string_view kClasses[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
              const bool known = status >= 100 && status < 600;
              responses(known ? kClasses[status / 100 - 1] : "other").Increment();
            };
          }
          return WebhookSink::create(loop, settings, config.name, std::move(project), error,
                                     std::move(options));
        }
      },
      config.settings);
}

}  // namespace sluice::sinks
