#include "config/interpolate.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

namespace sluice::config {
namespace {

namespace fs = std::filesystem;

// A temporary directory removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "sluice-config-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }
  void write(const std::string& name, const std::string& content) const {
    std::ofstream(path_ + "/" + name, std::ios::binary) << content;
  }

 private:
  std::string path_;
};

InterpolationEnv fake_env(std::map<std::string, std::string> vars, std::string base = ".") {
  InterpolationEnv env;
  env.base_dir = std::move(base);
  env.getenv = [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end())
      return std::nullopt;
    return it->second;
  };
  return env;
}

TEST(Interpolate, LeavesPlainTextAlone) {
  Interpolated out;
  std::string error;
  ASSERT_TRUE(interpolate("plain {payload.$id} $x {", fake_env({}), out, error));
  EXPECT_EQ(out.value, "plain {payload.$id} $x {");
  EXPECT_FALSE(out.substituted);
}

TEST(Interpolate, ReadsEnvironment) {
  Interpolated out;
  std::string error;
  ASSERT_TRUE(interpolate("Bearer ${env:TOKEN}!", fake_env({{"TOKEN", "t0k"}}), out, error));
  EXPECT_EQ(out.value, "Bearer t0k!");
  EXPECT_TRUE(out.substituted);
}

TEST(Interpolate, MissingEnvironmentVariableQuotesTheSource) {
  Interpolated out;
  std::string error;
  EXPECT_FALSE(interpolate("${env:NOPE}", fake_env({}), out, error));
  EXPECT_EQ(error, "environment variable NOPE is not set (needed by ${env:NOPE})");
}

TEST(Interpolate, ReadsFilesRelativeToTheConfigDirectory) {
  TempDir dir;
  dir.write("secret", "s3cret\n");
  dir.write("two-lines", "a\nb\n\n");
  Interpolated out;
  std::string error;
  ASSERT_TRUE(interpolate("${file:secret}", fake_env({}, dir.path()), out, error)) << error;
  EXPECT_EQ(out.value, "s3cret");  // one trailing newline removed
  ASSERT_TRUE(interpolate("${file:" + dir.path() + "/two-lines}", fake_env({}), out, error));
  EXPECT_EQ(out.value, "a\nb\n");  // only one
}

TEST(Interpolate, UnreadableFileIsAnError) {
  TempDir dir;
  Interpolated out;
  std::string error;
  EXPECT_FALSE(interpolate("${file:missing.txt}", fake_env({}, dir.path()), out, error));
  EXPECT_EQ(error, "cannot read the file of ${file:missing.txt}: No such file or directory");
}

TEST(Interpolate, ReadsCredentials) {
  TempDir dir;
  dir.write("session", "sess-value\n");
  Interpolated out;
  std::string error;
  ASSERT_TRUE(interpolate("${credential:session}",
                          fake_env({{"CREDENTIALS_DIRECTORY", dir.path()}}), out, error))
      << error;
  EXPECT_EQ(out.value, "sess-value");

  EXPECT_FALSE(interpolate("${credential:session}", fake_env({}), out, error));
  EXPECT_NE(error.find("CREDENTIALS_DIRECTORY is not set"), std::string::npos) << error;
  EXPECT_FALSE(interpolate("${credential:other}", fake_env({{"CREDENTIALS_DIRECTORY", dir.path()}}),
                           out, error));
  EXPECT_NE(error.find("${credential:other}"), std::string::npos) << error;
  EXPECT_FALSE(interpolate("${credential:../x}", fake_env({{"CREDENTIALS_DIRECTORY", dir.path()}}),
                           out, error));
}

TEST(Interpolate, SyntaxErrors) {
  Interpolated out;
  std::string error;
  EXPECT_FALSE(interpolate("${env:A", fake_env({}), out, error));
  EXPECT_NE(error.find("unterminated"), std::string::npos);
  EXPECT_FALSE(interpolate("${vault:x}", fake_env({}), out, error));
  EXPECT_NE(error.find("unknown interpolation \"vault\""), std::string::npos);
  EXPECT_FALSE(interpolate("${env:}", fake_env({}), out, error));
  EXPECT_FALSE(interpolate("${nothing}", fake_env({}), out, error));
}

TEST(Interpolate, DollarDollarEscapes) {
  Interpolated out;
  std::string error;
  ASSERT_TRUE(interpolate("$${env:A} ${env:A}", fake_env({{"A", "1"}}), out, error));
  EXPECT_EQ(out.value, "${env:A} 1");
}

TEST(Interpolate, UsesTheProcessEnvironmentByDefault) {
  ::setenv("SLUICE_TEST_INTERPOLATE", "from-process", 1);
  Interpolated out;
  std::string error;
  ASSERT_TRUE(interpolate("${env:SLUICE_TEST_INTERPOLATE}", InterpolationEnv{}, out, error));
  EXPECT_EQ(out.value, "from-process");
  ::unsetenv("SLUICE_TEST_INTERPOLATE");
}

}  // namespace
}  // namespace sluice::config
