#include "daemon/upstream/decoder.hpp"

#include <gtest/gtest.h>

#include <string>

#include "core/json.hpp"

namespace sluice::upstream {
namespace {

using namespace std::chrono;

const steady_clock::time_point kReceived = steady_clock::time_point{} + hours{5};
const system_clock::time_point kWall = sys_days{year{2030} / 1 / 2} + hours{3};

DecodedFrame decode(FrameDecoder& d, std::string text, bool binary = false) {
  return d.decode(std::move(text), binary, kReceived, kWall);
}

sys_time<milliseconds> utc(int y, unsigned mo, unsigned d, int h, int mi, int s, int ms = 0) {
  return sys_days{year{y} / month{mo} / day{d}} + hours{h} + minutes{mi} + seconds{s} +
         milliseconds{ms};
}

std::vector<std::string> strings(const std::vector<std::string_view>& views) {
  return {views.begin(), views.end()};
}

TEST(Decoder, ConnectedUrlModeWithSubscriptionArray) {
  FrameDecoder d{"p"};
  const auto r = decode(d, R"({"type":"connected","data":{"channels":["documents","account",)"
                           R"("account.U1"],"subscriptions":["s0","s1"],"user":{"$id":"U1"}}})");
  ASSERT_EQ(r.kind, FrameKind::connected);
  EXPECT_EQ(r.connected.channels, (std::vector<std::string>{"documents", "account", "account.U1"}));
  ASSERT_EQ(r.connected.subscriptions.size(), 2u);
  EXPECT_EQ(r.connected.subscriptions[0].slot, "0");
  EXPECT_EQ(r.connected.subscriptions[0].id, "s0");
  EXPECT_EQ(r.connected.subscriptions[1].slot, "1");
  EXPECT_EQ(r.connected.subscriptions[1].id, "s1");
  EXPECT_TRUE(r.connected.authenticated);
  EXPECT_EQ(r.event, nullptr);
}

TEST(Decoder, ConnectedWithSubscriptionObjectKeyedBySlot) {
  FrameDecoder d{"p"};
  const auto r = decode(d, R"({"type":"connected","data":{"channels":["rows"],)"
                           R"("subscriptions":{"1":"a","3":"b"},"user":null}})");
  ASSERT_EQ(r.kind, FrameKind::connected);
  ASSERT_EQ(r.connected.subscriptions.size(), 2u);
  EXPECT_EQ(r.connected.subscriptions[0].slot, "1");
  EXPECT_EQ(r.connected.subscriptions[0].id, "a");
  EXPECT_EQ(r.connected.subscriptions[1].slot, "3");
  EXPECT_EQ(r.connected.subscriptions[1].id, "b");
  EXPECT_FALSE(r.connected.authenticated);
}

TEST(Decoder, ConnectedProfile18AndMessageMode) {
  FrameDecoder d{"p"};
  // 1.8.x: no subscriptions key.
  auto r = decode(d, R"({"type":"connected","data":{"channels":["rows"],"user":null}})");
  ASSERT_EQ(r.kind, FrameKind::connected);
  EXPECT_EQ(r.connected.channels, std::vector<std::string>{"rows"});
  EXPECT_TRUE(r.connected.subscriptions.empty());
  // ≥1.9.5 message mode.
  r = decode(d, R"({"type":"connected","data":{"channels":[],"subscriptions":[],"user":null}})");
  ASSERT_EQ(r.kind, FrameKind::connected);
  EXPECT_TRUE(r.connected.channels.empty());
  EXPECT_TRUE(r.connected.subscriptions.empty());
  // Wrong shapes.
  EXPECT_EQ(decode(d, R"({"type":"connected","data":{"channels":"rows"}})").invalid_reason,
            "fields");
  EXPECT_EQ(decode(d, R"({"type":"connected","data":{"subscriptions":[1]}})").invalid_reason,
            "fields");
  EXPECT_EQ(decode(d, R"({"type":"connected"})").invalid_reason, "fields");
}

TEST(Decoder, ResponseSubscribeAndUnsubscribe) {
  FrameDecoder d{"p"};
  auto r = decode(d, R"({"type":"response","data":{"to":"subscribe","success":true,)"
                     R"("subscriptions":[{"subscriptionId":"a1","channels":["rows"],"queries":[]},)"
                     R"({"subscriptionId":"b2","channels":["files"],"queries":[)"
                     R"("{\"method\":\"select\",\"values\":[\"*\"]}"]}]}})");
  ASSERT_EQ(r.kind, FrameKind::response);
  EXPECT_EQ(r.response.to, "subscribe");
  EXPECT_TRUE(r.response.success);
  EXPECT_EQ(r.response.subscription_ids, (std::vector<std::string>{"a1", "b2"}));

  r = decode(d, R"({"type":"response","data":{"to":"unsubscribe","success":true,)"
                R"("subscriptions":[{"subscriptionId":"a1","removed":false}]}})");
  ASSERT_EQ(r.kind, FrameKind::response);
  EXPECT_EQ(r.response.to, "unsubscribe");
  EXPECT_EQ(r.response.subscription_ids, std::vector<std::string>{"a1"});

  r = decode(d, R"({"type":"response","data":{"to":"authentication","success":false,"user":{}}})");
  ASSERT_EQ(r.kind, FrameKind::response);
  EXPECT_FALSE(r.response.success);

  EXPECT_EQ(decode(d, R"({"type":"response","data":{"success":true}})").invalid_reason, "fields");
  EXPECT_EQ(decode(d, R"({"type":"response","data":{"to":"x","success":"yes"}})").invalid_reason,
            "fields");
}

TEST(Decoder, PongWithoutDataAndError) {
  FrameDecoder d{"p"};
  EXPECT_EQ(decode(d, R"({"type":"pong"})").kind, FrameKind::pong);
  EXPECT_EQ(decode(d, " {\"type\" : \"pong\"}\n").kind, FrameKind::pong);

  auto r = decode(d, R"({"type":"error","data":{"code":1008,"message":"Missing channels"}})");
  ASSERT_EQ(r.kind, FrameKind::error);
  EXPECT_EQ(r.error.code, 1008);
  EXPECT_EQ(r.error.message, "Missing channels");
  r = decode(d, R"({"type":"error","data":{"code":1003}})");
  ASSERT_EQ(r.kind, FrameKind::error);
  EXPECT_EQ(r.error.message, "");
  EXPECT_EQ(decode(d, R"({"type":"error","data":{"code":"1008"}})").invalid_reason, "fields");
  EXPECT_EQ(decode(d, R"({"type":"error","data":{"code":1.5}})").invalid_reason, "fields");
}

const std::string kEventData =
    R"({"events":["databases.db.collections.c.documents.r.update","databases.*"],)"
    R"( "channels" : ["documents", "databases.db.collections.c.documents"],)"
    R"("timestamp":"2026-08-21T12:00:00.123+00:00",)"
    "\n  \"payload\": {\"$id\":\"r\", \"total\" : 120, \"note\":\"a\\\"b\"}\n ,"
    R"("subscriptions":["sub1"]})";

TEST(Decoder, EventFillsEveryField) {
  FrameDecoder d{"p"};
  const std::string frame = R"({"type":"event","data":)" + kEventData + "}";
  const auto r = decode(d, frame);
  ASSERT_EQ(r.kind, FrameKind::event) << r.invalid_reason;
  ASSERT_NE(r.event, nullptr);
  const Event& e = *r.event;
  EXPECT_EQ(e.frame, frame);
  EXPECT_GE(e.frame.capacity(), e.frame.size() + kJsonPadding);
  // Byte for byte, whitespace included, and pointing into the frame.
  EXPECT_EQ(e.data, kEventData);
  EXPECT_EQ(e.data.data(), e.frame.data() + frame.find(kEventData));
  EXPECT_EQ(e.payload, R"({"$id":"r", "total" : 120, "note":"a\"b"})");
  // Whitespace after the objects is not theirs.
  const auto spaced = decode(d, R"({"type":"event","data":)" + kEventData + " \n\t}");
  ASSERT_EQ(spaced.kind, FrameKind::event);
  EXPECT_EQ(spaced.event->data, kEventData);
  EXPECT_GE(e.readable_after(e.payload), e.payload.size() + kJsonPadding);
  EXPECT_EQ(
      strings(e.events),
      (std::vector<std::string>{"databases.db.collections.c.documents.r.update", "databases.*"}));
  EXPECT_EQ(e.first_event(), "databases.db.collections.c.documents.r.update");
  EXPECT_EQ(strings(e.channels),
            (std::vector<std::string>{"documents", "databases.db.collections.c.documents"}));
  EXPECT_EQ(strings(e.subscriptions), std::vector<std::string>{"sub1"});
  EXPECT_EQ(e.timestamp_text, "2026-08-21T12:00:00.123+00:00");
  EXPECT_EQ(e.timestamp, utc(2026, 8, 21, 12, 0, 0, 123));
  EXPECT_FALSE(r.timestamp_fallback);
  EXPECT_EQ(e.id, make_event_id(kEventData));
  EXPECT_EQ(e.id.size(), 32u);
  EXPECT_EQ(e.received, kReceived);
  // The payload can be read in place.
  const JsonValue total =
      json_lookup({e.payload.data(), e.payload.size(), e.readable_after(e.payload)}, "total");
  EXPECT_EQ(total.text, "120");
}

TEST(Decoder, EventWithoutSubscriptionsAndDataFirst) {
  FrameDecoder d{"p"};
  const std::string data = R"({"events":["buckets.b.files.f.create"],"channels":["files"],)"
                           R"("timestamp":"2023-01-19 18:30:04.051","payload":{}})";
  const auto r = decode(d, R"({"data":)" + data + R"(,"type":"event"})");
  ASSERT_EQ(r.kind, FrameKind::event) << r.invalid_reason;
  EXPECT_TRUE(r.event->subscriptions.empty());
  EXPECT_EQ(r.event->data, data);
  EXPECT_EQ(r.event->payload, "{}");
  EXPECT_EQ(r.event->timestamp, utc(2023, 1, 19, 18, 30, 4, 51));
}

TEST(Decoder, EscapedStringsAreUnescaped) {
  FrameDecoder d{"p"};
  const auto r = decode(
      d, R"({"type":"event","data":{"events":["a\/b.\u00e9\n"],"channels":["c\"h"],)"
         R"("timestamp":"2026-08-21T12:00:00\u002e5Z","payload":{},"subscriptions":["\u0073"]}})");
  ASSERT_EQ(r.kind, FrameKind::event) << r.invalid_reason;
  EXPECT_EQ(r.event->events[0], "a/b.\xc3\xa9\n");
  EXPECT_EQ(r.event->channels[0], "c\"h");
  EXPECT_EQ(r.event->subscriptions[0], "s");
  EXPECT_EQ(r.event->timestamp_text, "2026-08-21T12:00:00.5Z");
  EXPECT_EQ(r.event->timestamp, utc(2026, 8, 21, 12, 0, 0, 500));
}

// Strings without escapes are used in place (views into the frame); escaped ones are
// unescaped into Event::strings. Both must read the same, whitespace around tokens included.
TEST(Decoder, PlainStringsPointIntoTheFrameAndEscapedOnesAreCopied) {
  FrameDecoder d{"p"};
  const auto r =
      decode(d,
             "{\"type\":\"event\",\"data\":{\"events\":[ \"a.b\" ,\n\"c\\\\d\",\"\xc3\xa9\" ],"
             "\"channels\":[\"x\\u0041\" , \"rows\"],\"timestamp\" : \"2026-08-21T12:00:00Z\" ,"
             "\"payload\":{\"s\":\"\\\"q\\\"\",\"t\":\"plain\"},\"subscriptions\":[\"s1\"]}}");
  ASSERT_EQ(r.kind, FrameKind::event) << r.invalid_reason;
  const Event& e = *r.event;
  EXPECT_EQ(strings(e.events), (std::vector<std::string>{"a.b", "c\\d", "\xc3\xa9"}));
  EXPECT_EQ(strings(e.channels), (std::vector<std::string>{"xA", "rows"}));
  EXPECT_EQ(strings(e.subscriptions), (std::vector<std::string>{"s1"}));
  EXPECT_EQ(e.timestamp_text, "2026-08-21T12:00:00Z");
  EXPECT_EQ(e.timestamp, utc(2026, 8, 21, 12, 0, 0));
  const auto in = [](std::string_view view, const std::string& owner) {
    return view.data() >= owner.data() && view.data() + view.size() <= owner.data() + owner.size();
  };
  EXPECT_TRUE(in(e.events[0], e.frame));
  EXPECT_TRUE(in(e.events[1], e.strings));
  EXPECT_TRUE(in(e.events[2], e.frame));
  EXPECT_TRUE(in(e.channels[0], e.strings));
  EXPECT_TRUE(in(e.channels[1], e.frame));
  EXPECT_TRUE(in(e.timestamp_text, e.frame));
  EXPECT_EQ(e.strings, "c\\dxA");
}

// The in-place path relies on iterate() rejecting raw control characters anywhere in a string.
TEST(Decoder, RawControlCharactersInStringsAreJson) {
  FrameDecoder d{"p"};
  for (const std::string& data :
       {std::string("{\"events\":[\"a\tb\"],\"channels\":[\"c\"],\"payload\":{}}"),
        std::string("{\"events\":[\"e\"],\"channels\":[\"c\x01\"],\"payload\":{}}"),
        std::string("{\"events\":[\"e\"],\"channels\":[\"c\"],\"payload\":{\"n\":\"x\ny\"}}"),
        std::string(
            "{\"events\":[\"e\"],\"channels\":[\"c\"],\"payload\":{},\"timestamp\":\"\x1f\"}"),
        std::string("{\"events\":[\"e\"],\"channels\":[\"c\"],\"payload\":{},\"x\":\"\x1b\"}")}) {
    const auto r = decode(d, "{\"type\":\"event\",\"data\":" + data + "}");
    EXPECT_EQ(r.kind, FrameKind::invalid) << data;
    EXPECT_EQ(r.invalid_reason, "json") << data;
  }
}

TEST(Decoder, IntegerAndMissingTimestamps) {
  FrameDecoder d{"p"};
  auto r = decode(d, R"({"type":"event","data":{"events":[],"channels":["c"],)"
                     R"("timestamp":1674152404 ,"payload":{}}})");
  ASSERT_EQ(r.kind, FrameKind::event) << r.invalid_reason;
  EXPECT_EQ(r.event->timestamp, utc(2023, 1, 19, 18, 20, 4));
  EXPECT_EQ(r.event->timestamp_text, "1674152404");
  EXPECT_FALSE(r.timestamp_fallback);

  for (const char* ts : {R"(,"timestamp":"yesterday")", R"(,"timestamp":{"x":1})", ""}) {
    r = decode(d, std::string(R"({"type":"event","data":{"events":["e"],"channels":["c"],)") +
                      R"("payload":{})" + ts + "}}");
    ASSERT_EQ(r.kind, FrameKind::event) << ts;
    EXPECT_TRUE(r.timestamp_fallback);
    EXPECT_EQ(r.event->timestamp, time_point_cast<milliseconds>(kWall));
  }
}

TEST(Decoder, TimestampFormats) {
  EXPECT_EQ(parse_timestamp("2026-08-21T12:00:00.123+00:00"), utc(2026, 8, 21, 12, 0, 0, 123));
  EXPECT_EQ(parse_timestamp("2026-08-21T12:00:00.123+02:00"), utc(2026, 8, 21, 10, 0, 0, 123));
  EXPECT_EQ(parse_timestamp("2026-08-21T12:00:00-05:30"), utc(2026, 8, 21, 17, 30, 0));
  EXPECT_EQ(parse_timestamp("2026-08-21T12:00:00+0100"), utc(2026, 8, 21, 11, 0, 0));
  EXPECT_EQ(parse_timestamp("2026-08-21T12:00:00Z"), utc(2026, 8, 21, 12, 0, 0));
  EXPECT_EQ(parse_timestamp("2023-01-19 18:30:04.051"), utc(2023, 1, 19, 18, 30, 4, 51));
  EXPECT_EQ(parse_timestamp("2023-01-19 18:30:04"), utc(2023, 1, 19, 18, 30, 4));
  EXPECT_EQ(parse_timestamp("2023-01-19T18:30:04.123456Z"), utc(2023, 1, 19, 18, 30, 4, 123));
  EXPECT_EQ(parse_timestamp("2024-02-29T00:00:00"), utc(2024, 2, 29, 0, 0, 0));
  for (const char* bad : {"", "2023-01-19", "2023-01-19T18:30", "2023-02-30T00:00:00",
                          "2023-13-01T00:00:00", "2023-01-19T24:00:00", "2023-01-19T18:30:04.",
                          "2023-01-19T18:30:04+1", "2023-01-19T18:30:04+00:00x",
                          "2023-01-19X18:30:04", "2023-1-19T18:30:04", "2023-01-19T18:30:04 "}) {
    EXPECT_FALSE(parse_timestamp(bad).has_value()) << bad;
  }
}

TEST(Decoder, MalformedFramesAreInvalidWithStableReasons) {
  FrameDecoder d{"p"};
  const std::string good = R"({"type":"event","data":)" + kEventData + "}";
  for (std::size_t cut = 0; cut < good.size(); ++cut) {
    const auto r = decode(d, good.substr(0, cut));
    EXPECT_EQ(r.kind, FrameKind::invalid) << cut;
    EXPECT_EQ(r.invalid_reason, "json") << cut;
  }
  const std::pair<std::string, std::string_view> cases[] = {
      {"[1,2]", "json"},
      {R"("event")", "json"},
      {"", "json"},
      {R"({"type":"pong"} {})", "json"},
      {R"({"type":"pong","x":[1,]})", "json"},
      {R"({"type":"pong","data":{"a":tru}})", "json"},
      {R"({"type":"event","data":{"events":[],"channels":[],"payload":{"a":[1 2]}}})", "json"},
      {R"({"type":"event","data":{"events":[],"channels":[],"payload":{"a":"\x"}}})", "json"},
      {R"({"type":"event","data":{"events":[],"channels":[],"payload":{},"extra":01}})", "json"},
      {R"({"data":{}})", "type"},
      {R"({"type":5})", "type"},
      {R"({"type":null,"data":{}})", "type"},
      {R"({"type":"presence","data":{}})", "type"},
      {R"({"type":"Event","data":{}})", "type"},
      {R"({"type":"event"})", "fields"},
      {R"({"type":"event","data":[]})", "fields"},
      {R"({"type":"event","data":{"events":"e","channels":[],"payload":{}}})", "fields"},
      {R"({"type":"event","data":{"events":[1],"channels":[],"payload":{}}})", "fields"},
      {R"({"type":"event","data":{"events":[],"channels":[null],"payload":{}}})", "fields"},
      {R"({"type":"event","data":{"events":[],"channels":[]}})", "fields"},
      {R"({"type":"event","data":{"events":[],"payload":{}}})", "fields"},
      {R"({"type":"event","data":{"channels":[],"payload":{}}})", "fields"},
      {R"({"type":"event","data":{"events":[],"channels":[],"payload":[]}})", "fields"},
      {R"({"type":"event","data":{"events":[],"channels":[],"payload":"x"}})", "fields"},
      {R"({"type":"event","data":{"events":[],"channels":[],"payload":{},"subscriptions":{}}})",
       "fields"},
  };
  for (const auto& [text, why] : cases) {
    const auto r = decode(d, text);
    EXPECT_EQ(r.kind, FrameKind::invalid) << text;
    EXPECT_EQ(r.invalid_reason, why) << text;
    EXPECT_EQ(r.event, nullptr) << text;
  }
  EXPECT_EQ(decode(d, R"({"type":"pong"})", true).invalid_reason, "binary");
}

TEST(Decoder, InvalidUtf8IsJson) {
  FrameDecoder d{"p"};
  for (const std::string& bad : {std::string("\xff"), std::string("\xc3\x28"),
                                 std::string("\xed\xa0\x80"), std::string("\xe2\x82")}) {
    const auto r = decode(d, R"({"type":"event","data":{"events":["e"],"channels":["c"],)"
                             R"("payload":{"name":")" +
                                 bad + R"("}}})");
    EXPECT_EQ(r.invalid_reason, "json");
  }
}

TEST(Decoder, DeepNestingIsRejectedWithoutCrashing) {
  FrameDecoder d{"p"};
  const std::size_t levels = 10000;
  std::string deep(levels, '[');
  deep += std::string(levels, ']');
  EXPECT_EQ(decode(d, deep).invalid_reason, "json");
  std::string nested;
  for (std::size_t i = 0; i < levels; ++i)
    nested += R"({"a":)";
  nested += "1";
  nested += std::string(levels, '}');
  const auto r = decode(d, R"({"type":"event","data":{"events":["e"],"channels":["c"],)"
                           R"("payload":)" +
                               nested + "}}");
  EXPECT_EQ(r.invalid_reason, "json");
  // Moderate nesting is fine.
  std::string ok;
  for (int i = 0; i < 100; ++i)
    ok += R"({"a":)";
  ok += "1" + std::string(100, '}');
  EXPECT_EQ(
      decode(d, R"({"type":"event","data":{"events":["e"],"channels":["c"],"payload":)" + ok + "}}")
          .kind,
      FrameKind::event);
}

TEST(Decoder, LargeFrameAndReuse) {
  FrameDecoder d{"p"};
  std::string big = R"({"type":"event","data":{"events":["e"],"channels":["c"],"payload":{)";
  for (int i = 0; big.size() < 64 * 1024; ++i) {
    big += "\"k" + std::to_string(i) + "\":\"" + std::string(50, 'x') + "\",";
  }
  big += R"("n":[1.5e3,-2,true,false,null,123456789012345678901234]}}})";
  for (int round = 0; round < 3; ++round) {
    const auto r = decode(d, big);
    ASSERT_EQ(r.kind, FrameKind::event) << r.invalid_reason;
    EXPECT_GT(r.event->payload.size(), 64000u);
    EXPECT_EQ(r.event->frame, big);
    // A small frame between big ones does not disturb the next decode.
    EXPECT_EQ(decode(d, R"({"type":"pong"})").kind, FrameKind::pong);
  }
}

// After a frame above kFrameRetainBytes the decoder starts over with a fresh parser: the event
// it returned must not point into the old one (unescaped strings included; ASan watches), and
// the next frames decode as before.
TEST(Decoder, AnOversizedFrameLeavesItsEventIntactAndTheDecoderWorking) {
  FrameDecoder d{"p"};
  std::string huge = R"({"type":"event","data":{"events":["a\/b"],"channels":["c\u0041"],)"
                     R"("timestamp":"2026-08-21T12:00:00\u002e5Z","payload":{"list":[)";
  while (huge.size() <= kFrameRetainBytes)
    huge += "0,";
  huge += "0]}}}";
  const auto big = decode(d, huge);
  ASSERT_EQ(big.kind, FrameKind::event) << big.invalid_reason;
  const auto small = decode(d, R"({"type":"event","data":{"events":["x\/y"],"channels":["z"],)"
                               R"("timestamp":"2026-08-21T13:00:00Z","payload":{}}})");
  ASSERT_EQ(small.kind, FrameKind::event) << small.invalid_reason;
  EXPECT_EQ(strings(big.event->events), std::vector<std::string>{"a/b"});
  EXPECT_EQ(strings(big.event->channels), std::vector<std::string>{"cA"});
  EXPECT_EQ(big.event->timestamp_text, "2026-08-21T12:00:00.5Z");
  EXPECT_EQ(big.event->frame, huge);
  EXPECT_EQ(strings(small.event->events), std::vector<std::string>{"x/y"});

  // An oversized frame that is not JSON is dropped the same way.
  EXPECT_EQ(decode(d, std::string(kFrameRetainBytes + 1, '[')).invalid_reason, "json");
  EXPECT_EQ(decode(d, R"({"type":"pong"})").kind, FrameKind::pong);
}

}  // namespace
}  // namespace sluice::upstream

namespace sluice::upstream {
namespace {

// A cheap deterministic fuzz: byte flips, truncations and insertions of a valid event frame
// must each give either a well-formed result or `invalid`, never a crash (ASan watches).
TEST(Decoder, MutatedFramesNeverCrash) {
  FrameDecoder d{"p"};
  const std::string good = R"({"type":"event","data":)" + kEventData + "}";
  std::uint64_t state = 0x9e3779b97f4a7c15ull;
  auto next = [&state] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  const char alphabet[] = "{}[]\":,\\ .-+0123456789eEtrufalsn\x80\xff";
  int events = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string frame = good;
    const int edits = 1 + static_cast<int>(next() % 3);
    for (int e = 0; e < edits && !frame.empty(); ++e) {
      const std::size_t at = next() % frame.size();
      const char c = alphabet[next() % (sizeof alphabet - 1)];
      switch (next() % 3) {
        case 0:
          frame[at] = c;
          break;
        case 1:
          frame.insert(frame.begin() + static_cast<std::ptrdiff_t>(at), c);
          break;
        default:
          frame.erase(at, 1 + next() % 4);
          break;
      }
    }
    const auto r = decode(d, frame);
    if (r.kind == FrameKind::event) {
      ++events;
      ASSERT_NE(r.event, nullptr);
      // Whatever survived is a complete object inside the frame.
      ASSERT_FALSE(r.event->data.empty());
      EXPECT_EQ(r.event->data.front(), '{');
      EXPECT_EQ(r.event->data.back(), '}');
      EXPECT_EQ(r.event->payload.front(), '{');
    } else if (r.kind == FrameKind::invalid) {
      EXPECT_FALSE(r.invalid_reason.empty());
    }
  }
  EXPECT_GT(events, 0);  // some mutations (inside strings) stay valid
}

}  // namespace
}  // namespace sluice::upstream

namespace sluice::upstream {
namespace {

std::string row_frame(std::string_view first_event, std::string_view subscription,
                      std::string_view updated_at, std::string_view extra = "") {
  return R"({"type":"event","data":{"events":[")" + std::string(first_event) +
         R"(","databases.*"],"channels":["rows"],"timestamp":"2026-08-21T12:00:00.500+00:00",)" +
         R"("payload":{"$id":"R","$sequence":4,"$updatedAt":")" + std::string(updated_at) + "\"" +
         std::string(extra) + R"(,"n":{"$id":"x"}},"subscriptions":[")" +
         std::string(subscription) + R"("]}})";
}

std::string id_of(FrameDecoder& d, const std::string& frame) {
  const auto r = d.decode(frame, false, kReceived, kWall);
  EXPECT_EQ(r.kind, FrameKind::event) << frame;
  return r.event ? r.event->id : std::string{};
}

constexpr std::string_view kAt = "2026-08-21T12:00:00.123+00:00";

// One change seen on two connections, in any of Appwrite's three forms of a row event, is one
// id: the id is the change's, not the frame's.
TEST(DecoderId, OneChangeInEveryFormIsOneId) {
  FrameDecoder d{"p"};
  const auto id = id_of(d, row_frame("tablesdb.D.tables.T.rows.R.update", "s1", kAt));
  EXPECT_EQ(id, make_change_id("p", "tablesdb.D.tables.T.rows.R.update", "R", kAt));
  EXPECT_EQ(id_of(d, row_frame("databases.D.tables.T.rows.R.update", "s2", kAt)), id);
  EXPECT_EQ(id_of(d, row_frame("databases.D.collections.T.documents.R.update", "s3", kAt)), id);
  EXPECT_EQ(id_of(d, row_frame("tablesdb.D.tables.T.rows.R.create", "s1", kAt)), id);
  // A recovered copy, marked as such, is the same change.
  EXPECT_EQ(
      id_of(d, row_frame("tablesdb.D.tables.T.rows.R.update", "s1", kAt, R"(,"recovered":true)")),
      id);
  EXPECT_NE(id_of(d, row_frame("tablesdb.D.tables.T.rows.R.delete", "s1", kAt)), id);
  EXPECT_NE(id_of(d, row_frame("tablesdb.D.tables.T.rows.R.update", "s1",
                               "2026-08-21T12:00:01.000+00:00")),
            id);
  FrameDecoder other{"q"};
  EXPECT_NE(id_of(other, row_frame("tablesdb.D.tables.T.rows.R.update", "s1", kAt)), id);
}

// An escaped `$updatedAt` is read unescaped, so it names the same instant.
TEST(DecoderId, EscapedFieldsAreReadUnescaped) {
  FrameDecoder d{"p"};
  const std::string escaped = R"({"type":"event","data":{"events":["buckets.B.files.F.create"],)"
                              R"("channels":["files"],"timestamp":"2026-08-21T12:00:00.5Z",)"
                              R"("payload":{"\u0024id":"F","$updatedAt":"2026-08-21T12:00:00.123)"
                              R"(\u002b00:00","name":"a\"b"}}})";
  EXPECT_EQ(id_of(d, escaped), make_change_id("p", "buckets.B.files.F.update", "F", kAt));
}

// `"recovered": true` marks a backfilled copy; any other value is just another member.
TEST(DecoderId, TheRecoveredMarkIsRead) {
  FrameDecoder d{"p"};
  // The member sits in `data`, after `payload`, where the backfill writes it.
  const auto decode = [&](std::string_view extra) {
    return d.decode(R"({"type":"event","data":{"events":["tablesdb.D.tables.T.rows.R.update"],)"
                    R"("channels":["rows"],"timestamp":"2026-08-21T12:00:00.500+00:00",)"
                    R"("payload":{"$id":"R","$updatedAt":"2026-08-21T12:00:00.123+00:00"})" +
                        std::string(extra) + "}}",
                    false, {}, {});
  };
  const auto marked = decode(R"(,"recovered":true)");
  ASSERT_EQ(marked.kind, FrameKind::event);
  EXPECT_TRUE(marked.event->recovered);
  EXPECT_FALSE(decode("").event->recovered);
  const auto other = decode(R"(,"recovered":{"a":[1]})");
  ASSERT_EQ(other.kind, FrameKind::event);
  EXPECT_FALSE(other.event->recovered);
  EXPECT_EQ(decode(R"(,"recovered":[)").kind, FrameKind::invalid);
}

// Events that are not resource changes keep the hash of their `data`.
TEST(DecoderId, OtherEventsKeepTheHashOfData) {
  FrameDecoder d{"p"};
  const std::string data =
      R"({"events":["stats.connections"],"channels":["project"],"timestamp":"2026-08-21T12:00:00Z",)"
      R"("payload":{"value":1}})";
  EXPECT_EQ(id_of(d, R"({"type":"event","data":)" + data + "}"), make_event_id(data));
  // A row payload without `$updatedAt`, or with one that is not a string.
  const std::string no_time =
      R"({"events":["tablesdb.D.tables.T.rows.R.update"],"channels":["rows"],)"
      R"("timestamp":"2026-08-21T12:00:00Z","payload":{"$id":"R","$updatedAt":null}})";
  EXPECT_EQ(id_of(d, R"({"type":"event","data":)" + no_time + "}"), make_event_id(no_time));
}

}  // namespace
}  // namespace sluice::upstream
