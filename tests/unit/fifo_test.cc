#include "common/fifo.h"

#include <gtest/gtest.h>

#include <deque>
#include <random>
#include <string>

namespace kspan {
namespace {

// The same operations on a Fifo and a std::deque, at random: same contents throughout.
TEST(Fifo, BehavesLikeADequeAtBothEnds) {
  std::mt19937 rng(7);
  Fifo<std::string> f;
  std::deque<std::string> d;
  for (int i = 0; i < 20000; ++i) {
    const unsigned op = rng() % 6;
    if (op < 4 || d.empty()) {
      const std::string v = std::to_string(i) + std::string(rng() % 40, 'x');  // SSO and heap
      f.push_back(v);
      d.push_back(v);
    } else if (op == 4) {
      f.pop_back();
      d.pop_back();
    } else {
      f.pop_front();
      d.pop_front();
    }
    ASSERT_EQ(f.size(), d.size());
    ASSERT_EQ(f.empty(), d.empty());
    if (!d.empty()) {
      ASSERT_EQ(f.front(), d.front());
      ASSERT_EQ(f.back(), d.back());
      ASSERT_EQ(f[d.size() / 2], d[d.size() / 2]);
    }
  }
  ASSERT_EQ(std::vector<std::string>(f.begin(), f.end()), std::vector<std::string>(d.begin(), d.end()));
}

TEST(Fifo, EmptyAfterPoppingEverythingAndReusable) {
  Fifo<int> f{1, 2, 3};
  EXPECT_EQ(f.size(), 3u);
  f.pop_front();
  f.pop_front();
  f.pop_front();
  EXPECT_TRUE(f.empty());
  EXPECT_EQ(f.begin(), f.end());
  f.emplace_back(4);
  EXPECT_EQ(f.front(), 4);
  EXPECT_EQ(f.back(), 4);
  f.clear();
  EXPECT_TRUE(f.empty());
}

TEST(Fifo, PopBackToEmptyAfterPopFront) {
  // The last element taken off the back of a queue whose front was popped: empty, and the
  // next element starts it over.
  Fifo<int> f{1, 2};
  f.pop_front();
  f.pop_back();
  EXPECT_TRUE(f.empty());
  EXPECT_EQ(f.size(), 0u);
  f.push_back(3);
  f.push_back(4);
  EXPECT_EQ(f.size(), 2u);
  EXPECT_EQ(f.front(), 3);
  f.pop_back();
  EXPECT_EQ(f.back(), 3);
  EXPECT_EQ(f.size(), 1u);
}

}  // namespace
}  // namespace kspan
