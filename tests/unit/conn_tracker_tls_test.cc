// The connection tracker's TLS paths driven by synthetic events: ciphertext recognised and
// set aside, plaintext from the TLS uprobes restarting a connection's streams, and
// unbound TLS writes (node's memory BIOs) held until a bind event places them.
//
// What the kernel sends for one TLS connection (bpf/tls.bpf.c, tls.bpf.h):
//
//   handshake      syscall events, tls=0, socket positions       (ciphertext)
//   first SSL_*    the connection is marked TLS: positions restart at 0, its syscall
//                  events stop, SSL_read/SSL_write plaintext comes with tls=1
//   node writes    tls=1 unbound=1, fd -1, generation = SSL*, positions from 0 per SSL*,
//                  then a bind event: those bytes sit at egress [position, +bytes)
//   close          totals count plaintext once marked, ciphertext otherwise
#include <gtest/gtest.h>

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "conntrack/conn_tracker.h"

namespace kspan::conntrack {
namespace {

using namespace std::string_literals;  // "\x16\x03\x01..."s keeps embedded NULs
using events::ConnKey;
using events::Direction;
using events::Role;

// A TLS record header and `len` bytes of opaque payload.
std::string Record(uint8_t type, uint8_t minor, size_t len) {
  std::string r;
  r += static_cast<char>(type);
  r += '\x03';
  r += static_cast<char>(minor);
  r += static_cast<char>(len >> 8);
  r += static_cast<char>(len & 0xff);
  for (size_t i = 0; i < len; ++i) r += static_cast<char>(0x80 + (i * 37) % 127);
  return r;
}
const std::string kClientHello = Record(0x16, 0x01, 0x2f);  // 16 03 01 00 2f ...
const std::string kServerHello = Record(0x16, 0x03, 0x3a);
const std::string kAppData = Record(0x17, 0x03, 0x40);

const std::string kReq = "GET /secret?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n";
const std::string kResp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";

// Builds the events of one connection as the kernel would send them, keeping socket
// (ciphertext) and plaintext positions apart.
class TlsEventGenerator {
 public:
  TlsEventGenerator(ConnKey key, Role role) : key_(key), role_(role) {}

  events::ConnOpenEvent Open() {
    events::ConnOpenEvent e;
    e.key = key_;
    e.ts_ns = Tick();
    e.role = role_;
    e.tuple.family = 2;
    e.tuple.local = {"127.0.0.1", static_cast<uint16_t>(role_ == Role::kServer ? 8443 : 50000)};
    e.tuple.remote = {"127.0.0.1", static_cast<uint16_t>(role_ == Role::kServer ? 50000 : 8443)};
    return e;
  }
  // A socket syscall's bytes (tls=0). Before the connection is marked TLS these count in
  // the socket's positions; after, the kernel would not send them (tests that do so
  // simulate a record that slipped through).
  events::DataEvent Cipher(Direction dir, const std::string& data) {
    uint64_t& pos = dir == Direction::kEgress ? cipher_out_ : cipher_in_;
    events::DataEvent e = Make(dir, data, pos);
    pos += data.size();
    return e;
  }
  // SSL_read/SSL_write plaintext of a known socket (tls=1).
  events::DataEvent Plain(Direction dir, const std::string& data) {
    Mark();
    uint64_t& pos = dir == Direction::kEgress ? plain_out_ : plain_in_;
    events::DataEvent e = Make(dir, data, pos);
    e.tls = true;
    pos += data.size();
    return e;
  }
  // SSL_write plaintext before the socket is known (tls=1, unbound=1).
  events::DataEvent Unbound(uint64_t ssl, const std::string& data) {
    events::DataEvent e = Make(Direction::kEgress, data, unbound_);
    e.key = {key_.pid, -1, ssl};
    e.role = Role::kUnknown;
    e.tls = true;
    e.unbound = true;
    unbound_ += data.size();
    return e;
  }
  // The kernel lost track of the pending writes (another turn): the next unbound write
  // of the object starts again at position 0.
  void NewTurn() { unbound_ = 0; }
  // The socket write after the unbound writes: they take the next egress positions.
  events::TlsBindEvent Bind(uint64_t ssl) {
    Mark();
    events::TlsBindEvent b;
    b.key = key_;
    b.tid = key_.pid;
    b.ts_ns = Tick();
    b.ssl = ssl;
    b.position = plain_out_;
    b.bytes = unbound_;
    plain_out_ += unbound_;
    unbound_ = 0;
    return b;
  }
  events::ConnCloseEvent Close() {
    events::ConnCloseEvent e;
    e.key = key_;
    e.ts_ns = Tick();
    e.bytes_sent = marked_ ? plain_out_ : cipher_out_;
    e.bytes_received = marked_ ? plain_in_ : cipher_in_;
    return e;
  }
  uint64_t now() const { return now_; }

 private:
  events::DataEvent Make(Direction dir, const std::string& data, uint64_t position) {
    storage_.push_back(data);
    events::DataEvent e;
    e.key = key_;
    e.tid = key_.pid;
    e.enter_ns = Tick();
    e.exit_ns = Tick();
    e.direction = dir;
    e.role = role_;
    e.position = position;
    e.total_len = static_cast<uint32_t>(data.size());
    e.data = storage_.back();
    return e;
  }
  void Mark() { marked_ = true; }
  uint64_t Tick() { return now_ += 1000; }

  ConnKey key_;
  Role role_;
  uint64_t now_ = 1'700'000'000'000'000'000ull;
  uint64_t cipher_out_ = 0, cipher_in_ = 0, plain_out_ = 0, plain_in_ = 0, unbound_ = 0;
  bool marked_ = false;
  std::deque<std::string> storage_;
};

class TlsTrackerTest : public ::testing::Test {
 protected:
  TlsTrackerTest() { Reset(TrackerOptions{}); }
  void Reset(const TrackerOptions& options) {
    tracker_.reset();
    tracker_ = std::make_unique<ConnTracker>(
        options, &metrics_,
        TrackerSinks{.on_record =
                         [this](const ConnInfo& c, protocols::Record&& r) {
                           out_.emplace_back(c, std::get<protocols::http1::Record>(std::move(r.body)));
                         },
                     .on_ciphertext = [this](const ConnInfo& c) { ciphertext_.push_back(c); }});
  }
  template <typename... E>
  void Batch(const E&... events) {
    (Feed(events), ...);
    tracker_->DrainPending();
  }
  void Feed(const events::ConnOpenEvent& e) { tracker_->OnOpen(e); }
  void Feed(const events::DataEvent& e) { tracker_->OnData(e); }
  void Feed(const events::ConnCloseEvent& e) { tracker_->OnClose(e); }
  void Feed(const events::TlsBindEvent& e) { tracker_->OnTlsBind(e); }
  uint64_t Value(const std::string& name, const metrics::Labels& labels = {}) {
    return metrics_.GetCounter(name, labels)->Value();
  }
  uint64_t ParseFailures() { return metrics_.Sum("kspan_parse_failures_total"); }
  uint64_t NotCaptured() { return Value("kspan_tls_connections_total", {{"plaintext", "not_captured"}}); }
  uint64_t Captured() { return Value("kspan_tls_connections_total", {{"plaintext", "captured"}}); }
  uint64_t CipherIgnored() { return Value("kspan_tls_ciphertext_bytes_ignored_total"); }
  uint64_t UnboundDropped() {
    return Value("kspan_tls_plaintext_dropped_total", {{"reason", "socket_unknown"}});
  }

  metrics::Registry metrics_;
  std::vector<std::pair<ConnInfo, protocols::http1::Record>> out_;
  std::vector<ConnInfo> ciphertext_;
  std::unique_ptr<ConnTracker> tracker_;
};

// (a) A server: the ClientHello arrives as ciphertext, then SSL_read/SSL_write plaintext.
TEST_F(TlsTrackerTest, HandshakeThenPlaintextIsOneTlsRecord) {
  TlsEventGenerator g({300, 7, 1}, Role::kServer);
  tracker_->OnOpen(g.Open());
  Batch(g.Cipher(Direction::kIngress, kClientHello));
  Batch(g.Cipher(Direction::kEgress, kServerHello));
  EXPECT_TRUE(out_.empty());
  Batch(g.Plain(Direction::kIngress, kReq));
  Batch(g.Plain(Direction::kEgress, kResp));
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_TRUE(out_[0].first.tls);
  EXPECT_EQ(out_[0].first.role, Role::kServer);
  EXPECT_FALSE(out_[0].first.role_inferred);
  EXPECT_TRUE(out_[0].first.tuple_known);
  EXPECT_EQ(out_[0].second.request.method(), "GET");
  EXPECT_EQ(out_[0].second.request.target(), "/secret?x=1");
  EXPECT_EQ(out_[0].second.response.status_code, 200);
  EXPECT_EQ(ParseFailures(), 0u);
  ASSERT_EQ(ciphertext_.size(), 1u) << "the TLS module hears of the connection once";
  EXPECT_EQ(ciphertext_[0].key.pid, 300u);
  EXPECT_EQ(CipherIgnored(), kClientHello.size() + kServerHello.size());
  tracker_->OnClose(g.Close());
  EXPECT_EQ(out_.size(), 1u);
  EXPECT_EQ(Captured(), 1u);
  EXPECT_EQ(NotCaptured(), 0u);
  EXPECT_EQ(tracker_->gaps_detected(), 0u);
  EXPECT_EQ(metrics_.Sum("kspan_connections_unrecognised_total"), 0u);
  EXPECT_EQ(tracker_->size(), 0u);
}

// The handshake's ciphertext may reach user space after the first plaintext (another
// CPU's ring-buffer slot): it is still set aside.
TEST_F(TlsTrackerTest, HandshakeArrivingAfterPlaintextIsIgnored) {
  TlsEventGenerator g({300, 8, 2}, Role::kServer);
  tracker_->OnOpen(g.Open());
  auto hello = g.Cipher(Direction::kIngress, kClientHello);
  auto req = g.Plain(Direction::kIngress, kReq);
  Batch(req, hello);
  Batch(g.Plain(Direction::kEgress, kResp));
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_TRUE(out_[0].first.tls);
  EXPECT_EQ(ParseFailures(), 0u);
  EXPECT_EQ(CipherIgnored(), kClientHello.size());
}

// (b) A binary kspan cannot see into: only ciphertext, then close.
TEST_F(TlsTrackerTest, CiphertextOnlyIsCountedAsNotCaptured) {
  TlsEventGenerator g({301, 7, 1}, Role::kClient);
  tracker_->OnOpen(g.Open());
  Batch(g.Cipher(Direction::kEgress, kClientHello));
  Batch(g.Cipher(Direction::kIngress, kServerHello));
  Batch(g.Cipher(Direction::kEgress, kAppData));
  Batch(g.Cipher(Direction::kIngress, kAppData + kAppData));
  tracker_->OnClose(g.Close());
  EXPECT_TRUE(out_.empty());
  EXPECT_EQ(ParseFailures(), 0u);
  EXPECT_EQ(NotCaptured(), 1u);
  EXPECT_EQ(Captured(), 0u);
  EXPECT_EQ(ciphertext_.size(), 1u);
  EXPECT_EQ(CipherIgnored(), kClientHello.size() + kServerHello.size() + 3 * kAppData.size());
  EXPECT_EQ(metrics_.Sum("kspan_connections_unrecognised_total"), 0u) << "TLS is recognised, not 'unknown'";
  EXPECT_EQ(metrics_.Sum("kspan_bytes_ignored_total"), 0u) << "counted as ciphertext, not twice";
  EXPECT_EQ(tracker_->size(), 0u);
}

// Every byte of an uncaptured TLS connection reached user space and was set aside on
// purpose: the kernel's close totals (ciphertext) match what came, so no stream gap.
TEST_F(TlsTrackerTest, CiphertextOnlyConnectionIsNotAStreamGap) {
  TlsEventGenerator g({301, 8, 2}, Role::kClient);
  tracker_->OnOpen(g.Open());
  Batch(g.Cipher(Direction::kEgress, kClientHello));
  Batch(g.Cipher(Direction::kIngress, kServerHello));
  Batch(g.Cipher(Direction::kEgress, kAppData));
  tracker_->OnClose(g.Close());
  EXPECT_EQ(NotCaptured(), 1u);
  EXPECT_EQ(tracker_->gaps_detected(), 0u)
      << "ciphertext that was received and ignored is reported as a kspan_stream_gaps_total gap";
}

// A connection open before kspan started, caught in the middle of TLS application data.
TEST_F(TlsTrackerTest, MidstreamCiphertextIsRecognised) {
  TlsEventGenerator g({302, 9, 3}, Role::kUnknown);
  Batch(g.Cipher(Direction::kIngress, kAppData));  // no open event: first sight
  Batch(g.Cipher(Direction::kEgress, kAppData));
  EXPECT_EQ(ciphertext_.size(), 1u);
  EXPECT_EQ(ParseFailures(), 0u);
  EXPECT_EQ(metrics_.Sum("kspan_connections_unrecognised_total"), 0u);
  tracker_->OnProcessExit(302);
  EXPECT_EQ(NotCaptured(), 1u);
}

// (c) node: SSL_write into a memory BIO before the socket is known; the socket write
// that follows binds the bytes; the response comes through SSL_read on a known socket.
TEST_F(TlsTrackerTest, UnboundWritesBoundToTheirConnectionMakeOneRecord) {
  const uint64_t ssl = 0x5555'0000'1230;
  TlsEventGenerator g({303, 11, 4}, Role::kClient);
  tracker_->OnOpen(g.Open());
  Batch(g.Cipher(Direction::kEgress, kClientHello));
  Batch(g.Cipher(Direction::kIngress, kServerHello));
  // The request in two SSL_write calls, then the bind.
  auto w1 = g.Unbound(ssl, kReq.substr(0, 10));  // sequenced: argument order is unspecified
  auto w2 = g.Unbound(ssl, kReq.substr(10));
  Batch(w1, w2);
  EXPECT_TRUE(out_.empty());
  Batch(g.Bind(ssl));
  Batch(g.Plain(Direction::kIngress, kResp));
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_TRUE(out_[0].first.tls);
  EXPECT_EQ(out_[0].first.key, (ConnKey{303, 11, 4}));
  EXPECT_EQ(out_[0].first.role, Role::kClient);
  EXPECT_EQ(out_[0].second.request.method(), "GET");
  EXPECT_EQ(out_[0].second.request.target(), "/secret?x=1");
  EXPECT_EQ(out_[0].second.response.status_code, 200);
  EXPECT_EQ(ParseFailures(), 0u);
  EXPECT_EQ(UnboundDropped(), 0u);
  tracker_->OnClose(g.Close());
  EXPECT_EQ(Captured(), 1u);
  EXPECT_EQ(NotCaptured(), 0u);
  EXPECT_EQ(tracker_->gaps_detected(), 0u);
  EXPECT_EQ(tracker_->size(), 0u) << "the unbound key (fd -1) never became a connection";
}

// Keep-alive: the second request of a known TLS object comes bound; only the first was
// unbound. Both come out, in order.
TEST_F(TlsTrackerTest, UnboundFirstRequestThenBoundSecondRequest) {
  const uint64_t ssl = 0x5555'0000'2000;
  TlsEventGenerator g({304, 12, 5}, Role::kClient);
  tracker_->OnOpen(g.Open());
  Batch(g.Cipher(Direction::kEgress, kClientHello));
  Batch(g.Unbound(ssl, kReq));
  Batch(g.Bind(ssl));
  Batch(g.Plain(Direction::kIngress, kResp));
  Batch(g.Plain(Direction::kEgress, "GET /two HTTP/1.1\r\nHost: example.com\r\n\r\n"));
  Batch(g.Plain(Direction::kIngress, kResp));
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_EQ(out_[0].second.request.target(), "/secret?x=1");
  EXPECT_EQ(out_[1].second.request.target(), "/two");
  EXPECT_EQ(ParseFailures(), 0u);
}

// A bind for an object with nothing held (already expired, or never seen) changes nothing.
TEST_F(TlsTrackerTest, BindWithoutHeldWritesIsHarmless) {
  TlsEventGenerator g({305, 13, 6}, Role::kClient);
  tracker_->OnOpen(g.Open());
  events::TlsBindEvent b = g.Bind(0xdead);
  b.bytes = 100;
  Batch(b);
  EXPECT_TRUE(out_.empty());
  EXPECT_EQ(tracker_->size(), 1u);
  EXPECT_EQ(UnboundDropped(), 0u);
}

// Bytes the bind does not cover (positions past its `bytes`) are not placed on the
// connection: they are counted as dropped.
TEST_F(TlsTrackerTest, UnboundWritesPastTheBoundRangeAreDropped) {
  const uint64_t ssl = 0x5555'0000'3000;
  TlsEventGenerator g({306, 14, 7}, Role::kClient);
  tracker_->OnOpen(g.Open());
  auto first = g.Unbound(ssl, kReq);
  events::TlsBindEvent b = g.Bind(ssl);  // covers kReq only
  auto extra = g.Unbound(ssl, "x");
  extra.position = kReq.size();  // as if it followed in the same run of unbound writes
  Batch(first, extra, b);
  Batch(g.Plain(Direction::kIngress, kResp));
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].second.request.target(), "/secret?x=1");
  EXPECT_EQ(UnboundDropped(), 1u);
}

// (d) Unbound writes whose socket never shows up are dropped after unbound_timeout_ns.
TEST_F(TlsTrackerTest, UnboundWritesNeverBoundExpire) {
  TrackerOptions o;
  o.unbound_timeout_ns = 2'000'000'000;
  Reset(o);
  const uint64_t ssl = 0x5555'0000'4000;
  TlsEventGenerator g({307, 15, 8}, Role::kClient);
  auto w1 = g.Unbound(ssl, kReq.substr(0, 20));
  auto w2 = g.Unbound(ssl, kReq.substr(20));
  Batch(w1, w2);
  tracker_->Tick(w1.exit_ns + o.unbound_timeout_ns);  // not yet
  EXPECT_EQ(UnboundDropped(), 0u);
  tracker_->Tick(w1.exit_ns + o.unbound_timeout_ns + 1);
  EXPECT_EQ(UnboundDropped(), kReq.size());
  // A bind arriving after that finds nothing: no connection, nothing counted twice.
  Batch(g.Bind(ssl));
  tracker_->Tick(w1.exit_ns + 10 * o.unbound_timeout_ns);
  EXPECT_EQ(UnboundDropped(), kReq.size());
  EXPECT_TRUE(out_.empty());
  EXPECT_EQ(tracker_->size(), 0u);
}

// (e) Held unbound bytes are bounded per TLS object...
TEST_F(TlsTrackerTest, UnboundBytesPastThePerObjectCapAreDropped) {
  TrackerOptions o;
  o.max_unbound_bytes = 64;
  Reset(o);
  const uint64_t ssl = 0x5555'0000'5000;
  TlsEventGenerator g({308, 16, 9}, Role::kClient);
  tracker_->OnOpen(g.Open());
  const std::string req = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";  // 28 bytes
  ASSERT_EQ(req.size(), 28u);
  auto w1 = g.Unbound(ssl, req);
  auto w2 = g.Unbound(ssl, std::string(30, 'y'));
  Batch(w1, w2);  // 58: held
  EXPECT_EQ(UnboundDropped(), 0u);
  Batch(g.Unbound(ssl, std::string(10, 'z')));  // 68 > 64: dropped
  EXPECT_EQ(UnboundDropped(), 10u);
  Batch(g.Unbound(ssl, std::string(6, 'w')));  // 64: fits
  EXPECT_EQ(UnboundDropped(), 10u);
}

// ...and in all.
TEST_F(TlsTrackerTest, UnboundBytesPastTheTotalCapAreDropped) {
  TrackerOptions o;
  o.max_unbound_bytes = 1000;
  o.max_unbound_bytes_total = 100;
  Reset(o);
  TlsEventGenerator g({309, 17, 10}, Role::kClient);
  Batch(g.Unbound(1, std::string(60, 'a')));
  g.NewTurn();
  Batch(g.Unbound(2, std::string(60, 'b')));  // 120 > 100
  EXPECT_EQ(UnboundDropped(), 60u);
  // Binding object 1 frees its bytes: object 2's next write fits again.
  tracker_->OnOpen(g.Open());
  g.NewTurn();
  events::TlsBindEvent b = g.Bind(1);
  b.bytes = 60;
  Batch(b);
  Batch(g.Unbound(2, std::string(60, 'c')));
  EXPECT_EQ(UnboundDropped(), 60u);
}

// (f) Once a connection's plaintext comes from the uprobes, socket bytes are ciphertext
// (a record read before the first SSL_read, or one that raced the kernel's marking):
// never parsed, counted.
TEST_F(TlsTrackerTest, CiphertextAfterTheSwitchIsIgnored) {
  TlsEventGenerator g({310, 18, 11}, Role::kServer);
  tracker_->OnOpen(g.Open());
  Batch(g.Plain(Direction::kIngress, kReq));
  // Ciphertext at positions that collide with the plaintext stream: parsed, it would
  // corrupt the response and fail.
  events::DataEvent late = g.Cipher(Direction::kEgress, kAppData);
  late.position = 0;
  Batch(late);
  // Even ciphertext that happens to look like HTTP is not parsed.
  events::DataEvent looks_http = g.Cipher(Direction::kIngress, "GET /not-really HTTP/1.1\r\n\r\n");
  looks_http.position = kReq.size();
  Batch(looks_http);
  Batch(g.Plain(Direction::kEgress, kResp));
  tracker_->OnClose(g.Close());
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].second.request.target(), "/secret?x=1");
  EXPECT_EQ(out_[0].second.response.status_code, 200);
  EXPECT_FALSE(out_[0].second.response_missing);
  EXPECT_EQ(ParseFailures(), 0u);
  EXPECT_EQ(CipherIgnored(), kAppData.size() + std::string("GET /not-really HTTP/1.1\r\n\r\n").size());
  EXPECT_TRUE(ciphertext_.empty()) << "plaintext came first: nothing to explain";
  EXPECT_EQ(Captured(), 1u);
}

// Plaintext on a connection first seen as plain HTTP (a CONNECT tunnel, STARTTLS-like
// upgrades): its streams restart at 0 as TLS.
TEST_F(TlsTrackerTest, PlaintextRestartsAConnectionThatWasHttp) {
  TlsEventGenerator g({311, 19, 12}, Role::kClient);
  tracker_->OnOpen(g.Open());
  Batch(g.Cipher(Direction::kEgress, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"));
  Batch(g.Cipher(Direction::kIngress, "HTTP/1.1 200 Connection established\r\n\r\n"));
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_FALSE(out_[0].first.tls);
  Batch(g.Plain(Direction::kEgress, kReq));
  Batch(g.Plain(Direction::kIngress, kResp));
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_TRUE(out_[1].first.tls);
  EXPECT_EQ(out_[1].second.request.target(), "/secret?x=1");
  EXPECT_EQ(ParseFailures(), 0u);
}

// (g) Plain HTTP whose body contains a TLS record header (not at position 0) is HTTP.
TEST_F(TlsTrackerTest, HttpBodyThatLooksLikeTlsIsStillHttp) {
  const std::string body = Record(0x16, 0x01, 11);  // 16 bytes: 16 03 01 00 0b ...
  const std::string head = "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 16\r\n\r\n";
  for (bool reordered : {false, true}) {
    SCOPED_TRACE(reordered ? "body chunk first" : "in order");
    out_.clear();
    TlsEventGenerator g({312, 20, reordered ? 14u : 13u}, Role::kServer);
    tracker_->OnOpen(g.Open());
    auto h = g.Cipher(Direction::kIngress, head);
    auto b = g.Cipher(Direction::kIngress, body);
    if (reordered) {
      Batch(b, h);
    } else {
      Batch(h);
      Batch(b);
    }
    Batch(g.Cipher(Direction::kEgress, kResp));
    tracker_->OnClose(g.Close());
    ASSERT_EQ(out_.size(), 1u);
    EXPECT_FALSE(out_[0].first.tls);
    EXPECT_EQ(out_[0].second.request.method(), "POST");
    EXPECT_EQ(out_[0].second.request.body_size, 16u);
    EXPECT_EQ(out_[0].second.response.status_code, 200);
  }
  EXPECT_EQ(ParseFailures(), 0u);
  EXPECT_TRUE(ciphertext_.empty());
  EXPECT_EQ(CipherIgnored(), 0u);
  EXPECT_EQ(NotCaptured(), 0u);
  EXPECT_EQ(tracker_->gaps_detected(), 0u);
}

// A binary response body that starts a chunk with a TLS record header: HTTP already.
TEST_F(TlsTrackerTest, HttpResponseChunkThatLooksLikeTlsIsStillHttp) {
  TlsEventGenerator g({313, 21, 15}, Role::kClient);
  tracker_->OnOpen(g.Open());
  Batch(g.Cipher(Direction::kEgress, "GET /bin HTTP/1.1\r\nHost: x\r\n\r\n"));
  Batch(g.Cipher(Direction::kIngress, "HTTP/1.1 200 OK\r\nContent-Length: 21\r\n\r\n"));
  Batch(g.Cipher(Direction::kIngress, Record(0x17, 0x03, 16)));
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].second.response.body_size, 21u);
  EXPECT_EQ(ParseFailures(), 0u);
  EXPECT_EQ(CipherIgnored(), 0u);
}

// The kernel starts an object's unbound positions at 0 again when its earlier writes lost
// their turn (it counts those as unbound in its own counter). The bind that follows places
// only the new run: the stale writes must not be replayed over the same positions.
TEST_F(TlsTrackerTest, StaleUnboundWritesFromAnEarlierTurnAreNotBound) {
  const uint64_t ssl = 0x5555'0000'6000;
  TlsEventGenerator g({314, 22, 16}, Role::kClient);
  tracker_->OnOpen(g.Open());
  Batch(g.Cipher(Direction::kEgress, kClientHello));
  const std::string stale = "GET /stale HTTP/1.1\r\nHost: example.com\r\n\r\n";
  Batch(g.Unbound(ssl, stale));
  g.NewTurn();  // the socket write never came in that turn
  Batch(g.Unbound(ssl, kReq));
  Batch(g.Bind(ssl));
  Batch(g.Plain(Direction::kIngress, kResp));
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].second.request.target(), "/secret?x=1") << "the stale write was placed at position 0";
  EXPECT_EQ(UnboundDropped(), stale.size());
  EXPECT_EQ(ParseFailures(), 0u);
}

}  // namespace
}  // namespace kspan::conntrack
