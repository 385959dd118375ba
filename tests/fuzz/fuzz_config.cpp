// libFuzzer target: a routes file through the config loader (YAML, interpolation, validation).
// The loader must never throw and must give either a config or at least one error.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "config/loader.hpp"
#include "sinks/sink_types.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  // ${file:…} and ${credential:…} read the file system: an input naming /dev/zero or a FIFO
  // would measure the machine, not the loader.
  if (text.find("${file:") != std::string_view::npos ||
      text.find("${credential:") != std::string_view::npos) {
    return 0;
  }
  const auto result = sluice::config::load_string(text, "fuzz.yaml", sluice::sinks::sink_types());
  if (result.ok() != result.config.has_value())
    std::abort();
  for (const auto& e : result.errors)
    (void)e.format();
  return 0;
}
