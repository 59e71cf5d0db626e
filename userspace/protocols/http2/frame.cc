#include "protocols/http2/frame.h"

namespace kspan::protocols::http2 {

FrameHeader DecodeFrameHeader(std::string_view b) {
  const auto u = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(b[i])); };
  FrameHeader h;
  h.length = (u(0) << 16) | (u(1) << 8) | u(2);
  h.type = static_cast<uint8_t>(u(3));
  h.flags = static_cast<uint8_t>(u(4));
  const uint32_t id = (u(5) << 24) | (u(6) << 16) | (u(7) << 8) | u(8);
  h.reserved_bit = (id & 0x80000000u) != 0;
  h.stream_id = id & 0x7fffffffu;
  return h;
}

HeaderCheck CheckFrameHeader(const FrameHeader& h, uint32_t max_frame_size) {
  if (h.length > max_frame_size) return HeaderCheck::kInvalid;  // §4.2: FRAME_SIZE_ERROR
  const bool on_stream = h.stream_id != 0;
  bool ok = true;
  switch (h.type) {
    case kData: ok = on_stream && (!(h.flags & kPadded) || h.length >= 1); break;
    case kHeaders: {
      const uint32_t need = ((h.flags & kPadded) ? 1 : 0) + ((h.flags & kPriorityFlag) ? 5 : 0);
      ok = on_stream && h.length >= need;
      break;
    }
    case kPriority: ok = on_stream && h.length == 5; break;
    case kRstStream: ok = on_stream && h.length == 4; break;
    case kSettings: ok = !on_stream && h.length % 6 == 0 && (!(h.flags & kAck) || h.length == 0); break;
    case kPushPromise: ok = on_stream && h.length >= ((h.flags & kPadded) ? 5u : 4u); break;
    case kPing: ok = !on_stream && h.length == 8; break;
    case kGoAway: ok = !on_stream && h.length >= 8; break;
    case kWindowUpdate: ok = h.length == 4; break;
    case kContinuation: ok = on_stream; break;
    default: break;  // extension frames: skipped
  }
  return ok ? HeaderCheck::kValid : HeaderCheck::kInvalid;
}

bool PlausibleFrameHeader(const FrameHeader& h, uint32_t max_frame_size) {
  if (h.reserved_bit || h.type > kContinuation) return false;
  if (CheckFrameHeader(h, max_frame_size) != HeaderCheck::kValid) return false;
  uint8_t allowed = 0;
  switch (h.type) {
    case kData: allowed = kEndStream | kPadded; break;
    case kHeaders: allowed = kEndStream | kEndHeaders | kPadded | kPriorityFlag; break;
    case kSettings:
    case kPing: allowed = kAck; break;
    case kPushPromise: allowed = kEndHeaders | kPadded; break;
    case kContinuation: allowed = kEndHeaders; break;
    default: break;
  }
  return (h.flags & ~allowed) == 0;
}

}  // namespace kspan::protocols::http2
