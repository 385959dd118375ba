#include "sinks/kafka/kafka_config.hpp"

#include <librdkafka/rdkafka.h>

#include <memory>
#include <utility>

#include "config/config_map.hpp"

namespace sluice::sinks {

namespace {

using config::Field;
using config::quote;
using config::Reader;
using K = KafkaSinkConfig;
namespace as = config::as;

// A fresh librdkafka configuration to try values on: librdkafka checks names, types and
// ranges itself.
std::unique_ptr<rd_kafka_conf_t, decltype(&rd_kafka_conf_destroy)> scratch_conf() {
  return {rd_kafka_conf_new(), rd_kafka_conf_destroy};
}

// librdkafka's text for `name` in `conf` (its canonical form: "true", "-1", …).
std::string conf_value(rd_kafka_conf_t* conf, const char* name) {
  char value[64];
  std::size_t size = sizeof value;
  if (rd_kafka_conf_get(conf, name, value, &size) != RD_KAFKA_CONF_OK)
    return {};
  return value;
}

void read_brokers(Reader& r, const Field& f, K& out) {
  if (auto list = r.string_list(f, "HOST:PORT brokers")) {
    if (list->empty()) {
      r.error(f.mark(), f.path, "expected at least one broker");
    } else {
      out.brokers = std::move(*list);
    }
  }
}

void read_compression(Reader& r, const Field& f, K& out) {
  using C = K::Compression;
  const auto v = r.enumeration<C>(f, {{"none", C::none},
                                      {"gzip", C::gzip},
                                      {"snappy", C::snappy},
                                      {"lz4", C::lz4},
                                      {"zstd", C::zstd}});
  if (!v)
    return;
  // A codec this librdkafka was built without is refused here, not at the first message.
  const std::string name(compression_name(*v));
  auto conf = scratch_conf();
  char errstr[512];
  if (rd_kafka_conf_set(conf.get(), "compression.codec", name.c_str(), errstr, sizeof errstr) !=
      RD_KAFKA_CONF_OK) {
    r.error(f.mark(), f.path,
            "librdkafka rejected compression " + quote(name) + ": " + std::string(errstr));
    return;
  }
  out.compression = *v;
}

void read_properties(Reader& r, const Field& f, K& out) {
  const config::MapView props(r, f.value, f.key.Mark(), f.path);
  auto conf = scratch_conf();
  char errstr[512];
  for (const auto& prop : props.fields()) {
    auto s = r.scalar(prop, "a property value (string, number or boolean)");
    if (!s)
      continue;
    const auto& name = prop.key.Scalar();
    if (rd_kafka_conf_set(conf.get(), name.c_str(), s->value.c_str(), errstr, sizeof errstr) !=
        RD_KAFKA_CONF_OK) {
      std::string reason = errstr;
      if (s->secret && !s->value.empty()) {
        // librdkafka may quote the value it rejected: show the ${…} source instead.
        for (auto pos = reason.find(s->value); pos != std::string::npos;
             pos = reason.find(s->value, pos + s->display.size())) {
          reason.replace(pos, s->value.size(), s->display);
        }
      }
      const bool unknown = reason.starts_with("No such configuration property");
      r.error(unknown ? prop.key.Mark() : prop.mark(), prop.path,
              "librdkafka rejected property " + quote(name) + ": " + reason);
      continue;
    }
    out.properties.emplace(name, std::move(s->value));
  }
  // librdkafka accepts each of these alone but refuses to create an idempotent producer (sluice's
  // default) with acks other than all: the sink would fail at every start.
  const auto durability = kafka_durability(out.properties);
  if (durability.idempotence && !durability.acks_all) {
    for (const auto& prop : props.fields()) {
      const auto& name = prop.key.Scalar();
      if ((name == "acks" || name == "request.required.acks") && out.properties.contains(name)) {
        r.error(prop.mark(), prop.path,
                name +
                    " other than all needs enable.idempotence: false (librdkafka refuses an "
                    "idempotent producer, sluice's default, without acks=all)");
      }
    }
  }
}

config::ConfigMap<K> kafka_map() {
  using config::custom_key;
  using config::key;
  using config::required_key;
  return config::ConfigMap<K>({
      custom_key<K>("brokers", read_brokers, "a list of HOST:PORT bootstrap brokers", true),
      required_key("topic", &K::topic, as::template_(), "a topic name template"),
      key("key", &K::key, as::template_(), "the record key template; absent: null keys"),
      custom_key<K>("compression", read_compression, "none, gzip, snappy, lz4 or zstd"),
      custom_key<K>("properties", read_properties, "librdkafka producer properties"),
      key("headers", &K::headers, as::headers(), "extra record headers (templates)"),
  });
}

}  // namespace

KafkaDurability kafka_durability(const std::map<std::string, std::string>& properties) {
  auto conf = scratch_conf();
  auto all = scratch_conf();
  char errstr[512];
  // As KafkaSink::producer_properties() applies them: the defaults, then the properties.
  for (auto* c : {conf.get(), all.get()}) {
    rd_kafka_conf_set(c, "enable.idempotence", "true", errstr, sizeof errstr);
    rd_kafka_conf_set(c, "acks", "all", errstr, sizeof errstr);
  }
  for (const auto& [name, value] : properties)
    rd_kafka_conf_set(conf.get(), name.c_str(), value.c_str(), errstr, sizeof errstr);
  return {conf_value(conf.get(), "request.required.acks") ==
              conf_value(all.get(), "request.required.acks"),
          conf_value(conf.get(), "enable.idempotence") == "true"};
}

std::string check_rendered_topic(std::string_view topic) {
  return topic.empty() ? "topic: renders empty" : "";
}

std::string_view compression_name(KafkaSinkConfig::Compression compression) {
  static constexpr std::string_view kNames[] = {"none", "gzip", "snappy", "lz4", "zstd"};
  return kNames[static_cast<int>(compression)];
}

config::SinkType KafkaSinkConfig::config_type() {
  return config::sink_type(kafka_map());
}

}  // namespace sluice::sinks
