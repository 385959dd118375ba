#include "config/interpolate.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

namespace sluice::config {
namespace {

constexpr std::string_view kForms = "${env:NAME}, ${file:PATH} or ${credential:NAME}";

std::optional<std::string> lookup_env(const InterpolationEnv& env, const std::string& name) {
  if (env.getenv)
    return env.getenv(name);
  if (const char* v = std::getenv(name.c_str()))
    return std::string(v);
  return std::nullopt;
}

// Reads a whole file of at most kMaxSecretFileBytes; on failure sets `reason` (strerror text,
// or that the file is too large) and returns false. Reads at most one byte past the limit, so
// an endless device such as /dev/zero costs no more than a file just over it.
bool read_file(const std::string& path, std::string& content, std::string& reason) {
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    reason = errno != 0 ? std::strerror(errno) : "cannot open";
    return false;
  }
  content.resize(kMaxSecretFileBytes + 1);
  in.read(content.data(), static_cast<std::streamsize>(content.size()));
  if (in.bad()) {
    reason = "read error";
    return false;
  }
  content.resize(static_cast<std::size_t>(in.gcount()));
  if (content.size() > kMaxSecretFileBytes) {
    reason = "larger than " + std::to_string(kMaxSecretFileBytes / 1024) + " KiB";
    return false;
  }
  // `echo secret > file` leaves a newline that is never part of the secret.
  if (!content.empty() && content.back() == '\n') {
    content.pop_back();
    if (!content.empty() && content.back() == '\r')
      content.pop_back();
  }
  return true;
}

bool resolve(std::string_view kind, const std::string& arg, std::string_view source,
             const InterpolationEnv& env, std::string& value, std::string& error) {
  const std::string quoted = std::string(source);
  if (arg.empty()) {
    error = "empty name in " + quoted + " (expected " + std::string(kForms) + ")";
    return false;
  }
  if (kind == "env") {
    auto v = lookup_env(env, arg);
    if (!v) {
      error = "environment variable " + arg + " is not set (needed by " + quoted + ")";
      return false;
    }
    value = std::move(*v);
    return true;
  }
  if (kind == "file") {
    std::string path = arg;
    if (path.front() != '/' && !env.base_dir.empty())
      path = env.base_dir + "/" + path;
    std::string reason;
    if (!read_file(path, value, reason)) {
      error = "cannot read the file of " + quoted + ": " + reason;
      return false;
    }
    return true;
  }
  if (kind == "credential") {
    if (arg.find('/') != std::string::npos) {
      error = "a credential name cannot contain '/' (in " + quoted + ")";
      return false;
    }
    auto dir = lookup_env(env, "CREDENTIALS_DIRECTORY");
    if (!dir || dir->empty()) {
      error = "CREDENTIALS_DIRECTORY is not set (needed by " + quoted +
              "; systemd sets it for LoadCredential=)";
      return false;
    }
    std::string reason;
    if (!read_file(*dir + "/" + arg, value, reason)) {
      error = "cannot read the credential of " + quoted + ": " + reason;
      return false;
    }
    return true;
  }
  error = "unknown interpolation \"" + std::string(kind) + "\" in " + quoted + " (expected " +
          std::string(kForms) + ")";
  return false;
}

}  // namespace

bool interpolate(std::string_view text, const InterpolationEnv& env, Interpolated& out,
                 std::string& error) {
  out.value.clear();
  out.substituted = false;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text.compare(i, 3, "$${") == 0) {
      out.value += "${";
      i += 3;
      continue;
    }
    if (text.compare(i, 2, "${") != 0) {
      out.value += text[i++];
      continue;
    }
    const auto close = text.find('}', i + 2);
    if (close == std::string_view::npos) {
      error =
          "unterminated \"${\" (expected " + std::string(kForms) + "; write $${ for a literal ${)";
      return false;
    }
    const auto source = text.substr(i, close + 1 - i);
    if (env.refused) {
      error = std::string(source) + " is not resolved here: " + *env.refused +
              " (write $${ for a literal ${)";
      return false;
    }
    const auto body = text.substr(i + 2, close - i - 2);
    const auto colon = body.find(':');
    if (colon == std::string_view::npos) {
      error = "malformed " + std::string(source) + " (expected " + std::string(kForms) + ")";
      return false;
    }
    std::string value;
    if (!resolve(body.substr(0, colon), std::string(body.substr(colon + 1)), source, env, value,
                 error)) {
      return false;
    }
    out.value += value;
    out.substituted = true;
    i = close + 1;
  }
  return true;
}

}  // namespace sluice::config
