#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/recovery/checkpoint.hpp"

// The checkpoints on disk: one JSON file, `<state_dir>/checkpoints.json`, with a format version.
namespace sluice::recovery {

inline constexpr int kCheckpointFormat = 1;
inline constexpr std::string_view kCheckpointFile = "checkpoints.json";

// The file's text for `state`, and back. from_json() rejects anything but this format (wrong
// version, missing or mistyped fields, bad keys) with a message saying what.
std::string to_json(const State& state);
std::optional<State> from_json(std::string_view text, std::string& error);

// Owned by the App. load() runs once at start; save() about once a second, both off the event
// loop (they block on the disk), never two at once. A failure is logged at warn, counted through
// `on_error` ("load", "save", "move_aside") and never fatal: recovery then runs without the
// file, or the next save tries again.
class CheckpointStore {
 public:
  using OnError = std::function<void(std::string_view op)>;
  explicit CheckpointStore(std::string state_dir, OnError on_error = {});

  const std::string& path() const { return path_; }

  // The saved state; nullopt when there is none. A file that cannot be read or parsed is moved
  // aside to `checkpoints.json.corrupt-<time>` so the next start does not trip on it again.
  std::optional<State> load();

  // Writes `state` atomically: a temporary file, fsync, rename over the file, fsync of the
  // directory. Creates state_dir when missing. false when any step failed.
  bool save(const State& state);

 private:
  void failed(std::string_view op, const std::string& message);

  std::string dir_;
  std::string path_;
  OnError on_error_;
};

}  // namespace sluice::recovery
