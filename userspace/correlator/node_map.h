// The stitcher's index of its nodes by key (NodeKey -> StitchNode*): an open-addressing
// table with linear probing, the keys stored in the slots. A look-up is a hash and, most of
// the time, one slot compared; an insert allocates nothing unless the table grows (a
// std::unordered_map allocates a list node per entry, and the stitcher makes two entries
// a request and erases them again).
//
// Erase shifts the entries after the freed slot back (no tombstones), so look-ups stay
// short however many entries came and went. The table doubles past 3/4 full and halves
// below 1/8 full (not under kMinSlots), so its memory follows what is held: after a burst
// up to the stitcher's max_nodes it shrinks again. Iteration order is unspecified.
//
// Single-threaded, like the stitcher.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "correlator/stitch_node.h"

namespace kspan::correlator {

class NodeMap {
 public:
  static constexpr size_t kMinSlots = 64;

  NodeMap() : slots_(kMinSlots), mask_(kMinSlots - 1) {}

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // The node under `key`, or null.
  StitchNode* Find(const NodeKey& key) const {
    for (size_t i = Hash(key) & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (!s.node) return nullptr;
      if (s.key == key) return s.node;
    }
  }

  // Adds `node` under `key` (node not null); false, and nothing changed, when the key is
  // there already.
  bool Insert(const NodeKey& key, StitchNode* node) {
    if ((size_ + 1) * 4 > slots_.size() * 3) Resize(slots_.size() * 2);
    size_t i = Hash(key) & mask_;
    for (; slots_[i].node; i = (i + 1) & mask_) {
      if (slots_[i].key == key) return false;
    }
    slots_[i] = {key, node};
    ++size_;
    return true;
  }

  // Removes `key`; false when it was not there.
  bool Erase(const NodeKey& key) {
    size_t i = Hash(key) & mask_;
    for (;; i = (i + 1) & mask_) {
      if (!slots_[i].node) return false;
      if (slots_[i].key == key) break;
    }
    // Backward shift: each later entry of the run moves into the hole unless its home slot
    // lies cyclically in (hole, its slot].
    for (size_t j = (i + 1) & mask_;; j = (j + 1) & mask_) {
      if (!slots_[j].node) break;
      const size_t home = Hash(slots_[j].key) & mask_;
      if (((j - home) & mask_) >= ((j - i) & mask_)) {
        slots_[i] = slots_[j];
        i = j;
      }
    }
    slots_[i].node = nullptr;
    --size_;
    if (slots_.size() > kMinSlots && size_ * 8 < slots_.size()) Resize(slots_.size() / 2);
    return true;
  }

  // Calls f(node) for every node; `f` must not change the map.
  template <typename F>
  void ForEach(F&& f) const {
    for (const Slot& s : slots_) {
      if (s.node) f(s.node);
    }
  }

  static size_t Hash(const NodeKey& k) {
    uint64_t h = (uint64_t{k.conn.pid} << 32 | static_cast<uint32_t>(k.conn.fd)) ^
                 (k.conn.generation * 0x9E3779B97F4A7C15ULL) ^ (k.seq * 0xC2B2AE3D27D4EB4FULL);
    // murmur3's finaliser: every input bit reaches the low bits the mask keeps.
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDULL;
    h ^= h >> 33;
    return static_cast<size_t>(h);
  }

 private:
  struct Slot {
    NodeKey key{};
    StitchNode* node = nullptr;  // null: empty
  };

  void Resize(size_t slots) {
    std::vector<Slot> old(slots);
    old.swap(slots_);
    mask_ = slots - 1;
    for (const Slot& s : old) {
      if (!s.node) continue;
      size_t i = Hash(s.key) & mask_;
      while (slots_[i].node) i = (i + 1) & mask_;
      slots_[i] = s;
    }
  }

  std::vector<Slot> slots_;
  size_t mask_;
  size_t size_ = 0;
};

}  // namespace kspan::correlator
