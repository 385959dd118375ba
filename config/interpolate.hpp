#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

// `${env:NAME}`, `${file:PATH}` and `${credential:NAME}` in routes.yaml string values
// (README, "A tour of `routes.yaml`"). Plain functions over an injectable environment so tests need
// no real one.
namespace sluice::config {

// The most `${file:…}` and `${credential:…}` read: a secret is small, and a device such as
// /dev/zero or a huge file must not fill memory.
inline constexpr std::size_t kMaxSecretFileBytes = 1u << 20;

struct InterpolationEnv {
  // Directory of the configuration file: relative `${file:…}` paths are resolved against it.
  std::string base_dir = ".";
  // Environment lookup; empty function: the process environment (getenv).
  std::function<std::optional<std::string>(const std::string&)> getenv;
  // Set where `${…}` must not be resolved (route test cases, whose text is printed): each one
  // is then an error saying so, with this reason.
  std::optional<std::string> refused;
};

struct Interpolated {
  std::string value;
  // True when at least one `${…}` was substituted: the value then counts as a secret and is
  // never printed (error messages show the source text instead).
  bool substituted = false;
};

// Replaces every `${KIND:ARG}` in `text`. `$${` stands for a literal `${`. `${file:…}` gives the
// file's content (at most kMaxSecretFileBytes) with one trailing newline removed;
// `${credential:NAME}` reads
// `$CREDENTIALS_DIRECTORY/NAME` (systemd's LoadCredential=). On failure returns false and sets
// `error`, which quotes the `${…}` source and never a resolved value.
bool interpolate(std::string_view text, const InterpolationEnv& env, Interpolated& out,
                 std::string& error);

}  // namespace sluice::config
