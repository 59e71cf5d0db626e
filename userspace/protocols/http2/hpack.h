// HPACK (RFC 7541) for one direction of one HTTP/2 connection: nghttp2's inflater while
// the dynamic table is known, and a fail-closed decoder once it is not.
//
// The dynamic table is state both ends build from every header block of the direction,
// in order. kspan knows it only while it has seen every block since the connection's
// preface. After a loss (a hole over a header block, a connection joined mid-stream, an
// inflater error) the table is unknown:
//
//   index:   1 … 61      62 … 62+k-1                      62+k …
//            static      inserted since the loss (known)  older entries: UNKNOWN
//
// An index names the i-th newest entry, and eviction removes the oldest first, so an
// entry inserted since the loss keeps its meaning for as long as it exists, whatever the
// (unknown) table size: the encoder only refers to entries that exist. So after a loss we
// still decode static and literal fields and references to entries inserted since, and
// never guess the rest: a field whose name or value is in the unknown part is left out
// and the block is marked incomplete.
//
// Bounds: the inflater's table is at most Limits::max_table_size (a peer allowing its
// encoder more makes the inflater fail, counted, and the direction goes fail-closed);
// a block's decoded fields are at most kMaxDecodedBytes (beyond: left out, incomplete);
// the fail-closed decoder keeps at most max_table_size bytes of entries (RFC 7541 §4.1
// entry sizes: the real table cannot hold more either).
//
// Threads: one connection's pipeline thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct nghttp2_hd_inflater;

namespace kspan::protocols::http2 {

using Field = std::pair<std::string, std::string>;

class HpackDecoder {
 public:
  // Fields decoded from one block, names as sent (lower case on the wire for HTTP/2).
  struct Block {
    std::vector<Field> fields;
    // Some field could not be decoded (unknown table entry, or over the size bound).
    bool incomplete = false;
    // The inflater failed on this block: the table is unknown from now on (the block
    // was decoded again fail-closed).
    bool inflater_failed = false;
  };

  static constexpr size_t kMaxDecodedBytes = 64 << 10;

  // `max_table_size`: the largest dynamic table a peer may make us keep.
  explicit HpackDecoder(uint32_t max_table_size = 65536);
  ~HpackDecoder();
  HpackDecoder(const HpackDecoder&) = delete;
  HpackDecoder& operator=(const HpackDecoder&) = delete;

  // Decodes one whole header block (HEADERS/PUSH_PROMISE + CONTINUATION fragments).
  Block Decode(std::string_view block);

  // The receiving side of this direction sent SETTINGS_HEADER_TABLE_SIZE = `size`. Only
  // raising is applied: the encoder's real size comes in the blocks as size updates, and a
  // raise never invalidates a block the SETTINGS race with (the two directions are parsed
  // apart, so their order is not exact).
  void AllowTableSize(uint32_t size);

  // Bytes were lost in this direction (or the connection was joined mid-stream): the
  // table is unknown from now on.
  void Lose();
  bool table_known() const { return inflater_ != nullptr; }

 private:
  Block DecodeFailClosed(std::string_view block);
  // Decodes one field representation with the scratch inflater (which never holds a
  // dynamic entry): `rep` is a self-contained block.
  bool DecodeAlone(std::string_view rep, Field* out);
  void Insert(Field f, bool known);

  nghttp2_hd_inflater* inflater_ = nullptr;  // null once the table is unknown
  nghttp2_hd_inflater* scratch_ = nullptr;
  uint32_t max_table_size_;
  uint32_t allowed_ = 4096;  // SETTINGS_HEADER_TABLE_SIZE applied to inflater_
  // Fail-closed mode: entries inserted since the loss, newest first; `known` false for one
  // whose name or value was not decodable (it still takes its index).
  struct Entry {
    Field field;
    bool known = true;
  };
  std::deque<Entry> recent_;
  size_t recent_bytes_ = 0;
  std::string rep_;  // scratch for DecodeAlone
};

}  // namespace kspan::protocols::http2
