#include "net/proxy.hpp"

#include <gtest/gtest.h>

namespace sluice::net {
namespace {

Endpoint target(std::string host, std::string port = "443", bool secure = true) {
  return Endpoint{secure, std::move(host), std::move(port), ""};
}

TEST(ParseProxy, TakesHostPortAndCredentials) {
  std::string error;
  auto p = parse_proxy("http://us%40er:p%3Ass@proxy.corp:3128/", error);
  ASSERT_TRUE(p) << error;
  EXPECT_EQ(p->endpoint.host, "proxy.corp");
  EXPECT_EQ(p->endpoint.port, "3128");
  EXPECT_FALSE(p->endpoint.secure);
  // base64("us@er:p:ss"): user info is percent-decoded before it is encoded.
  EXPECT_EQ(p->authorization, "Basic dXNAZXI6cDpzcw==");
  EXPECT_EQ(p->shown, "http://proxy.corp:3128");  // never the user info
}

TEST(ParseProxy, DefaultsAndBareHostPort) {
  std::string error;
  auto p = parse_proxy("proxy.corp:8080", error);
  ASSERT_TRUE(p) << error;
  EXPECT_EQ(p->endpoint.port, "8080");
  EXPECT_TRUE(p->authorization.empty());
  p = parse_proxy("HTTP://[::1]", error);
  ASSERT_TRUE(p) << error;
  EXPECT_EQ(p->endpoint.host, "::1");
  EXPECT_EQ(p->endpoint.port, "80");
  EXPECT_EQ(p->shown, "http://[::1]:80");
}

TEST(ParseProxy, RefusesWhatItCannotUseWithoutQuotingIt) {
  for (const char* bad : {"https://user:secret@proxy:443", "socks5://user:secret@proxy:1080",
                          "http://user:secret@proxy:3128/path", "http://user:secret@:3128",
                          "http://user:secret@proxy:99999", "http://user:secret@proxy:3128?x"}) {
    std::string error;
    EXPECT_FALSE(parse_proxy(bad, error)) << bad;
    EXPECT_FALSE(error.empty()) << bad;
    EXPECT_EQ(error.find("secret"), std::string::npos) << error;
  }
}

TEST(NoProxy, NamesCoverThemselvesAndTheirSubdomains) {
  EXPECT_TRUE(no_proxy_exempts("example.com", target("example.com")));
  EXPECT_TRUE(no_proxy_exempts("example.com", target("API.Example.com")));
  EXPECT_TRUE(no_proxy_exempts(" .example.com ", target("api.example.com")));
  EXPECT_FALSE(no_proxy_exempts("example.com", target("badexample.com")));
  EXPECT_FALSE(no_proxy_exempts("api.example.com", target("example.com")));
  EXPECT_TRUE(no_proxy_exempts("other.org, ,example.com", target("example.com")));
  EXPECT_TRUE(no_proxy_exempts("*", target("anything.net")));
  EXPECT_FALSE(no_proxy_exempts("", target("example.com")));
}

TEST(NoProxy, PortsAddressesAndBlocks) {
  EXPECT_TRUE(no_proxy_exempts("example.com:443", target("example.com", "443")));
  EXPECT_FALSE(no_proxy_exempts("example.com:8443", target("example.com", "443")));
  EXPECT_TRUE(no_proxy_exempts("127.0.0.1", target("127.0.0.1")));
  EXPECT_FALSE(no_proxy_exempts("127.0.0.1", target("127.0.0.2")));
  EXPECT_TRUE(no_proxy_exempts("10.0.0.0/8", target("10.20.30.40")));
  EXPECT_FALSE(no_proxy_exempts("10.0.0.0/8", target("11.0.0.1")));
  EXPECT_TRUE(no_proxy_exempts("fd00::/8", target("fd12::1")));
  EXPECT_TRUE(no_proxy_exempts("[::1]:443", target("::1", "443")));
  EXPECT_TRUE(no_proxy_exempts("::1", target("::1")));
  // A name never matches an address, nor a block a name.
  EXPECT_FALSE(no_proxy_exempts("localhost", target("127.0.0.1")));
  EXPECT_FALSE(no_proxy_exempts("10.0.0.0/8", target("ten.example")));
}

TEST(ProxyChoice, EnvironmentPicksBySchemeAndHonoursNoProxy) {
  std::string error;
  const ProxyEnvironment env{"http://secure-proxy:3128", "http://plain-proxy:3128",
                             "internal.corp"};
  auto choice = ProxyChoice::make("", env, error);
  ASSERT_TRUE(choice) << error;
  ASSERT_NE(choice->for_target(target("hooks.example")), nullptr);
  EXPECT_EQ(choice->for_target(target("hooks.example"))->endpoint.host, "secure-proxy");
  ASSERT_NE(choice->for_target(target("hooks.example", "80", false)), nullptr);
  EXPECT_EQ(choice->for_target(target("hooks.example", "80", false))->endpoint.host, "plain-proxy");
  EXPECT_EQ(choice->for_target(target("a.internal.corp")), nullptr);
  // Only HTTPS_PROXY set: http targets connect directly.
  choice = ProxyChoice::make("", ProxyEnvironment{"secure-proxy:3128", "", ""}, error);
  ASSERT_TRUE(choice) << error;
  EXPECT_EQ(choice->for_target(target("hooks.example", "80", false)), nullptr);
}

TEST(ProxyChoice, TheKeyWinsOverTheEnvironment) {
  std::string error;
  const ProxyEnvironment env{"http://env-proxy:3128", "http://env-proxy:3128", ""};
  auto none = ProxyChoice::make("none", env, error);
  ASSERT_TRUE(none) << error;
  EXPECT_EQ(none->for_target(target("hooks.example")), nullptr);
  auto fixed = ProxyChoice::make("http://mine:8080", ProxyEnvironment{"", "", "*"}, error);
  ASSERT_TRUE(fixed) << error;
  ASSERT_NE(fixed->for_target(target("hooks.example")), nullptr);
  EXPECT_EQ(fixed->for_target(target("hooks.example"))->endpoint.host, "mine");
}

TEST(ProxyChoice, ABadEnvironmentVariableIsNamedNotQuoted) {
  std::string error;
  EXPECT_FALSE(ProxyChoice::make("", ProxyEnvironment{"https://u:hunter2@p:1", "", ""}, error));
  EXPECT_NE(error.find("HTTPS_PROXY"), std::string::npos) << error;
  EXPECT_EQ(error.find("hunter2"), std::string::npos) << error;
  // Unused when the key decides.
  EXPECT_TRUE(ProxyChoice::make("none", ProxyEnvironment{"https://u:hunter2@p:1", "", ""}, error));
}

}  // namespace
}  // namespace sluice::net
