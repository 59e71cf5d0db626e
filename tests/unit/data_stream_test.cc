#include "protocols/common/data_stream.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace kspan::protocols {
namespace {

using std::string;

ChunkTiming T(uint64_t ns, uint32_t tid = 1) {
  return ChunkTiming{ns, ns + 1, tid};
}

DataStream::Options Small(size_t cap, size_t held = 64) {
  DataStream::Options o;
  o.max_buffered_bytes = cap;
  o.max_held_chunks = held;
  return o;
}

// Everything captured from the read position, holes shown as '#': for checking layouts.
string Render(DataStream* s) {
  string out;
  while (s->position() < s->end()) {
    const std::string_view head = s->Head();
    if (!head.empty()) {
      out += head;
      s->Consume(head.size());
    } else {
      const uint64_t hole = s->HoleAtHead();
      out += string(hole, '#');
      s->Consume(hole);
    }
  }
  return out;
}

TEST(DataStreamTest, InOrderChunksFormOneView) {
  DataStream s({});
  s.Add(0, "GET / HT", 8, T(10));
  s.Add(8, "TP/1.1\r\n", 8, T(20));
  EXPECT_EQ(s.Head(), "GET / HTTP/1.1\r\n");
  EXPECT_FALSE(s.HoleAfterHead());
  EXPECT_EQ(s.end(), 16u);
  EXPECT_EQ(s.buffered_bytes(), 16u);
  s.Consume(4);
  EXPECT_EQ(s.Head(), "/ HTTP/1.1\r\n");
  EXPECT_EQ(s.position(), 4u);
}

TEST(DataStreamTest, OutOfOrderChunksReassemble) {
  DataStream s({});
  s.Add(6, "world", 5, T(30));
  s.Add(3, "lo ", 3, T(20));
  EXPECT_TRUE(s.Head().empty());  // waiting for bytes 0..2
  EXPECT_TRUE(s.has_gap());
  EXPECT_EQ(s.end(), 0u);
  s.Add(0, "hel", 3, T(10));
  EXPECT_EQ(s.Head(), "hello world");
  EXPECT_FALSE(s.has_gap());
  EXPECT_EQ(s.TimingAt(0).first_ns, 10u);
  EXPECT_EQ(s.TimingAt(4).first_ns, 20u);
  EXPECT_EQ(s.TimingAt(10).first_ns, 30u);
}

TEST(DataStreamTest, DuplicatesAndOverlapsIgnored) {
  DataStream s({});
  s.Add(0, "abcd", 4, T(1));
  s.Add(0, "abcd", 4, T(2));  // duplicate
  s.Add(2, "XXef", 4, T(3));  // overlaps: only "ef" is new
  s.Add(1, "YY", 2, T(4));    // wholly known
  s.Add(10, "kl", 2, T(5));   // held
  s.Add(10, "ZZ", 2, T(6));   // duplicate of a held chunk
  s.Add(6, "ghij", 4, T(7));
  EXPECT_EQ(s.Head(), "abcdefghijkl");
  EXPECT_EQ(s.TimingAt(4).first_ns, 3u);
  EXPECT_EQ(s.TimingAt(11).first_ns, 5u);
}

TEST(DataStreamTest, HolesAreKnownButNotStored) {
  DataStream s({});
  // A 1 GiB write of which 4 KiB were captured, then a small one.
  const string prefix(4096, 'p');
  s.Add(0, prefix, 1u << 30, T(10));
  s.Add(1u << 30, "next", 4, T(20));
  EXPECT_EQ(s.end(), (1u << 30) + 4u);
  EXPECT_EQ(s.buffered_bytes(), 4100u);
  EXPECT_EQ(s.Head().size(), 4096u);
  EXPECT_TRUE(s.HoleAfterHead());
  s.Consume(4096);
  EXPECT_TRUE(s.Head().empty());
  EXPECT_EQ(s.HoleAtHead(), (1u << 30) - 4096u);
  EXPECT_EQ(s.TimingAt(s.position()).first_ns, 10u);
  s.Consume(100);  // partway into the hole
  EXPECT_EQ(s.HoleAtHead(), (1u << 30) - 4196u);
  s.Consume(s.HoleAtHead());
  EXPECT_EQ(s.Head(), "next");
  EXPECT_EQ(s.buffered_bytes(), 4u);
}

TEST(DataStreamTest, AdjacentHolesMerge) {
  DataStream s({});
  s.Add(0, "ab", 5, T(1));
  s.Add(5, "", 10, T(2));  // nothing captured at all
  s.Add(15, "cd", 2, T(3));
  EXPECT_EQ(Render(&s), "ab#############cd");
}

TEST(DataStreamTest, HeadSpansChunksUntilAHole) {
  DataStream s({});
  s.Add(0, "one", 3, T(1));
  s.Add(3, "two", 6, T(2));  // 3 captured + 3 hole
  s.Add(9, "three", 5, T(3));
  EXPECT_EQ(s.Head(), "onetwo");
  EXPECT_TRUE(s.HoleAfterHead());
  EXPECT_EQ(Render(&s), "onetwo###three");
}

TEST(DataStreamTest, CapDropsWhatIsStuckAndCounts) {
  DataStream s(Small(100));
  s.Add(0, string(40, 'a'), 40, T(1));
  s.Add(40, string(40, 'b'), 40, T(2));
  EXPECT_EQ(s.drop_count(), 0u);
  s.Add(80, string(40, 'c'), 40, T(3));  // 120 > 100: the 80 held bytes go
  EXPECT_EQ(s.drop_count(), 1u);
  EXPECT_LE(s.buffered_bytes(), 100u);
  EXPECT_EQ(s.position(), 80u);
  EXPECT_EQ(s.Head(), string(40, 'c'));
  const DataStream::Counters c = s.TakeCounters();
  EXPECT_EQ(c.bytes_dropped, 80u);
  EXPECT_EQ(s.TakeCounters().bytes_dropped, 0u);  // reset
}

TEST(DataStreamTest, CapCountsOnlyUnconsumedBytes) {
  DataStream s(Small(100));
  for (int i = 0; i < 50; ++i) {
    s.Add(i * 40, string(40, 'x'), 40, T(i));
    s.Consume(s.Head().size());
  }
  EXPECT_EQ(s.drop_count(), 0u);
  EXPECT_EQ(s.buffered_bytes(), 0u);
}

TEST(DataStreamTest, OversizedChunkIsCutToHalfTheCap) {
  DataStream s(Small(100));
  s.Add(0, string(80, 'x'), 80, T(1));
  EXPECT_EQ(s.Head().size(), 50u);
  EXPECT_EQ(s.end(), 80u);  // the rest is a hole, not lost position
  EXPECT_EQ(s.TakeCounters().bytes_dropped, 30u);
}

TEST(DataStreamTest, ChunkCountIsBoundedLikeBytes) {
  // Syscalls with nothing captured cost no bytes, but each has a timing entry.
  DataStream s(Small(64 * 100));  // room for 100 entries
  for (int i = 0; i < 99; ++i) s.Add(i, "", 1, T(i));
  EXPECT_EQ(s.drop_count(), 0u);
  EXPECT_TRUE(s.under_pressure());
  for (int i = 99; i < 1000; ++i) s.Add(i, "", 1, T(i));
  EXPECT_GT(s.drop_count(), 0u);
  EXPECT_LE(s.chunk_count(), 100u);
  EXPECT_EQ(s.end(), 1000u);
}

TEST(DataStreamTest, GapGivenUpAfterTooManyHeldChunks) {
  DataStream s(Small(1 << 20, 4));
  // Bytes 0..9 never arrive.
  for (int i = 0; i < 5; ++i) s.Add(10 + i * 2, "zz", 2, T(100 + i));
  EXPECT_FALSE(s.has_gap());
  EXPECT_EQ(s.TakeCounters().gaps, 1u);
  EXPECT_EQ(s.HoleAtHead(), 10u);
  EXPECT_EQ(s.TimingAt(0).first_ns, 100u);  // the hole is timed like the chunk after it
  EXPECT_EQ(Render(&s), "##########zzzzzzzzzz");
}

TEST(DataStreamTest, GapGivenUpWhenHeldBytesExceedHalfTheCap) {
  DataStream s(Small(100));
  s.Add(10, string(30, 'a'), 30, T(1));
  EXPECT_TRUE(s.has_gap());
  s.Add(40, string(30, 'b'), 30, T(2));  // 60 held > 50
  EXPECT_FALSE(s.has_gap());
  EXPECT_EQ(s.TakeCounters().gaps, 1u);
}

TEST(DataStreamTest, AgeGapsGivesUpAGapThatOutlivesADrain) {
  DataStream s({});
  s.Add(0, "ab", 2, T(1));
  s.Add(5, "fg", 2, T(2));
  s.AgeGaps();
  EXPECT_TRUE(s.has_gap());
  s.AgeGaps();
  EXPECT_FALSE(s.has_gap());
  EXPECT_EQ(Render(&s), "ab###fg");
}

TEST(DataStreamTest, AgeGapsResetsWhenTheGapFills) {
  DataStream s({});
  s.Add(5, "fg", 2, T(2));
  s.AgeGaps();
  s.Add(0, "abcde", 5, T(1));
  s.AgeGaps();
  s.Add(10, "k", 1, T(3));
  s.AgeGaps();  // a new gap: its first drain
  EXPECT_TRUE(s.has_gap());
}

TEST(DataStreamTest, FillGapsOnClose) {
  DataStream s({});
  s.Add(3, "d", 1, T(1));
  s.FillGaps();
  EXPECT_EQ(Render(&s), "###d");
}

TEST(DataStreamTest, TimingAtLastConsumedByte) {
  DataStream s({});
  s.Add(0, "abc", 3, T(10, 7));
  s.Add(3, "def", 3, T(20, 8));
  s.Consume(3);
  EXPECT_EQ(s.TimingAt(s.position() - 1).last_ns, 11u);
  EXPECT_EQ(s.TimingAt(s.position()).tid, 8u);
  s.Consume(3);
  EXPECT_EQ(s.TimingAt(s.position() - 1).last_ns, 21u);
}

TEST(DataStreamTest, DiscardKnownReturnsUnconsumedBytes) {
  DataStream s({});
  s.Add(0, "abcdef", 10, T(1));
  s.Add(10, "gh", 2, T(2));
  s.Consume(2);
  EXPECT_EQ(s.DiscardKnown(), 6u);
  EXPECT_EQ(s.position(), 12u);
  EXPECT_EQ(s.buffered_bytes(), 0u);
}

TEST(DataStreamTest, CapturedLongerThanTotalIsClamped) {
  DataStream s({});
  s.Add(0, "abcdef", 3, T(1));
  EXPECT_EQ(s.Head(), "abc");
  EXPECT_EQ(s.end(), 3u);
}

TEST(DataStreamTest, EmptyAndNonsenseChunksIgnored) {
  DataStream s({});
  s.Add(0, "", 0, T(1));
  s.Add(~uint64_t{0} - 1, "ab", 5, T(1));  // would wrap
  EXPECT_EQ(s.end(), 0u);
  EXPECT_FALSE(s.has_gap());
}

TEST(DataStreamTest, ConsumedMemoryIsReleased) {
  DataStream s({});
  const string big(64 * 1024, 'x');
  s.Add(0, big, big.size(), T(1));
  s.Consume(big.size() - 10);
  EXPECT_EQ(s.buffered_bytes(), 10u);  // the consumed prefix was compacted away
  s.Consume(10);
  EXPECT_EQ(s.buffered_bytes(), 0u);
}

}  // namespace
}  // namespace kspan::protocols
