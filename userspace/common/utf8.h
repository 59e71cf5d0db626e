// Text as protobuf requires it in a `string` field: valid UTF-8 (its parsers refuse such a
// field that is not, and with it the whole message; JSON and Prometheus text want UTF-8
// too). Bytes a traced process sent need not be: each byte that does not start a valid
// sequence becomes U+FFFD, the rule the JSON writer (common/json.h) and the Prometheus
// text (common/prometheus.h) follow too.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace kspan {

// Length of the valid UTF-8 sequence starting at s[i] (i < s.size()), or 0 when it is not
// valid (overlong, a surrogate, past U+10FFFF, or cut short).
size_t Utf8SequenceLength(std::string_view s, size_t i);

// Whether every byte of `s` is ASCII: the common case, checked eight bytes at a time.
bool IsAscii(std::string_view s);

// Bytes `s` takes once made valid: s.size() when it already is; each invalid byte adds 2.
size_t ValidUtf8Size(std::string_view s);

// Writes `s` made valid at p, ValidUtf8Size(s) bytes; returns the end.
char* CopyValidUtf8(char* p, std::string_view s);

// `s` made valid.
std::string ValidUtf8(std::string_view s);

}  // namespace kspan
