#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "config/sink_type.hpp"
#include "core/template.hpp"
#include "sinks/sink.hpp"
#include "sinks/sink_context.hpp"

// The settings of a `type: webhook` sink, their keys and their checks.
namespace sluice::sinks {

struct WebhookSinkConfig {
  static constexpr std::string_view kType = "webhook";
  static config::SinkType config_type();  // the keys, for the loader
  struct Signing {
    enum class Scheme { none, standard, appwrite };
    Scheme scheme = Scheme::none;
    config::Secret secret;
    bool operator==(const Signing&) const = default;
  };
  struct Batch {
    std::uint32_t max_events = 0;  // 0: batching off
    std::uint64_t max_bytes = 1ull << 20;
    config::Duration max_wait{100};
    bool operator==(const Batch&) const = default;
  };
  std::string url;
  Signing signing;
  config::Duration timeout{15000};
  std::uint32_t concurrency = 8;
  std::map<std::string, Template> headers;
  Batch batch;
  config::TlsConfig tls;
  bool follow_redirects = false;
  // Empty: HTTPS_PROXY/HTTP_PROXY/NO_PROXY decide; "none": always direct; else the proxy's URL
  // (checked at load). A secret: the URL may carry the proxy's password.
  config::Secret proxy;
  bool operator==(const WebhookSinkConfig&) const = default;
};

// Makes the sink (defined next to it, in webhook_sink.cpp); nullptr with `error` set when it
// cannot.
std::unique_ptr<Sink> build_sink(const WebhookSinkConfig& settings, const config::SinkConfig& sink,
                                 SinkContext context, std::string& error);

}  // namespace sluice::sinks
