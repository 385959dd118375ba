#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

#include "sinks/webhook/webhook_policy.hpp"
#include "sinks/webhook/webhook_sink.hpp"
#include "test_support.hpp"

namespace sluice::sinks {
namespace {

using namespace std::chrono_literals;
using namespace webhook;
using Scheme = WebhookSinkConfig::Signing::Scheme;
using Clock = std::chrono::system_clock;

// The vector published with the Standard Webhooks reference libraries
// (standard-webhooks/standard-webhooks, libraries/python/tests/test_webhooks.py,
// test_sign_function).
TEST(WebhookSigning, StandardPublishedVector) {
  const std::string key = standard_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  EXPECT_EQ(standard_signature(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330",
                               R"({"test": 2432232314})"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  // The same secret without the prefix is raw bytes, so the signature differs.
  EXPECT_NE(
      standard_signature(standard_key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
                         "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", R"({"test": 2432232314})"),
      "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  // A whsec_ value that is not base64 is used as written.
  EXPECT_EQ(standard_key("whsec_not base64!"), "whsec_not base64!");
}

// Expected value computed with Python: base64(hmac.new(b"secret",
// unquote(url).encode() + body, sha1).digest()).
TEST(WebhookSigning, AppwriteMatchesIndependentHmac) {
  EXPECT_EQ(appwrite_signature("secret", "http://example.com/hook?a=b%20c", R"({"x":1})"),
            "JrSV8Jcvay8egpGi6su9vUZMUf0=");
  EXPECT_EQ(raw_url_decode("a%20b+c%zz%4"), "a b+c%zz%4");
}

TEST(WebhookSigning, Base64RoundTrip) {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    const auto enc = base64_encode(s);
    ASSERT_EQ(base64_decode(enc), s) << enc;
  }
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_FALSE(base64_decode("Zm9v!").has_value());
}

TEST(WebhookClassify, StatusClasses) {
  const auto now = Clock::now();
  EXPECT_EQ(classify_status(200, "", now).outcome, Outcome::ok);
  EXPECT_EQ(classify_status(204, "", now).outcome, Outcome::ok);
  for (unsigned s : {408u, 429u, 500u, 502u, 503u, 599u}) {
    const auto r = classify_status(s, "", now);
    EXPECT_EQ(r.outcome, Outcome::retry) << s;
    EXPECT_EQ(r.reason, "http " + std::to_string(s));
    EXPECT_FALSE(r.retry_after.has_value());
  }
  for (unsigned s : {400u, 401u, 404u, 410u, 413u}) {
    const auto r = classify_status(s, "5", now);
    EXPECT_EQ(r.outcome, Outcome::failed) << s;
    EXPECT_EQ(r.reason, "http " + std::to_string(s));
    EXPECT_FALSE(r.retry_after.has_value());
  }
  const auto redirect = classify_status(302, "", now);
  EXPECT_EQ(redirect.outcome, Outcome::failed);
  EXPECT_EQ(redirect.reason, "redirect: http 302");
  EXPECT_EQ(classify_status(101, "", now).outcome, Outcome::failed);
  EXPECT_EQ(status_class(503), "5xx");
  EXPECT_EQ(status_class(204), "2xx");
  EXPECT_EQ(status_class(42), "other");
}

TEST(WebhookClassify, RetryAfter) {
  // Thu, 01 Jan 2026 00:00:00 GMT
  const auto now = Clock::from_time_t(1767225600);
  EXPECT_EQ(parse_retry_after("2", now), std::chrono::milliseconds{2000});
  EXPECT_EQ(parse_retry_after(" 120 ", now), std::chrono::milliseconds{120000});
  EXPECT_EQ(parse_retry_after("0", now), std::chrono::milliseconds{0});
  EXPECT_EQ(parse_retry_after("Thu, 01 Jan 2026 00:00:30 GMT", now),
            std::chrono::milliseconds{30000});
  EXPECT_EQ(parse_retry_after("Thursday, 01-Jan-26 00:01:00 GMT", now),
            std::chrono::milliseconds{60000});
  EXPECT_EQ(parse_retry_after("Thu Jan  1 00:00:05 2026", now), std::chrono::milliseconds{5000});
  EXPECT_EQ(parse_retry_after("Wed, 31 Dec 2025 23:00:00 GMT", now), std::chrono::milliseconds{0});
  EXPECT_FALSE(parse_retry_after("", now).has_value());
  EXPECT_FALSE(parse_retry_after("soon", now).has_value());
  EXPECT_FALSE(parse_retry_after("-1", now).has_value());
  EXPECT_EQ(classify_status(503, "2", now).retry_after, std::chrono::milliseconds{2000});
  EXPECT_EQ(classify_status(429, "Thu, 01 Jan 2026 00:00:10 GMT", now).retry_after,
            std::chrono::milliseconds{10000});
}

// A long wait is reported in full: the engine, not the sink, decides what a long wait means.
TEST(WebhookClassify, RetryAfterLongAndHostile) {
  using std::chrono::milliseconds;
  const auto now = Clock::from_time_t(1767225600);  // Thu, 01 Jan 2026 00:00:00 GMT
  const milliseconds max = kMaxRetryAfter;
  EXPECT_EQ(parse_retry_after("3600", now), milliseconds{3'600'000});
  EXPECT_EQ(parse_retry_after("86400", now), milliseconds{86'400'000});
  EXPECT_EQ(parse_retry_after("31536000", now), milliseconds{31'536'000'000});  // a year
  EXPECT_EQ(parse_retry_after("0000000000005", now), milliseconds{5000});       // leading zeros
  EXPECT_EQ(parse_retry_after("3153600000", now), max);                         // exactly the limit
  EXPECT_EQ(parse_retry_after("99999999999999999999999999999999", now), max);
  // HTTP dates: an hour and two days ahead, in each form; in the past; centuries ahead.
  EXPECT_EQ(parse_retry_after("Thu, 01 Jan 2026 01:00:00 GMT", now), milliseconds{3'600'000});
  EXPECT_EQ(parse_retry_after("Saturday, 03-Jan-26 00:00:00 GMT", now), milliseconds{172'800'000});
  EXPECT_EQ(parse_retry_after("Sat Jan  3 00:00:00 2026", now), milliseconds{172'800'000});
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), milliseconds{0});
  EXPECT_EQ(parse_retry_after("Mon, 01 Jan 0001 00:00:00 GMT", now), milliseconds{0});
  EXPECT_EQ(parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now), max);
  // A sub-second clock: the delay to a whole-second date rounds up, never down to "now".
  EXPECT_EQ(parse_retry_after("Thu, 01 Jan 2026 00:00:01 GMT", now + milliseconds{250}),
            milliseconds{750});
  for (std::string_view garbage :
       {"1.5", "+5", "5s", "1e3", "0x10", "five", "Thu, 01 Jan 2026 00:00:00 PST",
        "Thu, 32 Jan 2026 00:00:00 GMT", "Thu, 01 Jan 2026 00:00:00 GMT junk", "2026-01-01"}) {
    EXPECT_FALSE(parse_retry_after(garbage, now).has_value()) << garbage;
  }
  EXPECT_EQ(classify_status(503, "3600", now).retry_after, milliseconds{3'600'000});
  EXPECT_EQ(classify_status(429, "Fri, 02 Jan 2026 00:00:00 GMT", now).retry_after,
            milliseconds{86'400'000});
  EXPECT_FALSE(classify_status(503, "garbage", now).retry_after.has_value());
}

TEST(WebhookExchange, InterimAnswers) {
  for (unsigned s : {100u, 102u, 103u, 199u})
    EXPECT_TRUE(is_interim(s)) << s;
  // 101 answers an upgrade the sink never asks for: final, and classified as a failure.
  EXPECT_FALSE(is_interim(101));
  EXPECT_EQ(classify_status(101, "", Clock::now()).outcome, Outcome::failed);
  for (unsigned s : {99u, 200u, 204u, 307u, 500u})
    EXPECT_FALSE(is_interim(s)) << s;
}

TEST(WebhookExchange, ConnectionReuse) {
  EXPECT_TRUE(reusable(200, true, true, 0));
  EXPECT_TRUE(reusable(503, true, true, 0));
  EXPECT_FALSE(reusable(200, false, true, 0));  // Connection: close
  EXPECT_FALSE(reusable(200, true, false, 0));  // body over the limit: not read to its end
  EXPECT_FALSE(reusable(200, true, true, 1));   // an unsolicited byte after the answer
  EXPECT_FALSE(reusable(101, true, true, 0));   // the connection speaks another protocol now
}

TEST(WebhookRedirect, Origins) {
  const auto at = [](std::string_view url) { return *net::parse_endpoint(url); };
  EXPECT_TRUE(
      same_origin(at("https://Hooks.Example.com/a"), at("https://hooks.example.com:443/b")));
  EXPECT_FALSE(same_origin(at("http://hooks.example.com/"), at("https://hooks.example.com/")));
  EXPECT_FALSE(same_origin(at("http://127.0.0.1:80/"), at("http://127.0.0.1:81/")));
  EXPECT_FALSE(same_origin(at("http://127.0.0.1/"), at("http://localhost/")));

  EXPECT_FALSE(refuse_redirect(at("http://a/"), at("https://b/")).has_value());
  EXPECT_FALSE(refuse_redirect(at("http://a/"), at("http://b/")).has_value());
  EXPECT_FALSE(refuse_redirect(at("https://a/"), at("https://b:8443/")).has_value());
  const auto refused = refuse_redirect(at("https://a/x"), at("http://b:8080/y?token=t"));
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(*refused, "redirect: refused, from https to plain http (http://b:8080)");
}

TEST(WebhookRedirect, OtherOriginGetsNoCredentials) {
  boost::beast::http::fields fields;
  fields.set("Authorization", "Bearer t");
  fields.set("x-static", "yes");
  fields.set("webhook-id", "msg_1");
  fields.set("webhook-timestamp", "1614265330");
  fields.set("webhook-signature", "v1,abc");
  fields.set("X-Appwrite-Webhook-Signature", "abc");
  fields.set("Content-Type", "application/json");
  const std::vector<std::string_view> configured{"authorization", "X-Static"};
  drop_for_other_origin(fields, configured);
  for (std::string_view gone :
       {"Authorization", "X-Static", "webhook-signature", "X-Appwrite-Webhook-Signature"})
    EXPECT_TRUE(fields.find(gone) == fields.end()) << gone;
  EXPECT_EQ(fields["webhook-id"], "msg_1");
  EXPECT_EQ(fields["webhook-timestamp"], "1614265330");
  EXPECT_EQ(fields["Content-Type"], "application/json");
}

TEST(WebhookBody, SingleAndArray) {
  std::vector<std::string_view> recs{R"({"a":1})", R"({"b":2})"};
  EXPECT_EQ(make_body(std::span(recs).first(1), false), R"({"a":1})");
  EXPECT_EQ(make_body(recs, true), R"([{"a":1},{"b":2}])");
  EXPECT_EQ(make_body(std::span(recs).first(1), true), R"([{"a":1}])");
  std::vector<std::string_view> ids{"aa", "bb"};
  EXPECT_EQ(batch_id(std::span(ids).first(1)), "aa");
  EXPECT_EQ(batch_id(ids), batch_id(ids));
  std::vector<std::string_view> other{"bb", "aa"};
  EXPECT_NE(batch_id(ids), batch_id(other));
  EXPECT_TRUE(batch_id(ids).starts_with("batch_"));
}

class WebhookRequest : public ::testing::Test {
 protected:
  std::unique_ptr<WebhookSink> make(WebhookSinkConfig c) {
    std::string error;
    WebhookSinkOptions options;
    options.now = [] { return Clock::from_time_t(1614265330); };
    auto sink = WebhookSink::create(io_.get_executor(), std::move(c), "audit", "shop", error,
                                    std::move(options));
    EXPECT_TRUE(sink) << error;
    return sink;
  }
  static Template header(std::string_view source) {
    Template t;
    Template::Error e;
    EXPECT_TRUE(Template::parse(source, false, t, e)) << e.message;
    return t;
  }
  boost::asio::io_context io_;
};

TEST_F(WebhookRequest, StandardSingle) {
  WebhookSinkConfig c;
  c.url = "http://hooks.example.com:8080/in?x=1";
  c.signing = {Scheme::standard, config::Secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")};
  c.headers["X-Static"] = header("yes");
  c.headers["X-Order"] = header("{payload.$id}-{route}");
  c.concurrency = 3;
  auto sink = make(c);
  ASSERT_TRUE(sink);
  EXPECT_EQ(sink->max_batch(), 3u);
  const Record rec = test::make_record(R"({"$id":"o1","total":5})", "paid");
  const auto req = sink->build_request(std::span(&rec, 1));
  EXPECT_EQ(req.method(), boost::beast::http::verb::post);
  EXPECT_EQ(req.target(), "/in?x=1");
  EXPECT_EQ(req[boost::beast::http::field::host], "hooks.example.com:8080");
  EXPECT_EQ(req[boost::beast::http::field::content_type], "application/json");
  EXPECT_EQ(req.body(), rec.event->data);
  EXPECT_EQ(req["X-Static"], "yes");
  EXPECT_EQ(req["X-Order"], "o1-paid");
  EXPECT_EQ(req["webhook-id"], rec.event->id);
  EXPECT_EQ(req["webhook-timestamp"], "1614265330");
  EXPECT_EQ(req["webhook-signature"],
            standard_signature(standard_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
                               rec.event->id, "1614265330", rec.event->data));
  EXPECT_TRUE(req.keep_alive());
}

TEST_F(WebhookRequest, StandardBatchIsAnArray) {
  WebhookSinkConfig c;
  c.url = "https://hooks.example.com/";
  c.signing = {Scheme::standard, config::Secret("raw-secret")};
  c.concurrency = 2;
  c.batch.max_events = 10;
  auto sink = make(c);
  ASSERT_TRUE(sink);
  EXPECT_EQ(sink->max_batch(), 20u);
  std::vector<Record> recs{test::make_record(R"({"$id":"a"})"),
                           test::make_record(R"({"$id":"b"})")};
  const auto req = sink->build_request(recs);
  EXPECT_EQ(req[boost::beast::http::field::host], "hooks.example.com");
  EXPECT_EQ(req.body(),
            "[" + std::string(recs[0].event->data) + "," + std::string(recs[1].event->data) + "]");
  std::vector<std::string_view> ids{recs[0].event->id, recs[1].event->id};
  EXPECT_EQ(req["webhook-id"], batch_id(ids));
  EXPECT_EQ(req["webhook-signature"],
            standard_signature("raw-secret", batch_id(ids), "1614265330", req.body()));
}

TEST_F(WebhookRequest, AppwriteScheme) {
  WebhookSinkConfig c;
  c.url = "http://127.0.0.1:9/hook%20x";
  c.signing = {Scheme::appwrite, config::Secret("secret")};
  c.batch.max_events = 10;  // ignored: Appwrite sends one payload per request
  c.concurrency = 4;
  auto sink = make(c);
  ASSERT_TRUE(sink);
  EXPECT_EQ(sink->max_batch(), 4u);
  const Record rec = test::make_record(R"({"$id":"o1"})");
  const auto req = sink->build_request(std::span(&rec, 1));
  EXPECT_EQ(req.body(), R"({"$id":"o1"})");
  EXPECT_EQ(req["X-Appwrite-Webhook-Events"], "databases.db.tables.t.rows.r.create");
  EXPECT_EQ(req["X-Appwrite-Webhook-Name"], "audit");
  EXPECT_EQ(req["X-Appwrite-Webhook-Id"], "audit");
  EXPECT_EQ(req["X-Appwrite-Webhook-Project-Id"], "shop");
  EXPECT_TRUE(req.find("X-Appwrite-Webhook-User-Id") != req.end());
  EXPECT_EQ(req["X-Appwrite-Webhook-Signature"],
            appwrite_signature("secret", "http://127.0.0.1:9/hook x", R"({"$id":"o1"})"));
  EXPECT_TRUE(req[boost::beast::http::field::user_agent].starts_with("Appwrite-Server v"));
  EXPECT_TRUE(req.find("webhook-signature") == req.end());
}

TEST_F(WebhookRequest, BadTlsFilesAreReported) {
  WebhookSinkConfig c;
  c.url = "https://hooks.example.com/";
  c.tls.ca_file = "/nonexistent/ca.pem";
  std::string error;
  EXPECT_FALSE(WebhookSink::create(io_.get_executor(), c, "audit", "shop", error));
  EXPECT_NE(error.find("CA"), std::string::npos) << error;
}

}  // namespace
}  // namespace sluice::sinks
