#include "daemon/recovery/checkpoint.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "core/json.hpp"

namespace sluice::recovery {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

constexpr std::string_view kTable = "databases.shop.tables.orders.rows";

// Millis since an arbitrary base, and its Appwrite text.
Millis at(int ms) {
  return Millis{std::chrono::sys_days{std::chrono::year{2026} / 12 / 6}} +
         std::chrono::milliseconds{ms};
}
std::string text(int ms) {
  const auto t = at(ms);
  const auto day = std::chrono::floor<std::chrono::days>(t);
  const std::chrono::hh_mm_ss hms{t - day};
  char buf[64];
  std::snprintf(buf, sizeof buf, "2026-12-06T%02d:%02d:%02d.%03d+00:00",
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()),
                static_cast<int>(hms.subseconds().count()));
  return buf;
}

// An event as the decoder leaves it: views into its own padded frame, and the payload's
// `$id` and `$updatedAt` captured when they are strings.
EventPtr event(std::string payload, std::vector<std::string> channels = {std::string(kTable)}) {
  auto ev = std::make_shared<Event>();
  ev->frame.reserve(payload.size() + kJsonPadding);
  ev->frame.assign(payload);
  ev->payload = ev->frame;
  ev->data = ev->frame;
  const auto field = [&](std::string_view name) {
    auto v = json_lookup({ev->frame.data(), ev->frame.size(), ev->frame.capacity()}, name);
    return v.type == JsonValue::Type::string ? v.text : std::string();
  };
  const std::string id = field("$id");
  const std::string updated_at = field("$updatedAt");
  std::size_t total = id.size() + updated_at.size();
  for (const auto& c : channels)
    total += c.size();
  ev->strings.reserve(total);
  const auto keep = [&](const std::string& text) {
    ev->strings += text;
    return std::string_view(ev->strings).substr(ev->strings.size() - text.size());
  };
  for (const auto& c : channels)
    ev->channels.push_back(keep(c));
  ev->resource_id = keep(id);
  ev->updated_at = keep(updated_at);
  return ev;
}

EventPtr row(std::string id, int updated_ms, std::string_view channel = kTable) {
  return event(R"({"$id":")" + id + R"(","$updatedAt":")" + text(updated_ms) + R"(","n":1})",
               {std::string("rows"), std::string(channel)});
}

TEST(ResourceKey, EveryChannelFormOfATableOrBucket) {
  const std::string table = "databases/shop/tables/orders";
  for (const char* c :
       {"tablesdb.shop.tables.orders.rows", "tablesdb.shop.tables.orders.rows.R",
        "tablesdb.shop.tables.orders.rows.update", "tablesdb.shop.tables.orders.rows.R.update",
        "databases.shop.tables.orders.rows", "databases.shop.tables.orders.rows.R",
        "databases.shop.tables.orders.rows.R.delete", "databases.shop.collections.orders.documents",
        "databases.shop.collections.orders.documents.R",
        "databases.shop.collections.orders.documents.create",
        "databases.shop.collections.orders.documents.R.upsert"}) {
    EXPECT_EQ(resource_key_of_channel(c), table) << c;
  }
  for (const char* c : {"buckets.photos.files", "buckets.photos.files.F",
                        "buckets.photos.files.F.create", "buckets.photos.files.update"}) {
    EXPECT_EQ(resource_key_of_channel(c), "buckets/photos") << c;
  }
  for (const char* c :
       {"rows", "documents", "files", "account", "account.U", "teams.T", "memberships.M",
        "executions", "functions.F", "presences.P", "tablesdb.shop.tables.orders",
        "tablesdb.shop.collections.orders.documents", "databases.shop.tables.orders.documents",
        "documentsdb.shop.collections.c.documents", "databases..tables.t.rows",
        "databases.shop.tables.orders.rows.R.update.x", "buckets.photos", "buckets.photos.rows",
        ""}) {
    EXPECT_EQ(resource_key_of_channel(c), "") << c;
  }
}

TEST(ResourceKey, OfAnEventFromItsChannels) {
  EXPECT_EQ(resource_key_of_event(*row("r", 0)), "databases/shop/tables/orders");
  EXPECT_EQ(resource_key_of_event(*event("{}", {"account", "account.U"})), "");
  EXPECT_EQ(updated_at_of(*row("r", 1234)), at(1234));
  EXPECT_EQ(resource_id_of(*row("r1", 0)), "r1");
  EXPECT_EQ(updated_at_of(*event(R"({"$updatedAt":"yesterday"})")), std::nullopt);
  EXPECT_EQ(updated_at_of(*event(R"({"$updatedAt":5})")), std::nullopt);
}

TEST(CheckpointTracker, OtherEventsComeBackUnchanged) {
  CheckpointTracker tracker;
  const auto account = event(R"({"$id":"u","$updatedAt":")" + text(0) + "\"}", {"account"});
  EXPECT_EQ(tracker.track(account), account);
  const auto no_time = event(R"({"$id":"r"})");
  EXPECT_EQ(tracker.track(no_time), no_time);
  EXPECT_EQ(tracker.in_flight(), 0u);
  EXPECT_EQ(tracker.snapshot(), State{});
}

TEST(CheckpointTracker, TheCheckpointIsTheNewestDeliveredWithItsIds) {
  CheckpointTracker tracker;
  auto a = tracker.track(row("a", 100));
  auto b = tracker.track(row("b", 200));
  auto c = tracker.track(row("c", 200));
  EXPECT_NE(a, nullptr);
  EXPECT_EQ(resource_id_of(*a), "a");  // the wrapper is the same event
  EXPECT_EQ(tracker.in_flight(), 3u);
  EXPECT_TRUE(tracker.snapshot().resources.empty());
  a.reset();
  b.reset();
  c.reset();
  EXPECT_EQ(tracker.in_flight(), 0u);
  const auto s = tracker.snapshot();
  ASSERT_EQ(s.resources.size(), 1u);
  const auto& cp = s.resources.at("databases/shop/tables/orders");
  EXPECT_EQ(cp.updated_at, at(200));
  EXPECT_THAT(cp.ids, UnorderedElementsAre("b", "c"));
}

TEST(CheckpointTracker, ReleasedOnlyWhenTheLastCopyIsGone) {
  CheckpointTracker tracker;
  auto a = tracker.track(row("a", 100));
  auto copy = a;  // a second sink still holds it
  a.reset();
  EXPECT_EQ(tracker.in_flight(), 1u);
  EXPECT_TRUE(tracker.snapshot().resources.empty());
  copy.reset();
  EXPECT_EQ(tracker.in_flight(), 0u);
  EXPECT_EQ(tracker.snapshot().resources.at("databases/shop/tables/orders").updated_at, at(100));
}

TEST(CheckpointTracker, AnOlderEventInFlightHoldsTheCheckpoint) {
  CheckpointTracker tracker;
  auto old = tracker.track(row("old", 100));
  auto mid = tracker.track(row("mid", 200));
  auto young = tracker.track(row("young", 300));
  // Completed out of order: the newest first.
  young.reset();
  mid.reset();
  EXPECT_TRUE(tracker.snapshot().resources.empty());
  old.reset();
  const auto cp = tracker.snapshot().resources.at("databases/shop/tables/orders");
  EXPECT_EQ(cp.updated_at, at(300));
  EXPECT_THAT(cp.ids, ElementsAre("young"));
}

// One event stuck in flight (a sink retrying it) while thousands after it are delivered: the
// tracker keeps one released instant per gap between events in flight, not every instant.
TEST(CheckpointTracker, AStuckEventDoesNotMakeItKeepEveryLaterInstant) {
  CheckpointTracker tracker;
  auto stuck = tracker.track(row("stuck", 100));
  for (int ms = 101; ms < 5101; ++ms)
    tracker.track(row("r" + std::to_string(ms), ms)).reset();
  auto mid = tracker.track(row("mid", 6000));
  tracker.track(row("late", 7000)).reset();
  EXPECT_LE(tracker.waiting_instants(), 2u);
  EXPECT_TRUE(tracker.snapshot().resources.empty());
  stuck.reset();  // everything before `mid` is delivered
  auto cp = tracker.snapshot().resources.at("databases/shop/tables/orders");
  EXPECT_EQ(cp.updated_at, at(5100));
  EXPECT_THAT(cp.ids, ElementsAre("r5100"));
  mid.reset();
  cp = tracker.snapshot().resources.at("databases/shop/tables/orders");
  EXPECT_EQ(cp.updated_at, at(7000));
  EXPECT_EQ(tracker.waiting_instants(), 0u);
}

TEST(CheckpointTracker, OneInFlightAtTheSameInstantHoldsItsSiblings) {
  CheckpointTracker tracker;
  auto first = tracker.track(row("x", 100));
  first.reset();
  auto b = tracker.track(row("b", 200));
  auto c = tracker.track(row("c", 200));
  b.reset();
  // c at 200 is in flight: 200 is not complete, so the checkpoint stays at 100.
  auto cp = tracker.snapshot().resources.at("databases/shop/tables/orders");
  EXPECT_EQ(cp.updated_at, at(100));
  EXPECT_THAT(cp.ids, ElementsAre("x"));
  c.reset();
  cp = tracker.snapshot().resources.at("databases/shop/tables/orders");
  EXPECT_EQ(cp.updated_at, at(200));
  EXPECT_THAT(cp.ids, UnorderedElementsAre("b", "c"));
}

TEST(CheckpointTracker, ALateOlderEventCapsTheCheckpointBelowIt) {
  CheckpointTracker tracker;
  tracker.track(row("new", 500)).reset();
  // Appwrite may send an older change after a newer one (another worker): while it is in flight
  // the checkpoint may not claim it, so it drops to just before it, without ids.
  auto late = tracker.track(row("late", 300));
  auto cp = tracker.snapshot().resources.at("databases/shop/tables/orders");
  EXPECT_EQ(cp.updated_at, at(299));
  EXPECT_TRUE(cp.ids.empty());
  late.reset();
  cp = tracker.snapshot().resources.at("databases/shop/tables/orders");
  EXPECT_EQ(cp.updated_at, at(500));
  EXPECT_THAT(cp.ids, ElementsAre("new"));
}

TEST(CheckpointTracker, ResourcesAreIndependent) {
  CheckpointTracker tracker;
  auto orders = tracker.track(row("o", 100));
  tracker.track(row("p", 900, "databases.shop.collections.products.documents")).reset();
  tracker
      .track(event(R"({"$id":"f","$updatedAt":")" + text(50) + "\"}",
                   {"files", "buckets.photos.files.f"}))
      .reset();
  const auto s = tracker.snapshot();
  EXPECT_EQ(s.resources.size(), 2u);
  EXPECT_EQ(s.resources.at("databases/shop/tables/products").updated_at, at(900));
  EXPECT_EQ(s.resources.at("buckets/photos").updated_at, at(50));
  EXPECT_FALSE(s.resources.contains("databases/shop/tables/orders"));
}

TEST(CheckpointTracker, IdsAtOneInstantAreBounded) {
  CheckpointTracker tracker;
  for (std::size_t i = 0; i < kMaxIdsPerCheckpoint + 50; ++i)
    tracker.track(row("r" + std::to_string(i), 100)).reset();
  const auto cp = tracker.snapshot().resources.at("databases/shop/tables/orders");
  EXPECT_EQ(cp.updated_at, at(100));
  EXPECT_EQ(cp.ids.size(), kMaxIdsPerCheckpoint);
}

TEST(CheckpointTracker, TheFloorCapsWhatIsPersisted) {
  CheckpointTracker tracker;
  tracker.track(row("a", 500)).reset();
  tracker.advance_live(std::chrono::system_clock::time_point{at(1000)});
  tracker.set_floor(at(300));
  auto s = tracker.snapshot();
  EXPECT_EQ(s.live_until, at(300));
  EXPECT_EQ(s.resources.at("databases/shop/tables/orders").updated_at, at(300));
  EXPECT_TRUE(s.resources.at("databases/shop/tables/orders").ids.empty());
  // A floor above the checkpoint changes nothing.
  tracker.set_floor(at(700));
  s = tracker.snapshot();
  EXPECT_EQ(s.live_until, at(700));
  EXPECT_EQ(s.resources.at("databases/shop/tables/orders").updated_at, at(500));
  EXPECT_THAT(s.resources.at("databases/shop/tables/orders").ids, ElementsAre("a"));
  tracker.set_floor(std::nullopt);
  EXPECT_EQ(tracker.snapshot().live_until, at(1000));
}

TEST(CheckpointTracker, LiveUntilMovesOnlyWhenAdvancedAndStopsAtTheOldestInFlight) {
  CheckpointTracker tracker;
  EXPECT_EQ(tracker.snapshot().live_until, std::nullopt);
  tracker.advance_live(std::chrono::system_clock::time_point{at(1000)});
  EXPECT_EQ(tracker.snapshot().live_until, at(1000));
  // Not advanced (the subscription is down): it stays where it was, whatever is delivered.
  tracker.track(row("a", 1500)).reset();
  EXPECT_EQ(tracker.snapshot().live_until, at(1000));
  auto held = tracker.track(row("b", 1800));
  tracker.advance_live(std::chrono::system_clock::time_point{at(2000)});
  EXPECT_EQ(tracker.snapshot().live_until, at(1799));
  held.reset();
  tracker.advance_live(std::chrono::system_clock::time_point{at(2500)});
  EXPECT_EQ(tracker.snapshot().live_until, at(2500));
}

TEST(CheckpointTracker, RestoreContinuesFromTheSavedState) {
  CheckpointTracker tracker;
  State saved;
  saved.live_until = at(400);
  saved.resources["databases/shop/tables/orders"] = {at(300), {"x"}};
  saved.resources["buckets/photos"] = {at(100), {}};
  tracker.restore(saved);
  EXPECT_EQ(tracker.snapshot(), saved);
  // An older event delivered after the restart does not move the checkpoint back; a newer does.
  tracker.track(row("old", 200)).reset();
  EXPECT_EQ(tracker.snapshot().resources.at("databases/shop/tables/orders").updated_at, at(300));
  tracker.track(row("x2", 300)).reset();
  EXPECT_THAT(tracker.snapshot().resources.at("databases/shop/tables/orders").ids,
              ElementsAre("x", "x2"));
  tracker.track(row("new", 600)).reset();
  EXPECT_EQ(tracker.snapshot().resources.at("databases/shop/tables/orders").updated_at, at(600));
  EXPECT_EQ(tracker.snapshot().resources.at("buckets/photos"), (Checkpoint{at(100), {}}));
}

TEST(CheckpointTracker, EventsMayOutliveTheTracker) {
  EventPtr survivor;
  {
    CheckpointTracker tracker;
    survivor = tracker.track(row("a", 100));
  }
  EXPECT_EQ(resource_id_of(*survivor), "a");
  survivor.reset();  // released into the tracker's shared state, not freed memory (ASan)
}

TEST(CheckpointTracker, ManyThreadsReleasingAtOnce) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 2000;
  CheckpointTracker tracker;
  std::vector<std::vector<EventPtr>> batches(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      const int n = t * kPerThread + i;
      batches[t].push_back(tracker.track(row("r" + std::to_string(n), n)));
    }
  }
  EXPECT_EQ(tracker.in_flight(), static_cast<std::size_t>(kThreads * kPerThread));
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (!go.load())
        std::this_thread::yield();
      // Newest first, so every release but the last finds an older one still in flight.
      while (!batches[t].empty())
        batches[t].pop_back();
    });
  }
  go = true;
  // Snapshots taken meanwhile see a checkpoint that only moves forward (every event was
  // tracked before the first release, so none caps it below an earlier snapshot).
  Millis seen{};
  for (int i = 0; i < 200; ++i) {
    const auto s = tracker.snapshot();
    if (const auto it = s.resources.find("databases/shop/tables/orders"); it != s.resources.end()) {
      EXPECT_GE(it->second.updated_at, seen);
      seen = it->second.updated_at;
    }
  }
  for (auto& th : threads)
    th.join();
  EXPECT_EQ(tracker.in_flight(), 0u);
  const auto cp = tracker.snapshot().resources.at("databases/shop/tables/orders");
  EXPECT_EQ(cp.updated_at, at(kThreads * kPerThread - 1));
  EXPECT_THAT(cp.ids, ElementsAre("r" + std::to_string(kThreads * kPerThread - 1)));
}

}  // namespace
}  // namespace sluice::recovery
