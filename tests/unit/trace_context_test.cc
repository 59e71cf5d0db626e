// W3C Trace Context Level 2 on incoming requests: every server-side case of the W3C test
// suite (github.com/w3c/trace-context, test/test.py) as a table, driven through the real
// path (HTTP/1 parser → RequestStart → Stitcher, span from BuildHttpSpan), and the edges of
// model::ParseTraceState.
//
// The suite asks a test service to receive a request and call the harness back; it then
// reads the callback's traceparent/tracestate. kspan makes no calls of its own, so each row
// checks what the suite's assertions imply for the SERVER span of the received request:
// that it continues trace 12345678901234567890123456789012 under parent 1234567890123456
// (with the received flags), or starts a new trace; and the tracestate it carries.
//
// Covered in part only:
//   - AdvancedTest.test_multiple_requests_*: the rows check the server span; that the
//     service's three callbacks get three distinct parent ids is about outgoing calls.
//   - test_traceparent_included_tracestate_missing's "different parent_id" is the server
//     span's own id, checked for every joining row.
// Not mapped: setUpModule/tearDownModule and TestBase (the harness itself).
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "correlator/http_span.h"
#include "correlator/stitcher.h"
#include "model/span.h"
#include "protocols/http1/connection.h"

namespace kspan {
namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr std::string_view kTraceId = "12345678901234567890123456789012";
constexpr std::string_view kParentId = "1234567890123456";
constexpr uint64_t kT0 = 1'700'000'000'000'000'000ull;

// traceparent with the suite's ids and these flags.
std::pair<std::string, std::string> Tp(std::string_view flags = "00") {
  return {"traceparent",
          "00-" + std::string(kTraceId) + "-" + std::string(kParentId) + "-" + std::string(flags)};
}

// Members bar<from>=<from> … bar<to>=<to>, two digits each, comma-separated.
std::string Bars(int from, int to) {
  std::string s;
  for (int i = from; i <= to; ++i) {
    const std::string n = (i < 10 ? "0" : "") + std::to_string(i);
    if (!s.empty()) s += ',';
    s += "bar" + n + "=" + n;
  }
  return s;
}

// test_tracestate_all_allowed_characters.
const std::string kKeyWithoutVendor = "abcdefghijklmnopqrstuvwxyz0123456789_-*/";
const std::string kKeyWithVendor = kKeyWithoutVendor + "@a-z0-9_-*/";
const std::string kAllValueChars = [] {
  std::string v;
  for (char c = 0x20; c <= 0x7E; ++c) {
    if (c != ',' && c != '=') v += c;
  }
  return v;
}();

struct SuiteCase {
  std::string name;  // the suite's test function without "test_", _N for its N-th request
  Headers headers;
  bool joins = false;       // the SERVER span continues kTraceId under kParentId
  uint8_t flags = 0;        // its trace flags, when it joins
  std::string trace_state;  // the exported span's trace_state
};

std::vector<SuiteCase> SuiteCases() {
  const std::string z256(256, 'z');
  const std::string k241 = std::string(241, 't') + "@" + std::string(14, 'v');
  const std::string k242 = std::string(242, 't') + "@v";
  const std::string k17 = "t@" + std::string(15, 'v');
  const std::string tp_body = std::string(kTraceId) + "-" + std::string(kParentId);
  auto tp = [](std::string v) { return std::pair<std::string, std::string>{"traceparent", std::move(v)}; };
  auto ts = [](std::string v) { return std::pair<std::string, std::string>{"tracestate", std::move(v)}; };
  return {
      // TraceContextTest
      {"both_traceparent_and_tracestate_missing", {}, false, 0, ""},
      {"traceparent_included_tracestate_missing", {Tp("01")}, true, 1, ""},
      {"traceparent_duplicated",
       {tp("00-12345678901234567890123456789011-1234567890123456-01"), tp("00-" + tp_body + "-01")},
       false,
       0,
       ""},
      {"traceparent_header_name_1", {{"trace-parent", "00-" + tp_body + "-01"}}, false, 0, ""},
      {"traceparent_header_name_2", {{"trace.parent", "00-" + tp_body + "-01"}}, false, 0, ""},
      {"traceparent_header_name_valid_casing_1", {{"TraceParent", "00-" + tp_body + "-01"}}, true, 1, ""},
      {"traceparent_header_name_valid_casing_2", {{"TrAcEpArEnT", "00-" + tp_body + "-01"}}, true, 1, ""},
      {"traceparent_header_name_valid_casing_3", {{"TRACEPARENT", "00-" + tp_body + "-01"}}, true, 1, ""},
      {"traceparent_version_0x00_1", {tp("00-" + tp_body + "-01.")}, false, 0, ""},
      {"traceparent_version_0x00_2",
       {tp("00-" + tp_body + "-01-what-the-future-will-be-like")},
       false,
       0,
       ""},
      {"traceparent_version_0xcc_1", {tp("cc-" + tp_body + "-01")}, true, 1, ""},
      {"traceparent_version_0xcc_2", {tp("cc-" + tp_body + "-01-what-the-future-will-be-like")}, true, 1, ""},
      {"traceparent_version_0xcc_3",
       {tp("cc-" + tp_body + "-01.what-the-future-will-be-like")},
       false,
       0,
       ""},
      {"traceparent_version_0xff", {tp("ff-" + tp_body + "-01")}, false, 0, ""},
      {"traceparent_version_illegal_characters_1", {tp(".0-" + tp_body + "-01")}, false, 0, ""},
      {"traceparent_version_illegal_characters_2", {tp("0.-" + tp_body + "-01")}, false, 0, ""},
      {"traceparent_version_too_long_1", {tp("000-" + tp_body + "-01")}, false, 0, ""},
      {"traceparent_version_too_long_2", {tp("0000-" + tp_body + "-01")}, false, 0, ""},
      {"traceparent_version_too_short", {tp("0-" + tp_body + "-01")}, false, 0, ""},
      {"traceparent_trace_id_all_zero",
       {tp("00-00000000000000000000000000000000-1234567890123456-01")},
       false,
       0,
       ""},
      {"traceparent_trace_id_illegal_characters_1",
       {tp("00-.2345678901234567890123456789012-1234567890123456-01")},
       false,
       0,
       ""},
      {"traceparent_trace_id_illegal_characters_2",
       {tp("00-1234567890123456789012345678901.-1234567890123456-01")},
       false,
       0,
       ""},
      {"traceparent_trace_id_too_long",
       {tp("00-123456789012345678901234567890123-1234567890123456-01")},
       false,
       0,
       ""},
      {"traceparent_trace_id_too_short",
       {tp("00-1234567890123456789012345678901-1234567890123456-01")},
       false,
       0,
       ""},
      {"traceparent_parent_id_all_zero",
       {tp("00-12345678901234567890123456789012-0000000000000000-01")},
       false,
       0,
       ""},
      {"traceparent_parent_id_illegal_characters_1",
       {tp("00-12345678901234567890123456789012-.234567890123456-01")},
       false,
       0,
       ""},
      {"traceparent_parent_id_illegal_characters_2",
       {tp("00-12345678901234567890123456789012-123456789012345.-01")},
       false,
       0,
       ""},
      {"traceparent_parent_id_too_long",
       {tp("00-12345678901234567890123456789012-12345678901234567-01")},
       false,
       0,
       ""},
      {"traceparent_parent_id_too_short",
       {tp("00-12345678901234567890123456789012-123456789012345-01")},
       false,
       0,
       ""},
      {"traceparent_trace_flags_illegal_characters_1", {tp("00-" + tp_body + "-.0")}, false, 0, ""},
      {"traceparent_trace_flags_illegal_characters_2", {tp("00-" + tp_body + "-0.")}, false, 0, ""},
      {"traceparent_trace_flags_too_long", {tp("00-" + tp_body + "-001")}, false, 0, ""},
      {"traceparent_trace_flags_too_short", {tp("00-" + tp_body + "-1")}, false, 0, ""},
      {"traceparent_ows_handling_1", {tp(" 00-" + tp_body + "-01")}, true, 1, ""},
      {"traceparent_ows_handling_2", {tp("\t00-" + tp_body + "-01")}, true, 1, ""},
      {"traceparent_ows_handling_3", {tp("00-" + tp_body + "-01 ")}, true, 1, ""},
      {"traceparent_ows_handling_4", {tp("00-" + tp_body + "-01\t")}, true, 1, ""},
      {"traceparent_ows_handling_5", {tp("\t 00-" + tp_body + "-01 \t")}, true, 1, ""},
      {"tracestate_included_traceparent_missing_1", {ts("foo=1")}, false, 0, ""},
      {"tracestate_included_traceparent_missing_2", {ts("foo=1,bar=2")}, false, 0, ""},
      {"tracestate_included_traceparent_included", {Tp(), ts("foo=1,bar=2")}, true, 0, "foo=1,bar=2"},
      {"tracestate_header_name_1", {Tp(), {"trace-state", "foo=1"}}, true, 0, ""},
      {"tracestate_header_name_2", {Tp(), {"trace.state", "foo=1"}}, true, 0, ""},
      {"tracestate_header_name_valid_casing_1", {Tp(), {"TraceState", "foo=1"}}, true, 0, "foo=1"},
      {"tracestate_header_name_valid_casing_2", {Tp(), {"TrAcEsTaTe", "foo=1"}}, true, 0, "foo=1"},
      {"tracestate_header_name_valid_casing_3", {Tp(), {"TRACESTATE", "foo=1"}}, true, 0, "foo=1"},
      {"tracestate_empty_header_1", {Tp(), ts("")}, true, 0, ""},
      {"tracestate_empty_header_2", {Tp(), ts("foo=1"), ts("")}, true, 0, "foo=1"},
      {"tracestate_empty_header_3", {Tp(), ts(""), ts("foo=1")}, true, 0, "foo=1"},
      {"tracestate_multiple_headers_different_keys",
       {Tp(), ts("foo=1,bar=2"), ts("rojo=1,congo=2"), ts("baz=3")},
       true,
       0,
       "foo=1,bar=2,rojo=1,congo=2,baz=3"},
      // Either kept or one discarded, says the suite: kspan keeps the leftmost.
      {"tracestate_duplicated_keys_1", {Tp(), ts("foo=1,foo=1")}, true, 0, "foo=1"},
      {"tracestate_duplicated_keys_2", {Tp(), ts("foo=1,foo=2")}, true, 0, "foo=1"},
      {"tracestate_duplicated_keys_3", {Tp(), ts("foo=1"), ts("foo=1")}, true, 0, "foo=1"},
      {"tracestate_duplicated_keys_4", {Tp(), ts("foo=1"), ts("foo=2")}, true, 0, "foo=1"},
      {"tracestate_all_allowed_characters_1",
       {Tp(), ts(kKeyWithoutVendor + "=" + kAllValueChars)},
       true,
       0,
       kKeyWithoutVendor + "=" + kAllValueChars},
      {"tracestate_all_allowed_characters_2",
       {Tp(), ts(kKeyWithVendor + "=" + kAllValueChars)},
       true,
       0,
       kKeyWithVendor + "=" + kAllValueChars},
      {"tracestate_ows_handling_1",
       {Tp(), ts("foo=1 \t , \t bar=2, \t baz=3")},
       true,
       0,
       "foo=1,bar=2,baz=3"},
      {"tracestate_ows_handling_2",
       {Tp(), ts("foo=1\t \t,\t \tbar=2,\t \tbaz=3")},
       true,
       0,
       "foo=1,bar=2,baz=3"},
      {"tracestate_ows_handling_3", {Tp(), ts(" foo=1")}, true, 0, "foo=1"},
      {"tracestate_ows_handling_4", {Tp(), ts("\tfoo=1")}, true, 0, "foo=1"},
      {"tracestate_ows_handling_5", {Tp(), ts("foo=1 ")}, true, 0, "foo=1"},
      {"tracestate_ows_handling_6", {Tp(), ts("foo=1\t")}, true, 0, "foo=1"},
      {"tracestate_ows_handling_7", {Tp(), ts("\t foo=1 \t")}, true, 0, "foo=1"},
      {"tracestate_key_illegal_characters_1", {Tp(), ts("foo =1")}, true, 0, ""},
      {"tracestate_key_illegal_characters_2", {Tp(), ts("FOO=1")}, true, 0, ""},
      {"tracestate_key_illegal_characters_3", {Tp(), ts("foo.bar=1")}, true, 0, ""},
      {"tracestate_key_illegal_vendor_format_1", {Tp(), ts("foo@=1,bar=2")}, true, 0, "foo@=1,bar=2"},
      {"tracestate_key_illegal_vendor_format_2", {Tp(), ts("@foo=1,bar=2")}, true, 0, ""},
      {"tracestate_key_illegal_vendor_format_3", {Tp(), ts("foo@@bar=1,bar=2")}, true, 0, "foo@@bar=1,bar=2"},
      {"tracestate_key_illegal_vendor_format_4",
       {Tp(), ts("foo@bar@baz=1,bar=2")},
       true,
       0,
       "foo@bar@baz=1,bar=2"},
      {"tracestate_member_count_limit_1",
       {Tp(), ts(Bars(1, 10)), ts(Bars(11, 20)), ts(Bars(21, 30)), ts(Bars(31, 32))},
       true,
       0,
       Bars(1, 32)},
      {"tracestate_member_count_limit_2",
       {Tp(), ts(Bars(1, 10)), ts(Bars(11, 20)), ts(Bars(21, 30)), ts(Bars(31, 33))},
       true,
       0,
       ""},
      {"tracestate_key_length_limit_1",
       {Tp(), ts("foo=1"), ts(z256 + "=1")},
       true,
       0,
       "foo=1," + z256 + "=1"},
      {"tracestate_key_length_limit_2", {Tp(), ts("foo=1"), ts(z256 + "z=1")}, true, 0, ""},
      {"tracestate_key_length_limit_3",
       {Tp(), ts("foo=1"), ts(k241 + "=1")},
       true,
       0,
       "foo=1," + k241 + "=1"},
      {"tracestate_key_length_limit_4",
       {Tp(), ts("foo=1"), ts(k242 + "=1")},
       true,
       0,
       "foo=1," + k242 + "=1"},
      {"tracestate_key_length_limit_5", {Tp(), ts("foo=1"), ts(k17 + "=1")}, true, 0, "foo=1," + k17 + "=1"},
      {"tracestate_value_illegal_characters_1", {Tp(), ts("foo=bar=baz")}, true, 0, ""},
      {"tracestate_value_illegal_characters_2", {Tp(), ts("foo=,bar=3")}, true, 0, ""},
      // AdvancedTest (the server span only; see the top of the file)
      {"multiple_requests_with_valid_traceparent", {Tp("01")}, true, 1, ""},
      {"multiple_requests_without_traceparent", {}, false, 0, ""},
      {"multiple_requests_with_illegal_traceparent",
       {tp("00-00000000000000000000000000000000-1234567890123456-01")},
       false,
       0,
       ""},
      // TraceContext2Test
      {"propagates_random_flag", {Tp("02")}, true, 2, ""},
  };
}

// One request with these header fields received by a server (pid 10) from another host,
// answered 200, through the parser, the span builder and the stitcher; the exported span.
model::Span ServeOne(const Headers& headers) {
  std::string request = "POST /test HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n";
  for (const auto& [name, value] : headers) request += name + ": " + value + "\r\n";
  request += "\r\n";
  const std::string response = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

  protocols::http1::Connection conn(/*egress_is_request=*/false, {});
  conn.AddData(/*egress=*/false, 0, request, static_cast<uint32_t>(request.size()), kT0, kT0 + 5, 11);
  conn.AddData(/*egress=*/true, 0, response, static_cast<uint32_t>(response.size()), kT0 + 100, kT0 + 105,
               11);
  std::vector<protocols::http1::Record> records;
  std::vector<protocols::RequestStart> started;
  protocols::http1::Stats stats;
  conn.Drain(&records, &stats, &started);
  EXPECT_EQ(stats.frames_invalid, 0u);
  if (records.size() != 1 || started.size() != 1) {
    ADD_FAILURE() << "records " << records.size() << ", started " << started.size();
    return {};
  }

  metrics::Registry metrics;
  std::vector<model::Span> out;
  correlator::Stitcher stitcher({}, &metrics, [&out](model::Span&& s) { out.push_back(std::move(s)); });
  events::SocketTuple tuple;
  tuple.family = 2;
  tuple.local = {"10.0.0.1", 8080};
  tuple.remote = {"10.0.0.2", 40000};
  correlator::RequestSeen seen;
  seen.conn = {10, 4, 1};
  seen.seq = started[0].seq;
  seen.server = true;
  seen.tuple = tuple;
  seen.tuple_known = true;
  seen.timing = started[0].timing;
  seen.traceparent = std::move(started[0].traceparent);
  seen.tracestate = std::move(started[0].tracestate);
  stitcher.OnRequest(std::move(seen));

  correlator::HttpConnContext ctx;
  ctx.is_server = true;
  ctx.tuple = &tuple;
  ctx.pid = 10;
  stitcher.OnSpan({.conn = {10, 4, 1}, .seq = records[0].seq, .response = records[0].response.timing},
                  correlator::BuildHttpSpan(records[0], ctx, nullptr, {}));
  stitcher.FlushAll();
  if (out.size() != 1) {
    ADD_FAILURE() << "exported " << out.size() << " spans";
    return {};
  }
  return std::move(out[0]);
}

class W3cSuiteTest : public ::testing::TestWithParam<SuiteCase> {};

TEST_P(W3cSuiteTest, ServerSpan) {
  const SuiteCase& c = GetParam();
  const model::Span s = ServeOne(c.headers);
  EXPECT_EQ(s.kind, model::SpanKind::kServer);
  ASSERT_TRUE(s.trace_id.IsValid());
  ASSERT_TRUE(s.span_id.IsValid());
  if (c.joins) {
    EXPECT_EQ(s.trace_id.Hex(), kTraceId);
    EXPECT_EQ(s.parent_span_id.Hex(), kParentId);
    EXPECT_NE(s.span_id.Hex(), kParentId);
    EXPECT_EQ(s.trace_flags, c.flags);
  } else {
    EXPECT_NE(s.trace_id.Hex(), kTraceId) << "a new trace";
    EXPECT_NE(s.trace_id.Hex(), "12345678901234567890123456789011");
    EXPECT_FALSE(s.parent_span_id.IsValid());
  }
  EXPECT_EQ(s.trace_state, c.trace_state);
}

INSTANTIATE_TEST_SUITE_P(W3c, W3cSuiteTest, ::testing::ValuesIn(SuiteCases()),
                         [](const ::testing::TestParamInfo<SuiteCase>& info) { return info.param.name; });

// ParseTraceState's edges.

std::optional<std::string> Parse(std::initializer_list<std::string_view> fields) {
  return model::ParseTraceState({fields.begin(), fields.size()});
}

std::string Members(int n, std::string_view prefix = "k") {
  std::string s;
  for (int i = 0; i < n; ++i) {
    if (i) s += ',';
    s += std::string(prefix) + std::to_string(i) + "=v";
  }
  return s;
}

TEST(ParseTraceStateTest, EmptyInputIsAnEmptyList) {
  EXPECT_EQ(Parse({}), "");
  EXPECT_EQ(Parse({""}), "");
  EXPECT_EQ(Parse({" , \t,", ""}), "");
}

TEST(ParseTraceStateTest, ThirtyTwoMembersAreKeptThirtyThreeDiscardTheList) {
  EXPECT_EQ(Parse({Members(32)}), Members(32));
  EXPECT_EQ(Parse({Members(33)}), std::nullopt);
  // Empty members are not members.
  const std::string with_empties = ",," + Members(16) + ", ,\t," + Members(16, "j") + ",";
  EXPECT_EQ(Parse({with_empties}), Members(16) + "," + Members(16, "j"));
  // Split over fields, the count is of the combined list.
  EXPECT_EQ(Parse({Members(16), Members(17, "j")}), std::nullopt);
}

TEST(ParseTraceStateTest, ValuesUpTo256Characters) {
  const std::string v256(256, 'v');
  EXPECT_EQ(Parse({"a=" + v256}), "a=" + v256);
  EXPECT_EQ(Parse({"a=" + v256 + "v"}), std::nullopt);
  // Leading spaces belong to the value; trailing ones are OWS.
  EXPECT_EQ(Parse({"a=  x  "}), "a=  x");
  EXPECT_EQ(Parse({"a=" + std::string(255, ' ') + "x"}), "a=" + std::string(255, ' ') + "x");
  EXPECT_EQ(Parse({"a=" + std::string(256, ' ') + "x"}), std::nullopt);
  EXPECT_EQ(Parse({"a= "}), std::nullopt) << "a value of spaces only is empty";
}

TEST(ParseTraceStateTest, KeysUpTo256Characters) {
  EXPECT_EQ(Parse({std::string(256, 'k') + "=1"}), std::string(256, 'k') + "=1");
  EXPECT_EQ(Parse({std::string(257, 'k') + "=1"}), std::nullopt);
  EXPECT_EQ(Parse({"0abc=1"}), "0abc=1") << "a key may start with a digit";
}

TEST(ParseTraceStateTest, DuplicateKeysKeepTheLeftmost) {
  EXPECT_EQ(Parse({"a=1,b=2,a=3"}), "a=1,b=2");
  EXPECT_EQ(Parse({"a=1", "b=2", "a=3,c=4"}), "a=1,b=2,c=4");
  EXPECT_EQ(Parse({"a@x=1,a@y=2,a@x=3"}), "a@x=1,a@y=2");
}

TEST(ParseTraceStateTest, KeysWithAtSigns) {
  EXPECT_EQ(Parse({"tenant@vendor=1"}), "tenant@vendor=1");
  EXPECT_EQ(Parse({"0@v=1"}), "0@v=1");
  EXPECT_EQ(Parse({"t@" + std::string(254, 'v') + "=1"}), "t@" + std::string(254, 'v') + "=1");
  EXPECT_EQ(Parse({"t@" + std::string(255, 'v') + "=1"}), std::nullopt);
  EXPECT_EQ(Parse({"@v=1"}), std::nullopt);
  EXPECT_EQ(Parse({"t@V=1"}), std::nullopt);
}

TEST(ParseTraceStateTest, InvalidCharactersDiscardTheList) {
  for (const std::string_view bad : {
           "a=1,B=2",         // uppercase key
           "a=1,_b=2",        // key starting with '_'
           "a=1,b.c=2",       // '.' in a key
           "a=1,b c=2",       // space in a key
           "a=1,b=x\ty",      // tab in a value
           "a=1,b=x\x7f",     // DEL in a value
           "a=1,b=\xc3\xa9",  // non-ASCII in a value
           "a=1,b=x=y",       // '=' in a value
           "a=1,b",           // no '='
           "a=1,=2",          // no key
           "a=1,b=",          // no value
       }) {
    EXPECT_EQ(model::ParseTraceState({&bad, 1}), std::nullopt) << bad;
  }
}

TEST(ParseTraceStateTest, TooLongListsLoseEntriesOver128CharactersFirstThenFromTheEnd) {
  // 8 members of 253 characters then 24 of 104: 4,551 bytes with commas. Cutting the two
  // last large ones (to 4,043) fits kMaxTraceStateBytes.
  std::vector<std::string> big, small;
  for (int i = 0; i < 8; ++i) big.push_back("b" + std::to_string(i) + "=" + std::string(250, 'x'));
  for (int i = 10; i < 34; ++i) small.push_back("s" + std::to_string(i) + "=" + std::string(100, 'y'));
  auto join = [](const std::vector<std::string>& a, size_t n_a, const std::vector<std::string>& b) {
    std::string s;
    for (size_t i = 0; i < n_a; ++i) s += (s.empty() ? "" : ",") + a[i];
    for (const auto& m : b) s += (s.empty() ? "" : ",") + m;
    return s;
  };
  const std::string in = join(big, 8, small);
  ASSERT_EQ(in.size(), 4551u);
  const std::string want = join(big, 6, small);
  ASSERT_EQ(want.size(), 4043u);
  EXPECT_EQ(Parse({in}), want);

  // Only small members: cut from the end. 32 of 128 characters are 4,127 bytes.
  std::vector<std::string> m128;
  for (int i = 10; i < 42; ++i) m128.push_back("k" + std::to_string(i) + "=" + std::string(124, 'z'));
  const std::string all = join(m128, 32, {});
  ASSERT_EQ(all.size(), 4127u);
  EXPECT_EQ(Parse({all}), join(m128, 31, {}));
  EXPECT_LE(model::kMaxTraceStateBytes, 4096u);
}

}  // namespace
}  // namespace kspan
