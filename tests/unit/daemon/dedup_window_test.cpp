#include "daemon/dedup_window.hpp"

#include <gtest/gtest.h>

#include <string>

#include "core/event.hpp"

namespace sluice {
namespace {

std::string id(int n) {
  return make_event_id(std::to_string(n));
}

TEST(DedupWindow, DropsARepeatOnlyWhileItIsInTheWindow) {
  DedupWindow w(3);
  EXPECT_FALSE(w.seen(id(1)));
  EXPECT_TRUE(w.seen(id(1)));
  EXPECT_FALSE(w.seen(id(2)));
  EXPECT_FALSE(w.seen(id(3)));
  EXPECT_TRUE(w.seen(id(1)));  // a repeat is not remembered again: 1 stays the oldest
  EXPECT_EQ(w.size(), 3u);
  EXPECT_FALSE(w.seen(id(4)));  // forgets 1, the oldest
  EXPECT_EQ(w.size(), 3u);
  EXPECT_FALSE(w.seen(id(1)));  // forgets 2
  EXPECT_FALSE(w.seen(id(2)));  // forgets 3
  EXPECT_TRUE(w.seen(id(4)));
  EXPECT_TRUE(w.seen(id(1)));
  EXPECT_TRUE(w.seen(id(2)));
  EXPECT_FALSE(w.seen(id(3)));
}

TEST(DedupWindow, ZeroIsOff) {
  DedupWindow w(0);
  EXPECT_FALSE(w.seen(id(1)));
  EXPECT_FALSE(w.seen(id(1)));
  EXPECT_EQ(w.size(), 0u);
}

TEST(DedupWindow, OnlyEventIdsAreKept) {
  DedupWindow w(4);
  for (const std::string_view other :
       {"", "abc", "0123456789ABCDEF0123456789abcdef", "0123456789abcdef0123456789abcdeg"}) {
    EXPECT_FALSE(w.seen(other)) << other;
    EXPECT_FALSE(w.seen(other)) << other;
  }
  EXPECT_EQ(w.size(), 0u);
  // The two halves are both part of the key.
  EXPECT_FALSE(w.seen("0000000000000000ffffffffffffffff"));
  EXPECT_FALSE(w.seen("ffffffffffffffffffffffffffffffff"));
  EXPECT_FALSE(w.seen("ffffffffffffffff0000000000000000"));
  EXPECT_TRUE(w.seen("ffffffffffffffff0000000000000000"));
}

TEST(DedupWindow, ResizingKeepsTheNewestIds) {
  DedupWindow w(4);
  for (int n = 1; n <= 6; ++n)  // keeps 3, 4, 5, 6; the ring has wrapped
    EXPECT_FALSE(w.seen(id(n)));
  w.set_capacity(2);  // keeps 5, 6
  EXPECT_EQ(w.size(), 2u);
  EXPECT_FALSE(w.seen(id(4)));  // forgets 5
  EXPECT_TRUE(w.seen(id(6)));
  EXPECT_FALSE(w.seen(id(5)));
  w.set_capacity(8);  // keeps everything it had: 4, 5 in order
  EXPECT_TRUE(w.seen(id(4)));
  EXPECT_TRUE(w.seen(id(5)));
  for (int n = 10; n < 16; ++n)
    EXPECT_FALSE(w.seen(id(n)));
  EXPECT_TRUE(w.seen(id(4)));    // 8 ids: 4, 5, 10..15
  EXPECT_FALSE(w.seen(id(16)));  // forgets 4
  EXPECT_FALSE(w.seen(id(4)));
  w.set_capacity(0);
  EXPECT_EQ(w.size(), 0u);
  EXPECT_FALSE(w.seen(id(4)));
}

TEST(DedupWindow, ASecondLiveChangeInTheSameMillisecondIsNotARepeat) {
  DedupWindow w(8);
  EXPECT_FALSE(w.seen(id(1), 10, false));
  EXPECT_TRUE(w.seen(id(1), 10, false));   // the same bytes again: a repeat
  EXPECT_FALSE(w.seen(id(1), 11, false));  // same id, other payload: a second change
  EXPECT_TRUE(w.seen(id(1), 11, false));   // ...which is now the one remembered
  EXPECT_EQ(w.size(), 1u);
}

TEST(DedupWindow, ARecoveredCopyAndItsLiveEventAreOneChange) {
  DedupWindow w(8);
  EXPECT_FALSE(w.seen(id(1), 10, false));
  EXPECT_TRUE(w.seen(id(1), 99, true));  // recovered after the live one: other bytes, same change
  EXPECT_FALSE(w.seen(id(2), 20, true));
  EXPECT_TRUE(w.seen(id(2), 21, false));  // live after the recovered one
  EXPECT_TRUE(w.seen(id(2), 22, true));   // listed twice
}

}  // namespace
}  // namespace sluice
