#include "protocols/http2/hpack.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>

namespace kspan::protocols::http2 {
namespace {

constexpr uint64_t kStaticEntries = 61;  // RFC 7541 Appendix A
constexpr size_t kEntryOverhead = 32;    // RFC 7541 §4.1

// An HPACK integer with an N-bit prefix (RFC 7541 §5.1) at *p; false when it is cut off or
// does not fit 32 bits (nothing legitimate is that large).
bool ReadInt(const uint8_t** p, const uint8_t* end, int prefix_bits, uint64_t* out) {
  if (*p >= end) return false;
  const uint64_t max_prefix = (1u << prefix_bits) - 1;
  uint64_t v = **p & max_prefix;
  ++*p;
  if (v < max_prefix) {
    *out = v;
    return true;
  }
  for (int shift = 0; shift <= 28; shift += 7) {
    if (*p >= end) return false;
    const uint8_t b = **p;
    ++*p;
    v += static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      if (v > UINT32_MAX) return false;
      *out = v;
      return true;
    }
  }
  return false;
}

void WriteInt(std::string* out, uint8_t flags, int prefix_bits, uint64_t v) {
  const uint64_t max_prefix = (1u << prefix_bits) - 1;
  if (v < max_prefix) {
    out->push_back(static_cast<char>(flags | v));
    return;
  }
  out->push_back(static_cast<char>(flags | max_prefix));
  v -= max_prefix;
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// A string literal (RFC 7541 §5.2) at *p, as its raw bytes (H bit, length, data).
bool ReadRawString(const uint8_t** p, const uint8_t* end, std::string_view* raw) {
  const uint8_t* start = *p;
  uint64_t len = 0;
  if (!ReadInt(p, end, 7, &len)) return false;
  if (len > static_cast<uint64_t>(end - *p)) return false;
  *p += len;
  *raw = std::string_view(reinterpret_cast<const char*>(start), static_cast<size_t>(*p - start));
  return true;
}

nghttp2_hd_inflater* NewInflater() {
  nghttp2_hd_inflater* in = nullptr;
  if (nghttp2_hd_inflate_new(&in) != 0) return nullptr;
  return in;
}

}  // namespace

HpackDecoder::HpackDecoder(uint32_t max_table_size)
    : inflater_(NewInflater()), scratch_(NewInflater()), max_table_size_(max_table_size) {}

HpackDecoder::~HpackDecoder() {
  if (inflater_) nghttp2_hd_inflate_del(inflater_);
  if (scratch_) nghttp2_hd_inflate_del(scratch_);
}

void HpackDecoder::AllowTableSize(uint32_t size) {
  size = std::min(size, max_table_size_);
  if (size <= allowed_) return;
  allowed_ = size;
  if (inflater_ && nghttp2_hd_inflate_change_table_size(inflater_, size) != 0) Lose();
}

void HpackDecoder::Lose() {
  if (inflater_) nghttp2_hd_inflate_del(inflater_);
  inflater_ = nullptr;
  recent_.clear();
  recent_bytes_ = 0;
}

HpackDecoder::Block HpackDecoder::Decode(std::string_view block) {
  if (!inflater_) return DecodeFailClosed(block);
  Block out;
  size_t decoded = 0;
  const auto* in = reinterpret_cast<const uint8_t*>(block.data());
  size_t left = block.size();
  for (;;) {
    nghttp2_nv nv;
    int flags = 0;
    const ssize_t rv = nghttp2_hd_inflate_hd2(inflater_, &nv, &flags, in, left, 1);
    if (rv < 0) {
      // The table is not what the encoder's is (or the block is not HPACK): nothing this
      // inflater says can be trusted any more, this block included.
      Lose();
      out = DecodeFailClosed(block);
      out.inflater_failed = true;
      return out;
    }
    in += rv;
    left -= static_cast<size_t>(rv);
    if (flags & NGHTTP2_HD_INFLATE_EMIT) {
      decoded += nv.namelen + nv.valuelen;
      if (decoded <= kMaxDecodedBytes) {
        out.fields.emplace_back(std::string(reinterpret_cast<const char*>(nv.name), nv.namelen),
                                std::string(reinterpret_cast<const char*>(nv.value), nv.valuelen));
      } else {
        out.incomplete = true;
      }
    }
    if (flags & NGHTTP2_HD_INFLATE_FINAL) {
      nghttp2_hd_inflate_end_headers(inflater_);
      break;
    }
    if ((flags & NGHTTP2_HD_INFLATE_EMIT) == 0 && left == 0) break;
  }
  return out;
}

bool HpackDecoder::DecodeAlone(std::string_view rep, Field* out) {
  if (!scratch_) scratch_ = NewInflater();
  if (!scratch_) return false;
  const auto* in = reinterpret_cast<const uint8_t*>(rep.data());
  size_t left = rep.size();
  bool got = false;
  for (int i = 0; i < 4; ++i) {
    nghttp2_nv nv;
    int flags = 0;
    const ssize_t rv = nghttp2_hd_inflate_hd2(scratch_, &nv, &flags, in, left, 1);
    if (rv < 0) {
      nghttp2_hd_inflate_del(scratch_);
      scratch_ = nullptr;
      return false;
    }
    in += rv;
    left -= static_cast<size_t>(rv);
    if (flags & NGHTTP2_HD_INFLATE_EMIT) {
      out->first.assign(reinterpret_cast<const char*>(nv.name), nv.namelen);
      out->second.assign(reinterpret_cast<const char*>(nv.value), nv.valuelen);
      got = true;
    }
    if (flags & NGHTTP2_HD_INFLATE_FINAL) {
      nghttp2_hd_inflate_end_headers(scratch_);
      return got;
    }
    if ((flags & NGHTTP2_HD_INFLATE_EMIT) == 0 && left == 0) break;
  }
  // Not one whole representation: start the scratch inflater afresh.
  nghttp2_hd_inflate_del(scratch_);
  scratch_ = nullptr;
  return false;
}

void HpackDecoder::Insert(Field f, bool known) {
  const size_t size = known ? f.first.size() + f.second.size() + kEntryOverhead : kEntryOverhead;
  recent_.push_front({std::move(f), known});
  recent_bytes_ += size;
  // The real table holds at most max_table_size_ bytes: entries past it are gone there too.
  while (recent_bytes_ > max_table_size_ && !recent_.empty()) {
    const Entry& e = recent_.back();
    recent_bytes_ -= e.known ? e.field.first.size() + e.field.second.size() + kEntryOverhead : kEntryOverhead;
    recent_.pop_back();
  }
}

HpackDecoder::Block HpackDecoder::DecodeFailClosed(std::string_view block) {
  Block out;
  size_t decoded = 0;
  auto emit = [&](Field&& f) {
    decoded += f.first.size() + f.second.size();
    if (decoded <= kMaxDecodedBytes) {
      out.fields.push_back(std::move(f));
    } else {
      out.incomplete = true;
    }
  };
  // The entry at dynamic index `i` (0 = newest), when known.
  auto dynamic = [&](uint64_t i) -> const Field* {
    if (i >= recent_.size() || !recent_[i].known) return nullptr;
    return &recent_[i].field;
  };
  const auto* p = reinterpret_cast<const uint8_t*>(block.data());
  const uint8_t* const end = p + block.size();
  while (p < end) {
    const uint8_t* const rep_start = p;
    const uint8_t b = *p;
    if (b & 0x80) {  // indexed field (§6.1)
      uint64_t index = 0;
      if (!ReadInt(&p, end, 7, &index) || index == 0) {
        out.incomplete = true;
        break;
      }
      Field f;
      if (index <= kStaticEntries) {
        if (DecodeAlone(std::string_view(reinterpret_cast<const char*>(rep_start), p - rep_start), &f)) {
          emit(std::move(f));
        } else {
          out.incomplete = true;
        }
      } else if (const Field* d = dynamic(index - kStaticEntries - 1)) {
        emit(Field(*d));
      } else {
        out.incomplete = true;
      }
      continue;
    }
    if ((b & 0xe0) == 0x20) {  // dynamic table size update (§6.3)
      uint64_t size = 0;
      if (!ReadInt(&p, end, 5, &size)) {
        out.incomplete = true;
        break;
      }
      if (size == 0) {  // the table is emptied: nothing older can be referred to
        recent_.clear();
        recent_bytes_ = 0;
      }
      continue;
    }
    const bool incremental = (b & 0xc0) == 0x40;  // §6.2.1; else §6.2.2 / §6.2.3
    uint64_t name_index = 0;
    if (!ReadInt(&p, end, incremental ? 6 : 4, &name_index)) {
      out.incomplete = true;
      break;
    }
    std::string_view raw_name, raw_value;
    if (name_index == 0 && !ReadRawString(&p, end, &raw_name)) {
      out.incomplete = true;
      break;
    }
    if (!ReadRawString(&p, end, &raw_value)) {
      out.incomplete = true;
      break;
    }
    // The same field as a literal without indexing, which the scratch inflater decodes
    // (Huffman included) without touching any table.
    rep_.clear();
    bool name_known = true;
    if (name_index == 0) {
      rep_.push_back(0);
      rep_ += raw_name;
    } else if (name_index <= kStaticEntries) {
      WriteInt(&rep_, 0, 4, name_index);
    } else if (const Field* d = dynamic(name_index - kStaticEntries - 1)) {
      rep_.push_back(0);
      WriteInt(&rep_, 0, 7, d->first.size());
      rep_ += d->first;
    } else {
      name_known = false;
    }
    Field f;
    const bool ok = name_known && (rep_ += raw_value, DecodeAlone(rep_, &f));
    if (incremental) Insert(ok ? f : Field(), ok);
    if (ok) {
      emit(std::move(f));
    } else {
      out.incomplete = true;
    }
  }
  return out;
}

}  // namespace kspan::protocols::http2
