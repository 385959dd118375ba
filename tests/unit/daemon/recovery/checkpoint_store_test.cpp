#include "daemon/recovery/checkpoint_store.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace sluice::recovery {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

Millis at(int ms) {
  return Millis{std::chrono::sys_days{std::chrono::year{2026} / 12 / 6}} +
         std::chrono::milliseconds{ms};
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "sluice-ckpt-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write(const std::string& path, std::string_view text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& entry : fs::directory_iterator(dir))
    out.push_back(entry.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

State sample() {
  State s;
  s.live_until = at(5000);
  s.resources["databases/shop/tables/orders"] = {at(4000), {"a", "b\"quoted\""}};
  s.resources["buckets/photos"] = {at(-1), {}};
  return s;
}

// A store that records the ops of its errors.
struct Counted {
  std::vector<std::string> errors;
  CheckpointStore store;
  explicit Counted(const std::string& dir)
      : store(dir, [this](std::string_view op) { errors.emplace_back(op); }) {}
};

TEST(CheckpointJson, RoundTripsWithAFormatVersion) {
  const auto text = to_json(sample());
  EXPECT_THAT(text, HasSubstr(R"("format":1)"));
  EXPECT_THAT(text, HasSubstr(R"("updated_at":"2026-12-06T00:00:04.000Z")"));
  std::string error;
  EXPECT_EQ(from_json(text, error), sample()) << error;
  EXPECT_EQ(from_json(to_json(State{}), error), State{});
}

TEST(CheckpointJson, RejectsWhatIsNotThisFormat) {
  const auto rejects = [](std::string_view text, std::string_view why) {
    std::string error;
    EXPECT_EQ(from_json(text, error), std::nullopt) << text;
    EXPECT_THAT(error, HasSubstr(std::string(why))) << text;
  };
  rejects("", "not JSON");
  rejects("[]", "expected an object");
  rejects(R"({"format":2,"resources":{}})", "expected \"format\": 1");
  rejects(R"({"resources":{}})", "format");
  rejects(R"({"format":1})", "resources");
  rejects(R"({"format":1,"live_until":"soon","resources":{}})", "live_until");
  rejects(R"({"format":1,"resources":{"x/y":{"updated_at":"2026-12-06T00:00:00Z","ids":[]}}})",
          "resources.x/y: not a table or bucket");
  rejects(R"({"format":1,"resources":{"buckets/b":{"ids":[]}}})", "updated_at");
  rejects(R"({"format":1,"resources":{"buckets/b":{"updated_at":"2026-12-06T00:00:00Z"}}})", "ids");
  rejects(
      R"({"format":1,"resources":{"buckets/b":{"updated_at":"2026-12-06T00:00:00Z","ids":[1]}}})",
      "ids: expected strings");
}

TEST(CheckpointStore, SavesAtomicallyAndLoadsBack) {
  TempDir dir;
  Counted c(dir.path() + "/state");         // created on the first save
  EXPECT_EQ(c.store.load(), std::nullopt);  // none yet: not an error
  ASSERT_TRUE(c.store.save(sample()));
  EXPECT_EQ(c.store.path(), dir.path() + "/state/checkpoints.json");
  EXPECT_THAT(files_in(dir.path() + "/state"), ElementsAre("checkpoints.json"));  // no temp left
  EXPECT_EQ(CheckpointStore(dir.path() + "/state").load(), sample());
  State next = sample();
  next.resources.erase("buckets/photos");
  ASSERT_TRUE(c.store.save(next));
  EXPECT_EQ(c.store.load(), next);
  EXPECT_TRUE(c.errors.empty());
}

TEST(CheckpointStore, ATruncatedFileIsMovedAsideAndCounted) {
  TempDir dir;
  Counted c(dir.path());
  ASSERT_TRUE(c.store.save(sample()));
  const auto text = read(c.store.path());
  write(c.store.path(), text.substr(0, text.size() / 2));  // a torn write by another tool
  EXPECT_EQ(c.store.load(), std::nullopt);
  EXPECT_THAT(c.errors, ElementsAre("load"));
  const auto files = files_in(dir.path());
  ASSERT_EQ(files.size(), 1u);
  EXPECT_THAT(files[0], ::testing::StartsWith("checkpoints.json.corrupt-"));
  EXPECT_EQ(read(dir.path() + "/" + files[0]), text.substr(0, text.size() / 2));
  // The next start begins without it, and the next save writes a good one.
  EXPECT_EQ(c.store.load(), std::nullopt);
  EXPECT_THAT(c.errors, ElementsAre("load"));
  ASSERT_TRUE(c.store.save(sample()));
  EXPECT_EQ(c.store.load(), sample());
}

TEST(CheckpointStore, GarbageAndAWrongVersionAreMovedAside) {
  for (const std::string_view text :
       {std::string_view("\x00\xff\x13 garbage", 11), std::string_view(R"({"format":99})")}) {
    TempDir dir;
    Counted c(dir.path());
    write(c.store.path(), text);
    EXPECT_EQ(c.store.load(), std::nullopt);
    EXPECT_THAT(c.errors, ElementsAre("load"));
    EXPECT_FALSE(fs::exists(c.store.path()));
  }
}

TEST(CheckpointStore, AnUnwritableStateDirFailsTheSaveWithoutThrowing) {
  TempDir dir;
  write(dir.path() + "/file", "x");
  Counted c(dir.path() + "/file/state");  // under a regular file: cannot exist
  EXPECT_FALSE(c.store.save(sample()));
  EXPECT_FALSE(c.store.save(sample()));
  EXPECT_THAT(c.errors, ElementsAre("save", "save"));
  EXPECT_EQ(c.store.load(), std::nullopt);  // ENOTDIR is unreadable, counted
  EXPECT_THAT(c.errors, ElementsAre("save", "save", "load"));
}

// The temporary file cannot be created (a directory holds its name: this fails for root too,
// where a read-only state_dir would not): the save fails and the file keeps the last state.
TEST(CheckpointStore, ASaveThatCannotWriteItsTemporaryFileFailsAndKeepsTheOldFile) {
  TempDir dir;
  Counted c(dir.path());
  ASSERT_TRUE(c.store.save(sample()));
  fs::create_directory(c.store.path() + ".tmp");
  EXPECT_FALSE(c.store.save(State{}));
  EXPECT_THAT(c.errors, ElementsAre("save"));
  EXPECT_EQ(c.store.load(), sample());
}

}  // namespace
}  // namespace sluice::recovery
