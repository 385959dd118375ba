#include "sinks/webhook/webhook_config.hpp"

#include <utility>

#include "config/config_map.hpp"
#include "net/proxy.hpp"

namespace sluice::sinks {

namespace {

using config::custom_key;
using config::key;
using config::MapView;
using config::quote;
using config::Reader;
using config::required_key;
using W = WebhookSinkConfig;
namespace as = config::as;

config::ConfigMap<W::Signing> signing_map() {
  using S = W::Signing;
  using Scheme = S::Scheme;
  return config::ConfigMap<S>(
      {
          required_key("scheme", &S::scheme,
                       as::enumeration<Scheme>({{"none", Scheme::none},
                                                {"standard", Scheme::standard},
                                                {"appwrite", Scheme::appwrite}}),
                       "one of: none, standard, appwrite"),
          key("secret", &S::secret, as::secret(), "the signing key"),
      },
      [](Reader& r, const MapView& map, S& out) {
        if (out.scheme != Scheme::none && !map.get("secret")) {
          r.error(map.anchor(), map.path(),
                  "missing required key \"secret\" (signing scheme " +
                      quote(map.get("scheme")->value.Scalar()) + " needs a secret)");
        }
      });
}

config::ConfigMap<W::Batch> batch_map() {
  using B = W::Batch;
  return config::ConfigMap<B>({
      key("max_events", &B::max_events, as::integer(0, 100000), "records per request; 0: off"),
      key("max_bytes", &B::max_bytes, as::size(), "bytes per request at most"),
      key("max_wait", &B::max_wait, as::duration(true), "how long a batch waits to fill"),
  });
}

config::ConfigMap<W> webhook_map() {
  return config::ConfigMap<W>({
      required_key("url", &W::url, as::url({"http", "https"}, "an http:// or https:// URL"),
                   "the http:// or https:// URL to POST to"),
      key("signing", &W::signing, signing_map(), "how requests are signed"),
      key("timeout", &W::timeout, as::duration(), "bound of every connect and exchange"),
      key("concurrency", &W::concurrency, as::integer(1, 1024), "requests in flight at most"),
      key("headers", &W::headers, as::headers(), "extra request headers (templates)"),
      key("batch", &W::batch, batch_map(), "several records per request"),
      key("tls", &W::tls, as::tls(), "CA and client certificate for https"),
      key("follow_redirects", &W::follow_redirects, as::boolean(), "follow 3xx answers"),
      custom_key<W>(
          "proxy",
          [](Reader& r, const config::Field& f, W& out) {
            auto value = r.secret(f);
            if (!value)
              return;
            std::string error;
            if (value->reveal() != net::ProxyChoice::kNone &&
                !net::parse_proxy(value->reveal(), error)) {
              // Not quoted: the URL may hold the proxy's password.
              r.error(f.mark(), f.path, "expected \"none\" or a proxy URL: " + error);
              return;
            }
            out.proxy = std::move(*value);
          },
          "HTTP proxy URL, or none (default: HTTPS_PROXY, HTTP_PROXY, NO_PROXY)"),
  });
}

}  // namespace

config::SinkType WebhookSinkConfig::config_type() {
  return config::sink_type(webhook_map());
}

}  // namespace sluice::sinks
