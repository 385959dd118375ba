#include "daemon/version.hpp"

#include <librdkafka/rdkafka.h>
#include <openssl/crypto.h>

#include <fmt/format.h>
#include <boost/version.hpp>

// Generated at every build (cmake/git_commit.cmake); the library versions without a macro of
// their own come from CMake (daemon/CMakeLists.txt).
#include "daemon/git_commit.hpp"

namespace sluice {

std::string version_text() {
  std::string text = "sluice " SLUICE_VERSION "\ncommit: " SLUICE_GIT_COMMIT "\n";
  text += fmt::format("boost: {}.{}.{}\n", BOOST_VERSION / 100000, BOOST_VERSION / 100 % 1000,
                      BOOST_VERSION % 100);
  text += fmt::format("librdkafka: {}\n", rd_kafka_version_str());
  text += fmt::format("openssl: {}\n", OpenSSL_version(OPENSSL_VERSION_STRING));
  text += "yaml-cpp: " SLUICE_YAML_CPP_VERSION "\n";
  text += "prometheus-cpp: " SLUICE_PROMETHEUS_CPP_VERSION "\n";
  text += "simdjson: " SLUICE_SIMDJSON_VERSION "\n";
  text += fmt::format("fmt: {}.{}.{}\n", FMT_VERSION / 10000, FMT_VERSION / 100 % 100,
                      FMT_VERSION % 100);
  return text;
}

}  // namespace sluice
