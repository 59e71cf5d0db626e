// libFuzzer harness for the agent's own HTTP endpoint (--listen): http::ParseRequestHead,
// the pure function the server runs on a connection's bytes after every read
// (HttpServer::OnReadable), which reads heads with the tracer's http1 parser.
//
// Input: the bytes a client sends. A PRNG seeded by a hash of the input picks a second,
// small head limit and how the bytes are cut into reads, so every mutation also changes
// those. Each input runs, for the default limit (8 KiB) and the small one:
//   whole - one call over all the bytes: the outcome must fit the limit (kIncomplete only
//           within it, kTooLarge only past it), and a whole head must be a request the
//           server can route (path "/..." or "*", names lower case, HTTP/1.0 or 1.1) that
//           reads back the same from its own bytes and from a re-serialised copy;
//   reads - as the server parses after each read and acts on the first decision: the
//           shortest prefix that decides must agree with `whole` (a head found early is
//           the same head; garbage found early stays an error), and every prefix below
//           it stays undecided (Reads() below says how this is checked cheaply).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/http_server.h"
#include "fuzz/fuzz_support.h"

namespace kspan::fuzz {
const char* const kHarness = "http_server_fuzz";
}  // namespace kspan::fuzz

namespace {

using kspan::fuzz::Check;
using kspan::fuzz::Fnv1a;
using kspan::fuzz::Rng;

using kspan::http::HeadState;
using kspan::http::ParseRequestHead;
using kspan::http::Request;

bool Same(const Request& a, const Request& b) {
  return a.method == b.method && a.target == b.target && a.path == b.path && a.query == b.query &&
         a.minor_version == b.minor_version && a.headers == b.headers;
}

// The request as a client would send it again.
std::string Serialize(const Request& r) {
  std::string s = r.method + ' ' + r.target + " HTTP/1." + std::to_string(r.minor_version) + "\r\n";
  for (const auto& [name, value] : r.headers) s += name + ": " + value + "\r\n";
  return s + "\r\n";
}

void CheckRequest(const Request& r) {
  Check(!r.method.empty(), "empty method");
  Check(r.path == "*" || r.path.starts_with('/'), "a path the router cannot take");
  Check(r.minor_version == 0 || r.minor_version == 1, "not HTTP/1.0 or 1.1");
  for (const auto& [name, value] : r.headers) {
    Check(!name.empty(), "empty header name");
    for (char c : name) Check(!(c >= 'A' && c <= 'Z'), "header name not lower-cased");
    Check(value.empty() || (value.front() != ' ' && value.back() != ' '), "header value not trimmed");
  }
}

// One call over all of `input`; returns the outcome and checks what holds for it.
HeadState Whole(std::string_view input, size_t limit, Request* r, size_t* n) {
  const HeadState s = ParseRequestHead(input, limit, r, n);
  switch (s) {
    case HeadState::kIncomplete: Check(input.size() <= limit, "incomplete past the limit"); break;
    case HeadState::kTooLarge: Check(input.size() > limit, "too large within the limit"); break;
    case HeadState::kInvalid: break;
    case HeadState::kComplete: {
      Check(*n > 0 && *n <= limit && *n <= input.size(), "head length out of range");
      CheckRequest(*r);
      // The head alone reads the same, and so does the request written out again.
      Request again;
      size_t m = 0;
      Check(ParseRequestHead(input.substr(0, *n), limit, &again, &m) == HeadState::kComplete,
            "the head alone is not complete");
      Check(m == *n && Same(again, *r), "the head alone reads differently");
      const std::string copy = Serialize(*r);
      if (copy.size() <= limit) {
        Check(ParseRequestHead(copy, limit, &again, &m) == HeadState::kComplete,
              "a re-serialised head is not complete");
        Check(m == copy.size() && Same(again, *r), "a re-serialised head reads differently");
      }
      break;
    }
  }
  return s;
}

// The server parses everything it has after every read and acts on the first decision, so
// what matters is the shortest prefix that decides. Deciding is monotonic (a longer prefix
// decides too, and the same way), which a binary search relies on and the samples check:
// every read pattern then meets the same first decision. (Parsing after every small read
// instead made the harness quadratic in the input: ~4.7k inputs/s.)
//   - the shortest deciding prefix decides like the whole input (a head found early is the
//     same head; garbage found early stays an error), and one byte less does not decide;
//   - random prefixes are undecided below it and decide the same way above it.
HeadState Decide(std::string_view input, size_t len, size_t limit, Request* r, size_t* head) {
  *r = Request{};
  *head = 0;
  return ParseRequestHead(input.substr(0, len), limit, r, head);
}

void CheckDecision(HeadState s, const Request& r, size_t head, HeadState whole, const Request& whole_req,
                   size_t whole_n) {
  switch (s) {
    case HeadState::kComplete:
      Check(whole == HeadState::kComplete && head == whole_n && Same(r, whole_req),
            "a head found early differs from the whole input's");
      break;
    case HeadState::kInvalid:
      Check(whole == HeadState::kInvalid || whole == HeadState::kTooLarge,
            "garbage found early is not an error on the whole input");
      break;
    case HeadState::kTooLarge:
      Check(whole == HeadState::kTooLarge, "too large early, not on the whole");
      break;
    case HeadState::kIncomplete: break;
  }
}

void Reads(std::string_view input, size_t limit, HeadState whole, const Request& whole_req, size_t whole_n,
           Rng* rng) {
  Request r;
  size_t head = 0;
  if (whole == HeadState::kIncomplete) {
    for (int i = 0; i < 2 && !input.empty(); ++i) {
      Check(Decide(input, rng->In(0, input.size() - 1), limit, &r, &head) == HeadState::kIncomplete,
            "every read incomplete but the whole is not");
    }
    return;
  }
  // The shortest deciding prefix: undecided at lo (tested, or empty), decided at hi.
  size_t lo = 0, hi = input.size();
  bool lo_tested = false;
  while (hi - lo > 1) {
    const size_t mid = lo + (hi - lo) / 2;
    if (Decide(input, mid, limit, &r, &head) == HeadState::kIncomplete) {
      lo = mid;
      lo_tested = true;
    } else {
      hi = mid;
    }
  }
  if (!lo_tested)
    Check(Decide(input, lo, limit, &r, &head) == HeadState::kIncomplete, "an empty buffer decides");
  const HeadState first = Decide(input, hi, limit, &r, &head);
  Check(first != HeadState::kIncomplete, "the whole input decides, its shortest deciding prefix does not");
  CheckDecision(first, r, head, whole, whole_req, whole_n);
  // Monotonic on both sides of hi, at two random lengths.
  for (int i = 0; i < 2; ++i) {
    const size_t len = rng->In(0, input.size());
    const HeadState s = Decide(input, len, limit, &r, &head);
    Check((s == HeadState::kIncomplete) == (len < hi), "deciding is not monotonic");
    CheckDecision(s, r, head, whole, whole_req, whole_n);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (64 << 10)) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  Rng rng(Fnv1a(input));
  for (const size_t limit : {size_t{8192}, static_cast<size_t>(rng.In(16, 1024))}) {
    Request r;
    size_t n = 0;
    const HeadState whole = Whole(input, limit, &r, &n);
    Reads(input, limit, whole, r, n, &rng);
  }
  return 0;
}
