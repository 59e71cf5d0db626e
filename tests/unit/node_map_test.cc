#include "correlator/node_map.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <random>
#include <tuple>
#include <vector>

#include "correlator/trace_window.h"  // StitchNode destroys its group reference

namespace kspan::correlator {
namespace {

NodeKey Key(uint32_t pid, int32_t fd, uint64_t gen, uint64_t seq) {
  return {{pid, fd, gen}, seq};
}

struct KeyLess {
  bool operator()(const NodeKey& a, const NodeKey& b) const {
    return std::tie(a.conn.pid, a.conn.fd, a.conn.generation, a.seq) <
           std::tie(b.conn.pid, b.conn.fd, b.conn.generation, b.seq);
  }
};

// The same inserts and erases on a NodeMap and a std::map, at random, over few connections
// (long probe runs, many collisions of the home slot) and through growing to thousands of
// entries and shrinking back: the same contents throughout.
TEST(NodeMap, BehavesLikeAMapThroughGrowthAndShrink) {
  std::mt19937_64 rng(17);
  NodeMap m;
  std::map<NodeKey, StitchNode*, KeyLess> ref;
  std::vector<std::unique_ptr<StitchNode>> nodes;
  auto random_key = [&] {
    return Key(4000 + static_cast<uint32_t>(rng() % 3), static_cast<int32_t>(rng() % 5) - 3, rng() % 2,
               rng() % 2000);
  };
  for (int round = 0; round < 60000; ++round) {
    // Grow for the first half, then mostly erase.
    const bool insert = round < 30000 ? rng() % 4 != 0 : rng() % 4 == 0;
    const NodeKey k = random_key();
    if (insert) {
      nodes.push_back(std::make_unique<StitchNode>());
      const bool added = m.Insert(k, nodes.back().get());
      const bool ref_added = ref.emplace(k, nodes.back().get()).second;
      ASSERT_EQ(added, ref_added);
    } else {
      ASSERT_EQ(m.Erase(k), ref.erase(k) == 1);
    }
    ASSERT_EQ(m.size(), ref.size());
    const NodeKey probe = random_key();
    auto it = ref.find(probe);
    ASSERT_EQ(m.Find(probe), it == ref.end() ? nullptr : it->second);
  }
  for (const auto& [k, n] : ref) ASSERT_EQ(m.Find(k), n);
  size_t seen = 0;
  m.ForEach([&](StitchNode* n) {
    ++seen;
    ASSERT_NE(n, nullptr);
  });
  EXPECT_EQ(seen, ref.size());
  // Everything out: empty, and every key gone.
  for (const auto& [k, n] : ref) ASSERT_TRUE(m.Erase(k));
  EXPECT_TRUE(m.empty());
  for (const auto& [k, n] : ref) ASSERT_EQ(m.Find(k), nullptr);
}

TEST(NodeMap, InsertKeepsTheFirstNodeOfAKey) {
  NodeMap m;
  StitchNode a, b;
  const NodeKey k = Key(1, 10, 3, 1);
  EXPECT_TRUE(m.Insert(k, &a));
  EXPECT_FALSE(m.Insert(k, &b));
  EXPECT_EQ(m.Find(k), &a);
  EXPECT_EQ(m.size(), 1u);
  // Keys differing in one field only are distinct.
  EXPECT_EQ(m.Find(Key(1, 10, 3, 2)), nullptr);
  EXPECT_EQ(m.Find(Key(1, 10, 4, 1)), nullptr);
  EXPECT_EQ(m.Find(Key(1, 11, 3, 1)), nullptr);
  EXPECT_EQ(m.Find(Key(2, 10, 3, 1)), nullptr);
  EXPECT_FALSE(m.Erase(Key(1, 10, 3, 2)));
  EXPECT_TRUE(m.Erase(k));
  EXPECT_FALSE(m.Erase(k));
  EXPECT_TRUE(m.empty());
}

}  // namespace
}  // namespace kspan::correlator
