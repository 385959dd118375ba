#include "daemon/recovery/checkpoint_store.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>
#include <boost/json.hpp>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "core/log.hpp"
#include "core/utc.hpp"
#include "sinks/posix_file.hpp"

namespace sluice::recovery {

namespace json = boost::json;

namespace {

constexpr std::string_view kLog = "recovery";
// A checkpoint file is a few hundred bytes per table; anything far larger is not ours.
constexpr std::size_t kMaxFileBytes = 64u << 20;

std::string format_millis(Millis t) {
  return format_utc_millis(std::chrono::system_clock::time_point{t});
}

std::optional<Millis> read_time(const json::value* v) {
  if (v == nullptr || !v->is_string())
    return std::nullopt;
  return parse_timestamp(std::string_view(v->get_string()));
}

std::string compact_time() {
  const auto u = to_utc(std::chrono::system_clock::now());
  return fmt::format("{:04}{:02}{:02}T{:02}{:02}{:02}Z", u.tm.tm_year + 1900, u.tm.tm_mon + 1,
                     u.tm.tm_mday, u.tm.tm_hour, u.tm.tm_min, u.tm.tm_sec);
}

}  // namespace

std::string to_json(const State& state) {
  json::object resources;
  for (const auto& [key, cp] : state.resources) {
    json::array ids;
    for (const auto& id : cp.ids)
      ids.emplace_back(id);
    resources[key] = json::object{{"updated_at", format_millis(cp.updated_at)}, {"ids", ids}};
  }
  json::object root{{"format", kCheckpointFormat}};
  root["live_until"] = state.live_until ? json::value(format_millis(*state.live_until)) : nullptr;
  root["resources"] = std::move(resources);
  return json::serialize(root) + "\n";
}

std::optional<State> from_json(std::string_view text, std::string& error) {
  json::error_code ec;
  const auto doc = json::parse(text, ec);
  if (ec) {
    error = "not JSON: " + ec.message();
    return std::nullopt;
  }
  const auto* root = doc.if_object();
  if (root == nullptr) {
    error = "expected an object";
    return std::nullopt;
  }
  const auto* format = root->if_contains("format");
  if (format == nullptr || !format->is_int64() || format->get_int64() != kCheckpointFormat) {
    error = "expected \"format\": " + std::to_string(kCheckpointFormat);
    return std::nullopt;
  }
  State state;
  if (const auto* live = root->if_contains("live_until"); live && !live->is_null()) {
    state.live_until = read_time(live);
    if (!state.live_until) {
      error = "live_until: expected a timestamp";
      return std::nullopt;
    }
  }
  const auto* resources = root->if_contains("resources");
  if (resources == nullptr || !resources->is_object()) {
    error = "expected \"resources\": an object";
    return std::nullopt;
  }
  for (const auto& [key, value] : resources->get_object()) {
    const std::string name(key);
    const auto* entry = value.if_object();
    const auto bad = [&](std::string_view what) {
      error = "resources." + name + ": " + std::string(what);
      return std::nullopt;
    };
    if (!name.starts_with("databases/") && !name.starts_with("buckets/"))
      return bad("not a table or bucket");
    if (entry == nullptr)
      return bad("expected an object");
    const auto at = read_time(entry->if_contains("updated_at"));
    if (!at)
      return bad("updated_at: expected a timestamp");
    Checkpoint cp{*at, {}};
    const auto* ids = entry->if_contains("ids");
    if (ids == nullptr || !ids->is_array())
      return bad("ids: expected a list");
    for (const auto& id : ids->get_array()) {
      if (!id.is_string())
        return bad("ids: expected strings");
      if (cp.ids.size() < kMaxIdsPerCheckpoint)
        cp.ids.emplace_back(id.get_string());
    }
    state.resources.emplace(name, std::move(cp));
  }
  return state;
}

CheckpointStore::CheckpointStore(std::string state_dir, OnError on_error)
    : dir_(std::move(state_dir)),
      path_(dir_ + "/" + std::string(kCheckpointFile)),
      on_error_(std::move(on_error)) {}

void CheckpointStore::failed(std::string_view op, const std::string& message) {
  log::warn(kLog, message, {{"path", path_}, {"op", std::string(op)}});
  if (on_error_)
    on_error_(op);
}

std::optional<State> CheckpointStore::load() {
  errno = 0;
  std::ifstream in(path_, std::ios::binary);
  if (!in) {
    if (errno == ENOENT)
      return std::nullopt;  // the first start: nothing to recover from
    failed("load", "cannot read the checkpoint file (" +
                       sinks::posix::error_text(errno != 0 ? errno : EIO) +
                       "); recovery starts without it");
    return std::nullopt;
  }
  std::string text(kMaxFileBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  std::string error;
  std::optional<State> state;
  if (in.bad()) {
    error = "read error";
  } else if (static_cast<std::size_t>(in.gcount()) > kMaxFileBytes) {
    error = "larger than " + std::to_string(kMaxFileBytes >> 20) + " MiB";
  } else {
    text.resize(static_cast<std::size_t>(in.gcount()));
    state = from_json(text, error);
  }
  in.close();
  if (state)
    return state;
  // Moved aside rather than deleted: someone may want to look at it, and the next start must
  // not trip on it again.
  const auto aside = path_ + ".corrupt-" + compact_time();
  failed("load", "the checkpoint file is unusable (" + error +
                     "); recovery starts without it, the file is moved to " + aside);
  if (std::rename(path_.c_str(), aside.c_str()) != 0)
    failed("move_aside",
           "cannot move the checkpoint file aside: " + sinks::posix::error_text(errno));
  return std::nullopt;
}

bool CheckpointStore::save(const State& state) {
  const auto text = to_json(state);
  const auto temp = path_ + ".tmp";
  if (const auto ec = sinks::posix::create_parent_directories(path_)) {
    failed("save", "cannot create the state directory: " + sinks::posix::error_text(ec));
    return false;
  }
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    failed("save", "cannot write the checkpoint file: " + sinks::posix::error_text(errno));
    return false;
  }
  auto ec = sinks::posix::append_all(fd, text, 0);
  if (!ec && ::fsync(fd) != 0)
    ec = std::error_code(errno, std::system_category());
  if (::close(fd) != 0 && !ec)
    ec = std::error_code(errno, std::system_category());
  if (!ec && std::rename(temp.c_str(), path_.c_str()) != 0)
    ec = std::error_code(errno, std::system_category());
  if (ec) {
    ::unlink(temp.c_str());
    failed("save", "cannot write the checkpoint file: " + sinks::posix::error_text(ec));
    return false;
  }
  if (const auto dir_ec = sinks::posix::sync_parent_directory(path_)) {
    failed("save", "cannot sync the state directory: " + sinks::posix::error_text(dir_ec));
    return false;
  }
  return true;
}

}  // namespace sluice::recovery
