// Compressed HTTP bodies (Content-Encoding, RFC 9110 §8.4) made readable again. The LLM SDKs
// send "accept-encoding: br, gzip, deflate", so real APIs answer with compressed bodies,
// and the captured bytes are a bounded prefix of them:
//
//   Decoded d = DecodeContentEncoding(headers.content_encoding, captured_body, 64 * 1024);
//   if (d.ok) ReadResponse(d.body);   // d.truncated: read what completed, as for any prefix
//
// The codings, named case-insensitively in the header's list:
//
//   coding            format                                         library
//   ----------------  ---------------------------------------------  ------------------
//   gzip, x-gzip      RFC 1952; members one after another are joined zlib
//   deflate           RFC 1950 (zlib wrapper), as RFC 9110 says;     zlib
//                     raw RFC 1951 too when the first two bytes are
//                     no zlib header, as browsers accept
//   br                RFC 7932 (Brotli)                              libbrotlidec
//   identity, empty   the bytes as they are
//
// Not supported, so ok == false: zstd, compress (LZW), dcb/dcz (dictionaries), aes128gcm,
// anything else, and lists of more than kMaxContentCodings codings. The codings of a list
// were applied in its order ("gzip, br": gzip, then brotli), so they are undone last first.
//
// Prefixes: a body that stops anywhere decodes to what its bytes hold, ok and truncated,
// never an error: every prefix of a body decodes to a prefix of the whole body's decoding.
// An empty body is empty whatever its coding, and not truncated (HEAD, 204 and 304 answers
// carry the header without a body; whether a capture was cut is the HTTP parser's to say).
//
// Errors: data that is not what its coding says (a bad header, a corrupt stream, a gzip
// CRC that does not match, a zlib preset dictionary) gives ok == false and an empty body.
// Garbage can go unnoticed for a while (raw deflate takes many byte strings as a start), so
// a prefix of garbage may decode to bytes, as it would in a browser. What follows the end
// of a stream is ignored, as gzip(1) and browsers do.
//
// Bounds: at most max_out bytes of output, and the work stops there (a zip bomb costs what
// max_out allows). Each coding of a stacked list passes at most 2 * max_out + 64 KiB on to
// the next: a deflate or brotli encoder's output is no longer than its input but for a
// few bytes a block (deflate: 5 bytes a stored block of up to 65535; brotli: a few bytes
// a metablock of up to 16 MiB) and its header, so the next coding never needs that much
// to make max_out, and the cap stops an inner stream that decodes to nothing (empty
// blocks, brotli metadata) from running on at the outer one's compression ratio. Memory: the output, a 16 KiB
// buffer and a decoder per coding: zlib's 32 KiB window, or brotli's, which is the
// stream's own, up to 16 MiB (large windows are not enabled), filled as output comes.
//
// Thread safety: a pure function; calls may run at once on different threads.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace kspan::genai {

// Codings in one Content-Encoding list. Servers apply one; two ("gzip, br") is already
// beyond what any is seen to send, and each costs a decoder, so four bound a hostile list.
inline constexpr size_t kMaxContentCodings = 4;

struct Decoded {
  std::string body;        // the decoded bytes; empty unless ok
  bool truncated = false;  // max_out was reached, or the body ended inside a stream
  bool ok = false;         // every coding is supported and the data decoded (maybe in part)
};

// `encoding`: the Content-Encoding header's value as sent (several header lines joined
// with ','). `body`: the captured, de-chunked bytes, maybe only a prefix of the body.
// At most `max_out` bytes of output.
Decoded DecodeContentEncoding(std::string_view encoding, std::string_view body, size_t max_out);

}  // namespace kspan::genai
