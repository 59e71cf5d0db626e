// libFuzzer harness for HTTP/2 (protocols/http2): the frame parser, the streams and HPACK
// (nghttp2's inflater and the fail-closed decoder), driven through the registered
// connection the way the tracker does.
//
// The input and the three ways each input runs (whole, split, chaos) are
// fuzz/connection_harness.h's.
// And the client's bytes as one HPACK block, to an in-step decoder and a fail-closed one:
// the bounds hold, and every field the fail-closed decoder gives, the in-step one gives
// too when it did not fail (fail closed never invents a field).
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "fuzz/connection_harness.h"
#include "fuzz/fuzz_support.h"
#include "protocols/http2/hpack.h"
#include "protocols/http2/spec.h"
#include "protocols/http2/types.h"

namespace kspan::fuzz {
const char* const kHarness = "http2_fuzz";
}  // namespace kspan::fuzz

namespace {

using kspan::fuzz::Check;
using kspan::fuzz::Fail;

namespace p = kspan::protocols;
namespace h2 = kspan::protocols::http2;

std::string Describe(const p::Record& env) {
  const auto& r = std::get<h2::Record>(env.body);
  std::string s =
      std::to_string(r.stream_id) + ' ' + std::string(r.http.request.method()) + ' ' +
      std::string(r.http.request.target()) + " => " + std::to_string(r.http.response.status_code) + ' ' +
      std::to_string(r.http.request.body_size) + '/' + std::to_string(r.http.response.body_size) +
      " end=" + std::to_string(static_cast<int>(r.end)) + " code=" + std::to_string(r.error_code) +
      (r.headers_incomplete ? " incomplete" : "") + (r.http.response_missing ? " missing" : "") +
      " msgs=" + std::to_string(r.request_messages.messages) + '/' +
      std::to_string(r.response_messages.messages);
  for (const auto& [n, v] : r.http.request.headers()) s += " " + std::string(n) + ":" + std::string(v);
  for (const auto& [n, v] : r.trailers) s += " t:" + n + ":" + v;
  return s;
}

void CheckRecords(const kspan::fuzz::ConnectionRun& run) {
  for (const p::Record& env : run.records) {
    const auto* r = std::get_if<h2::Record>(&env.body);
    Check(r != nullptr, "record body is not http2");
    Check(env.seq == r->seq && r->http.seq == r->seq, "envelope and body disagree on seq");
    Check(env.response_missing == r->http.response_missing, "envelope and body disagree");
    Check(r->stream_id % 2 == 1, "a record for a stream the client did not open");
    Check(r->http.request.version() == "2", "request version is not 2");
    Check(r->http.request.body_prefix.size() <= 4096, "body prefix over its bound");
    Check(r->http.response.body_prefix.size() <= 4096, "body prefix over its bound");
    size_t bytes = 0;
    for (const auto& [n, v] : r->http.request.headers()) bytes += n.size() + v.size();
    Check(bytes <= 2 * h2::HpackDecoder::kMaxDecodedBytes + 4096, "decoded fields over their bound");
  }
}

void RunHpack(std::string_view block) {
  h2::HpackDecoder in_step;
  h2::HpackDecoder closed;
  closed.Lose();
  for (int i = 0; i < 2; ++i) {  // twice: the second block may refer to entries the first made
    const h2::HpackDecoder::Block a = in_step.Decode(block);
    const h2::HpackDecoder::Block b = closed.Decode(block);
    for (const auto* x : {&a, &b}) {
      size_t bytes = 0;
      for (const auto& [n, v] : x->fields) bytes += n.size() + v.size();
      Check(bytes <= h2::HpackDecoder::kMaxDecodedBytes, "decoded block over its bound");
    }
    if (i == 0 && !a.inflater_failed && !a.incomplete) {
      // Each field fail-closed decoding gave is one the in-step decoder gave, in order.
      size_t j = 0;
      for (const auto& f : b.fields) {
        while (j < a.fields.size() && a.fields[j] != f) ++j;
        if (j == a.fields.size()) Fail("fail-closed HPACK gave a field the in-step decoder did not");
        ++j;
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (1 << 20)) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  kspan::fuzz::FuzzConnection(h2::Spec(), input, Describe, CheckRecords);
  RunHpack(kspan::fuzz::SplitStreams(input).first.substr(0, 4096));
  return 0;
}
