// URL pieces of an HTTP/1 request as the span builder needs them: the request-target split
// into its parts (RFC 9112 §3.2), Host-style "host[:port]" values (RFC 9110 §7.2), query
// redaction, and url.template, a low-cardinality stand-in for a route that we cannot know
// from the wire.
//
// Everything here is a pure function over bytes a traced process sent: any input is
// valid input, nothing allocates more than a small multiple of its input, nothing fails
// louder than "not parsed" (std::nullopt).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kspan::correlator {

// The four request-target forms of RFC 9112 §3.2:
//
//   origin-form     /where?q=now                      (nearly every request)
//   absolute-form   http://www.example.org/pub?q=1    (requests to a forward proxy)
//   authority-form  www.example.com:443               (CONNECT only)
//   asterisk-form   *                                 (OPTIONS only)
enum class TargetForm { kOrigin, kAbsolute, kAuthority, kAsterisk };

// Views into the target passed to SplitTarget; valid as long as it is.
struct RequestTarget {
  TargetForm form = TargetForm::kOrigin;
  std::string_view scheme;     // absolute-form: as sent ("http", "HTTPS")
  std::string_view userinfo;   // absolute-form: "user:pass" before '@', without the '@'
  std::string_view authority;  // absolute-form (without userinfo) and authority-form
  std::string_view path;       // origin- and absolute-form; "/" when absolute-form has none
  std::string_view query;      // after '?' (without it), up to any '#'
  bool has_query = false;      // a '?' was present, even if the query is empty
};

// Splits a request-target. Never fails: a target in none of the four forms (garbage, or a
// path that does not start with '/') is treated as origin-form.
RequestTarget SplitTarget(std::string_view target);

// A "host[:port]" value: a Host header, the authority of an absolute URL, a
// Forwarded/X-Forwarded-* node. An IPv6 literal comes in brackets ("[::1]:8080"); `host`
// is returned without them.
struct HostPort {
  std::string_view host;
  uint16_t port = 0;
  bool has_port = false;
};

// Parses a host[:port] value, ignoring surrounding whitespace. std::nullopt when the host
// is empty, a bracket is unclosed, the port is not a number in 1..65535, or the value
// holds characters no host can (whitespace, '/', '@', '?', '#', '\', control bytes).
// "host:" (empty port, allowed by RFC 3986) gives has_port = false. A bare IPv6 address
// without brackets (more than one ':') is taken as a host without a port.
std::optional<HostPort> ParseHostPort(std::string_view value);

// Appends `host` as it belongs in a URL authority: IPv6 literals (anything with a ':')
// in brackets.
void AppendUrlHost(std::string* out, std::string_view host);

// The query with every non-empty value replaced by REDACTED and keys kept:
//   "a=1&b=2" -> "a=REDACTED&b=REDACTED", "a=&flag" -> "a=&flag" (nothing to hide).
// Separators ('&', ';' is not one) and empty parts are preserved.
std::string RedactQuery(std::string_view query);
void AppendRedactedQuery(std::string* out, std::string_view query);

// A low-cardinality template of a URL path, for span names and url.template. The query
// and fragment are cut off; each path segment that looks like an identifier becomes
// "{id}"; everything else is kept as sent:
//
//   segment (after percent-decoding)                    example
//   ---------------------------------------------------  ------------------------------------
//   all digits                                           /orders/12345
//   a UUID (8-4-4-4-12 hex digits)                       /u/0f8fad5b-d9cb-469f-a165-70867728950e
//   >= 16 hex digits (hashes, trace ids, object ids)     /blobs/9f86d081884c7d659a2feaa0c55ad015
//   >= 20 chars of [A-Za-z0-9_-+=] with a digit          /s/dGhpcyBpcyBhIHRva2VuMTIz
//     (base64/base64url tokens, ULIDs, slugs with dates)
//
// Segments are classified on their percent-decoded form ("%31%32" is digits) but kept as
// sent otherwise. The empty path and "/" give "/"; empty segments ("a//b") and a trailing
// slash are preserved, since servers often route them differently.
std::string UrlTemplate(std::string_view path);
// The same, appended to `*out`; returns *out.
std::string& AppendUrlTemplate(std::string* out, std::string_view path);

// True when one (already percent-decoded or raw) path segment would become "{id}".
bool LooksLikeId(std::string_view segment);

}  // namespace kspan::correlator
