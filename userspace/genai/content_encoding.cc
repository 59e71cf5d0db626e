#include "genai/content_encoding.h"

#include <brotli/decode.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "common/strings.h"

namespace kspan::genai {

namespace {

// What a step of the chain tells the one that fed it.
enum class Flow : uint8_t {
  kOk,     // all the input was taken; more may follow
  kFull,   // a cap was reached: stop, nothing more is wanted
  kError,  // the data is not what its coding says
};

// Where decoded bytes go: the next coding to undo, or the result.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual Flow Write(std::string_view bytes) = 0;
};

class StringSink final : public Sink {
 public:
  explicit StringSink(std::string* out) : out_(out) {}
  Flow Write(std::string_view bytes) override {
    out_->append(bytes);
    return Flow::kOk;
  }

 private:
  std::string* out_;
};

// One coding to undo: takes its encoded bytes in pieces through Write() and passes at most
// `cap` decoded bytes in all to `next`.
class Stage : public Sink {
 public:
  Stage(Sink* next, size_t cap) : next_(next), cap_(cap) {}
  // The stream's end was read (what follows it is ignored).
  bool ended() const { return ended_; }

 protected:
  static constexpr size_t kChunk = 16 * 1024;

  Flow Emit(std::string_view bytes) {
    const size_t room = cap_ - emitted_;
    const bool over = bytes.size() > room;
    bytes = bytes.substr(0, room);
    emitted_ += bytes.size();
    if (!bytes.empty()) {
      const Flow flow = next_->Write(bytes);
      if (flow != Flow::kOk) return flow;
    }
    return over ? Flow::kFull : Flow::kOk;
  }

  std::array<char, kChunk> buffer_;
  bool ended_ = false;

 private:
  Sink* next_;
  size_t cap_;
  size_t emitted_ = 0;
};

// gzip, zlib-wrapped deflate and raw deflate, through zlib's inflate.
class InflateStage final : public Stage {
 public:
  enum class Format : uint8_t { kGzip, kDeflate };

  InflateStage(Format format, Sink* next, size_t cap) : Stage(next, cap), format_(format) {}
  ~InflateStage() override {
    if (started_) inflateEnd(&z_);
  }

  Flow Write(std::string_view in) override {
    if (!started_) {
      // deflate: the first two bytes say whether a zlib header is there.
      const size_t need = format_ == Format::kDeflate ? 2 : 0;
      while (head_size_ < need && !in.empty()) {
        head_[head_size_++] = in.front();
        in.remove_prefix(1);
      }
      if (head_size_ < need) return Flow::kOk;
      // windowBits: 15 + 16 reads a gzip header and trailer, 15 a zlib one, -15 none.
      const int window_bits = format_ == Format::kGzip ? 15 + 16 : IsZlibHeader() ? 15 : -15;
      if (inflateInit2(&z_, window_bits) != Z_OK) return Flow::kError;
      started_ = true;
      const Flow flow = Inflate({head_.data(), head_size_});
      if (flow != Flow::kOk) return flow;
    }
    return Inflate(in);
  }

 private:
  // RFC 1950 §2.2: CM 8 (deflate), CINFO at most 7 (a 32 KiB window), and the two bytes
  // read as a big-endian number are a multiple of 31. Raw deflate (RFC 1951 §3.2.3, bits
  // from the lowest) starts so only with a non-final stored block whose padding bits are
  // not zero, and encoders write them as zero.
  bool IsZlibHeader() const {
    const auto cmf = static_cast<uint8_t>(head_[0]);
    const auto flg = static_cast<uint8_t>(head_[1]);
    return (cmf & 0x0f) == 8 && (cmf >> 4) <= 7 && (cmf * 256 + flg) % 31 == 0;
  }

  Flow Inflate(std::string_view in) {
    bool out_full = false;  // inflate filled the buffer, so it may hold more output
    while (!in.empty() || out_full) {
      if (ended_) {
        // RFC 1952 §2.2: a gzip file is a series of members; gunzip joins their data.
        // Anything else after the end is ignored, and so is all that follows it.
        if (in.empty() || trailer_) return Flow::kOk;
        if (format_ != Format::kGzip || in.front() != '\x1f' || inflateReset(&z_) != Z_OK) {
          trailer_ = true;
          return Flow::kOk;
        }
        ended_ = false;
      }
      z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
      z_.avail_in = static_cast<uInt>(std::min<size_t>(in.size(), UINT_MAX));
      z_.next_out = reinterpret_cast<Bytef*>(buffer_.data());
      z_.avail_out = static_cast<uInt>(buffer_.size());
      const int rc = inflate(&z_, Z_NO_FLUSH);
      in.remove_prefix(reinterpret_cast<const char*>(z_.next_in) - in.data());
      out_full = z_.avail_out == 0;
      const Flow flow = Emit({buffer_.data(), buffer_.size() - z_.avail_out});
      if (flow != Flow::kOk) return flow;
      if (rc == Z_STREAM_END) {
        ended_ = true;
      } else if (rc == Z_BUF_ERROR) {
        // No progress was possible: only right when the input is spent.
        if (!in.empty()) return Flow::kError;
        return Flow::kOk;
      } else if (rc != Z_OK) {
        return Flow::kError;  // Z_DATA_ERROR, Z_NEED_DICT, Z_MEM_ERROR
      }
    }
    return Flow::kOk;
  }

  Format format_;
  z_stream z_{};
  bool started_ = false;
  bool trailer_ = false;  // bytes after the end that are not another gzip member were seen
  std::array<char, 2> head_{};
  size_t head_size_ = 0;
};

class BrotliStage final : public Stage {
 public:
  BrotliStage(Sink* next, size_t cap)
      : Stage(next, cap), state_(BrotliDecoderCreateInstance(nullptr, nullptr, nullptr)) {}
  ~BrotliStage() override {
    if (state_ != nullptr) BrotliDecoderDestroyInstance(state_);
  }

  Flow Write(std::string_view in) override {
    if (state_ == nullptr) return Flow::kError;  // out of memory
    if (ended_) return Flow::kOk;                // after the end: ignored
    size_t avail_in = in.size();
    auto* next_in = reinterpret_cast<const uint8_t*>(in.data());
    for (;;) {
      size_t avail_out = buffer_.size();
      auto* next_out = reinterpret_cast<uint8_t*>(buffer_.data());
      const BrotliDecoderResult result =
          BrotliDecoderDecompressStream(state_, &avail_in, &next_in, &avail_out, &next_out, nullptr);
      const Flow flow = Emit({buffer_.data(), buffer_.size() - avail_out});
      if (flow != Flow::kOk) return flow;
      switch (result) {
        case BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT: continue;
        case BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT: return Flow::kOk;
        case BROTLI_DECODER_RESULT_SUCCESS: ended_ = true; return Flow::kOk;
        case BROTLI_DECODER_RESULT_ERROR: return Flow::kError;
      }
      return Flow::kError;
    }
  }

 private:
  BrotliDecoderState* state_;
};

enum class Coding : uint8_t { kGzip, kDeflate, kBrotli };

// The list's codings in the order they were applied, "identity" and empty elements left
// out (RFC 9110 §5.6.1: a recipient accepts empty list elements). Nothing if one is not
// supported or there are more than kMaxContentCodings.
std::optional<std::vector<Coding>> ParseCodings(std::string_view list) {
  std::vector<Coding> codings;
  while (!list.empty()) {
    const size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    const size_t first = item.find_first_not_of(" \t");
    if (first == std::string_view::npos) continue;
    item = item.substr(first, item.find_last_not_of(" \t") + 1 - first);
    if (EqualsIgnoreCase(item, "identity")) continue;
    if (codings.size() == kMaxContentCodings) return std::nullopt;
    if (EqualsIgnoreCase(item, "gzip") || EqualsIgnoreCase(item, "x-gzip")) {
      codings.push_back(Coding::kGzip);
    } else if (EqualsIgnoreCase(item, "deflate")) {
      codings.push_back(Coding::kDeflate);
    } else if (EqualsIgnoreCase(item, "br")) {
      codings.push_back(Coding::kBrotli);
    } else {
      return std::nullopt;
    }
  }
  return codings;
}

}  // namespace

Decoded DecodeContentEncoding(std::string_view encoding, std::string_view body, size_t max_out) {
  Decoded result;
  const std::optional<std::vector<Coding>> codings = ParseCodings(encoding);
  if (!codings) return result;
  result.ok = true;
  if (codings->empty()) {
    result.body.assign(body.substr(0, max_out));
    result.truncated = body.size() > max_out;
    return result;
  }
  if (body.empty()) return result;

  // The chain: body -> last coding applied -> ... -> first coding applied -> result.body.
  // The first applied makes the output, so it alone is capped at max_out (see the header
  // for the others' cap).
  constexpr size_t kSlack = 64 * 1024;
  const size_t inner_cap = max_out > (SIZE_MAX - kSlack) / 2 ? SIZE_MAX : 2 * max_out + kSlack;
  StringSink out(&result.body);
  std::vector<std::unique_ptr<Stage>> stages;
  Sink* next = &out;
  for (const Coding coding : *codings) {
    const size_t cap = stages.empty() ? max_out : inner_cap;
    switch (coding) {
      case Coding::kGzip:
        stages.push_back(std::make_unique<InflateStage>(InflateStage::Format::kGzip, next, cap));
        break;
      case Coding::kDeflate:
        stages.push_back(std::make_unique<InflateStage>(InflateStage::Format::kDeflate, next, cap));
        break;
      case Coding::kBrotli: stages.push_back(std::make_unique<BrotliStage>(next, cap)); break;
    }
    next = stages.back().get();
  }

  switch (next->Write(body)) {
    case Flow::kOk:
      result.truncated = !std::all_of(stages.begin(), stages.end(), [](const auto& s) { return s->ended(); });
      break;
    case Flow::kFull: result.truncated = true; break;
    case Flow::kError: return Decoded{};
  }
  return result;
}

}  // namespace kspan::genai
