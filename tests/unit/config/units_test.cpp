#include "config/units.hpp"

#include <gtest/gtest.h>

namespace sluice::config {
namespace {

using std::chrono::milliseconds;

TEST(Duration, ParsesEveryUnit) {
  std::string error;
  EXPECT_EQ(parse_duration("500ms", error), milliseconds(500));
  EXPECT_EQ(parse_duration("20s", error), milliseconds(20000));
  EXPECT_EQ(parse_duration("5m", error), milliseconds(300000));
  EXPECT_EQ(parse_duration("1h", error), milliseconds(3600000));
  EXPECT_EQ(parse_duration("2d", error), milliseconds(2 * 86400000LL));
  EXPECT_EQ(parse_duration("0s", error), milliseconds(0));
}

TEST(Duration, RequiresAUnit) {
  std::string error;
  EXPECT_FALSE(parse_duration("20", error));
  EXPECT_NE(error.find("a unit is required"), std::string::npos) << error;
}

TEST(Duration, RejectsMalformedText) {
  for (const char* text : {"", "s", "-1s", "1.5s", "10 s", "10sec", "1h30m", "ms"}) {
    std::string error;
    EXPECT_FALSE(parse_duration(text, error)) << text;
    EXPECT_NE(error.find("500ms"), std::string::npos) << text << ": " << error;
  }
}

TEST(Duration, FractionsAreExplained) {
  std::string error;
  EXPECT_FALSE(parse_duration("1.5s", error));
  EXPECT_NE(error.find("fractions are not allowed"), std::string::npos) << error;
  EXPECT_FALSE(parse_size("1.5GiB", error));
  EXPECT_NE(error.find("fractions are not allowed"), std::string::npos) << error;
}

TEST(Duration, RejectsOverflow) {
  std::string error;
  EXPECT_FALSE(parse_duration("99999999999999999999ms", error));
  EXPECT_FALSE(parse_duration("9999999999999999d", error));
  EXPECT_EQ(error, "duration is too large");
}

TEST(Size, ParsesBinaryDecimalAndPlain) {
  std::string error;
  EXPECT_EQ(parse_size("512B", error), 512u);
  EXPECT_EQ(parse_size("64KiB", error), 64u * 1024);
  EXPECT_EQ(parse_size("100MiB", error), 100ull << 20);
  EXPECT_EQ(parse_size("1GiB", error), 1ull << 30);
  EXPECT_EQ(parse_size("2TiB", error), 2ull << 40);
  EXPECT_EQ(parse_size("64KB", error), 64000u);
  EXPECT_EQ(parse_size("100MB", error), 100000000u);
  EXPECT_EQ(parse_size("1GB", error), 1000000000u);
  EXPECT_EQ(parse_size("12345", error), 12345u);
  EXPECT_EQ(parse_size("0", error), 0u);
}

TEST(Size, RejectsUnknownUnitsAndOverflow) {
  for (const char* text : {"", "KiB", "10kb", "10 MiB", "1.5GiB", "-1", "10Mi", "7PiB"}) {
    std::string error;
    EXPECT_FALSE(parse_size(text, error)) << text;
    EXPECT_NE(error.find("64KiB"), std::string::npos) << text << ": " << error;
  }
  std::string error;
  EXPECT_FALSE(parse_size("99999999999TiB", error));
  EXPECT_EQ(error, "size is too large");
}

TEST(HostPort, ParsesIpv4NamesAndBracketedIpv6) {
  std::string error;
  auto a = parse_host_port("127.0.0.1:9477", error);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 9477);
  auto b = parse_host_port("[::1]:0", error);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(b->port, 0);
  auto c = parse_host_port("localhost:65535", error);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->host, "localhost");
}

TEST(HostPort, RejectsBadForms) {
  for (const char* text : {"", "9477", ":9477", "host:", "host:65536", "host:x", "::1:9477",
                           "[::1]", "[]:1", "[::1]9"}) {
    std::string error;
    EXPECT_FALSE(parse_host_port(text, error)) << text;
    EXPECT_FALSE(error.empty());
  }
  std::string error;
  parse_host_port("::1:9477", error);
  EXPECT_NE(error.find("brackets"), std::string::npos);
}

}  // namespace
}  // namespace sluice::config
