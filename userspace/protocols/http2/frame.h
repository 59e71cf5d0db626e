// HTTP/2 framing (RFC 9113 §4, §6): the 9-byte frame header and what each frame type
// allows, for parsing in step and for finding a frame start again after a loss.
//
//   +-----------------------------------------------+
//   |                 Length (24)                   |
//   +---------------+---------------+---------------+
//   |   Type (8)    |   Flags (8)   |
//   +-+-------------+---------------+-------------------------------+
//   |R|                 Stream Identifier (31)                      |
//   +=+=============================================================+
//   |                   Frame Payload (Length bytes)              ...
#pragma once

#include <cstdint>
#include <string_view>

namespace kspan::protocols::http2 {

// The client connection preface (RFC 9113 §3.4), followed by the client's SETTINGS.
inline constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
inline constexpr size_t kFrameHeaderSize = 9;

enum FrameType : uint8_t {
  kData = 0x0,
  kHeaders = 0x1,
  kPriority = 0x2,
  kRstStream = 0x3,
  kSettings = 0x4,
  kPushPromise = 0x5,
  kPing = 0x6,
  kGoAway = 0x7,
  kWindowUpdate = 0x8,
  kContinuation = 0x9,
};

enum FrameFlag : uint8_t {
  kEndStream = 0x1,  // DATA, HEADERS
  kAck = 0x1,        // SETTINGS, PING
  kEndHeaders = 0x4,
  kPadded = 0x8,
  kPriorityFlag = 0x20,
};

enum SettingId : uint16_t {
  kHeaderTableSize = 0x1,
  kSettingsMaxFrameSize = 0x5,
};

struct FrameHeader {
  uint32_t length = 0;
  uint8_t type = 0;
  uint8_t flags = 0;
  uint32_t stream_id = 0;  // R bit cleared
  bool reserved_bit = false;
};

// `bytes` holds at least kFrameHeaderSize bytes.
FrameHeader DecodeFrameHeader(std::string_view bytes);

// How sure a header is to be one.
enum class HeaderCheck : uint8_t {
  kValid,    // a frame a peer may send (unknown types are valid: RFC 9113 §4.1 says ignore)
  kInvalid,  // breaks a rule of RFC 9113 §6 (a connection error for the receiver)
};
// In step: the rules of §6 on stream ids and lengths. `max_frame_size`: what the
// receiver allowed (SETTINGS_MAX_FRAME_SIZE, 16384 by default).
HeaderCheck CheckFrameHeader(const FrameHeader& h, uint32_t max_frame_size);
// After a loss: only a known type, with flags that type defines, the R bit clear, and
// the rules above. Stricter, so that bytes inside a payload rarely pass for a frame.
bool PlausibleFrameHeader(const FrameHeader& h, uint32_t max_frame_size);

}  // namespace kspan::protocols::http2
