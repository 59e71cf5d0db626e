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

// A recycled node (Stitcher::Recycle) is reset to what a new one holds, whatever it held;
// only the room of its key and lists stays.
TEST(StitchNode, ResetIsANewNode) {
  StitchNode parent, child;
  StitchNode n;
  n.key = Key(7, 9, 2, 5);
  n.kind = NodeKind::kServer;
  n.pid = n.tid = n.response_tid = 11;
  n.start_ns = n.arrival_ns = n.completed_seen_ns = n.open_ns = n.answer_ns = n.end_ns = 99;
  n.tls = n.retire_armed = n.pair_key_one_exchange = true;
  n.unarmed_entries = 2;
  n.serial = 42;
  n.pair_hash = 1234;
  n.incoming = model::TraceParent{model::TraceId::Random(), model::SpanId::Random(), 1};
  n.exec_parent_pid = n.exec_parent_tid = n.act_tid = n.act_turn = 3;
  n.act_ns = 4;
  n.span_id = n.parent_span_id = model::SpanId::Random();
  n.in_order = false;
  n.order_prev = n.order_next = n.parent = &parent;
  n.decided = n.paired = n.in_process_parent = n.in_servers = n.in_root_servers = n.ambiguous =
      n.root_orphan = n.complete = n.exported = true;
  n.group_index = 3;
  n.bytes = 500;
  n.pair_key = "127.0.0.1#9000|127.0.0.1#40001#some-stream-key";
  n.traceparent_raw = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  n.tracestate = "vendor=value";
  n.links.emplace_back();
  n.pending_links.push_back({Key(1, 2, 3, 4), {}});
  n.children.push_back(&child);
  n.group = GroupRef(new TraceGroup());
  n.span.name = "GET /items/{id}";
  n.span.attributes.push_back({"http.request.method", std::string("GET")});
  n.span.resource = std::make_shared<model::Resource>();
  const size_t key_room = n.pair_key.capacity();

  n.Reset();
  const StitchNode fresh{};
  EXPECT_EQ(n.key, fresh.key);
  EXPECT_EQ(n.kind, fresh.kind);
  EXPECT_EQ(n.pid, 0u);
  EXPECT_EQ(n.tid, 0u);
  EXPECT_EQ(n.response_tid, 0u);
  EXPECT_EQ(n.start_ns + n.arrival_ns + n.completed_seen_ns + n.open_ns + n.answer_ns + n.end_ns, 0u);
  EXPECT_FALSE(n.tls || n.retire_armed || n.pair_key_one_exchange);
  EXPECT_EQ(n.unarmed_entries, 0u);
  EXPECT_EQ(n.serial, 0u);
  EXPECT_EQ(n.pair_hash, 0u);
  EXPECT_FALSE(n.incoming.has_value());
  EXPECT_EQ(n.exec_parent_pid + n.exec_parent_tid + n.act_tid + n.act_turn, 0u);
  EXPECT_EQ(n.act_ns, 0u);
  EXPECT_EQ(n.span_id, fresh.span_id);
  EXPECT_EQ(n.parent_span_id, fresh.parent_span_id);
  EXPECT_TRUE(n.in_order);
  EXPECT_EQ(n.order_prev, nullptr);
  EXPECT_EQ(n.order_next, nullptr);
  EXPECT_EQ(n.parent, nullptr);
  EXPECT_FALSE(n.decided || n.paired || n.in_process_parent || n.in_servers || n.in_root_servers ||
               n.ambiguous || n.root_orphan || n.complete || n.exported);
  EXPECT_EQ(n.group_index, 0u);
  EXPECT_EQ(n.bytes, 0u);
  EXPECT_TRUE(n.pair_key.empty());
  EXPECT_EQ(n.pair_key.capacity(), key_room) << "the key's room is kept for the next request";
  EXPECT_TRUE(n.traceparent_raw.empty());
  EXPECT_TRUE(n.tracestate.empty());
  EXPECT_TRUE(n.links.empty());
  EXPECT_TRUE(n.pending_links.empty());
  EXPECT_TRUE(n.children.empty());
  EXPECT_FALSE(n.group);
  EXPECT_TRUE(n.span.name.empty());
  EXPECT_TRUE(n.span.attributes.empty());
  EXPECT_EQ(n.span.resource, nullptr);
  EXPECT_EQ(n.span.trace_flags, fresh.span.trace_flags);
  EXPECT_EQ(n.span.kind, fresh.span.kind);
}

}  // namespace
}  // namespace kspan::correlator
