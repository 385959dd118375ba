#include "sinks/file/file_config.hpp"

#include <utility>

#include "config/config_map.hpp"

namespace sluice::sinks {

namespace {

using config::Field;
using config::key;
using config::Reader;
using F = FileSinkConfig;
namespace as = config::as;

config::ConfigMap<F> file_map() {
  using Fsync = F::Fsync;
  // `rotate` is a mapping of its own whose keys land in the sink's flat settings.
  config::ConfigMap<F> rotate({
      key("max_size", &F::rotate_max_size, as::size(), "rotate when a file reaches this size"),
      key("max_age", &F::rotate_max_age, as::duration(), "rotate when a file is this old"),
  });
  return config::ConfigMap<F>({
      config::required_key("path", &F::path, as::template_(true), "a file path template"),
      config::custom_key<F>(
          "rotate",
          [rotate = std::move(rotate)](Reader& r, const Field& f, F& out) {
            rotate.read(r, f, out);
          },
          "when the current file is renamed and a new one started"),
      key("fsync", &F::fsync,
          as::enumeration<Fsync>(
              {{"always", Fsync::always}, {"batch", Fsync::batch}, {"never", Fsync::never}}),
          "when written records are fsynced"),
  });
}

}  // namespace

config::SinkType FileSinkConfig::config_type() {
  return config::sink_type(file_map());
}

}  // namespace sluice::sinks
