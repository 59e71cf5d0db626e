// Builds HTTP/2 bytes for tests: frames, header blocks encoded by nghttp2's deflater (one
// per direction, like a real peer's), and a Wire that plays them into an http2::Connection
// as syscalls, the way the connection tracker does.
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocols/http2/connection.h"
#include "protocols/http2/frame.h"
#include "protocols/http2/types.h"

namespace kspan::testing::h2 {

using Fields = std::vector<std::pair<std::string, std::string>>;

inline std::string Frame(uint8_t type, uint8_t flags, uint32_t stream, std::string_view payload) {
  std::string f;
  const uint32_t n = static_cast<uint32_t>(payload.size());
  f.push_back(static_cast<char>(n >> 16));
  f.push_back(static_cast<char>(n >> 8));
  f.push_back(static_cast<char>(n));
  f.push_back(static_cast<char>(type));
  f.push_back(static_cast<char>(flags));
  f.push_back(static_cast<char>(stream >> 24));
  f.push_back(static_cast<char>(stream >> 16));
  f.push_back(static_cast<char>(stream >> 8));
  f.push_back(static_cast<char>(stream));
  f += payload;
  return f;
}

inline std::string U32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

inline std::string Settings(std::vector<std::pair<uint16_t, uint32_t>> s) {
  std::string p;
  for (auto [id, v] : s) {
    p.push_back(static_cast<char>(id >> 8));
    p.push_back(static_cast<char>(id));
    p += U32(v);
  }
  return Frame(protocols::http2::kSettings, 0, 0, p);
}

// A gRPC Length-Prefixed-Message.
inline std::string GrpcMessage(std::string_view m) {
  return std::string(1, '\0') + U32(static_cast<uint32_t>(m.size())) + std::string(m);
}

// One direction's HPACK encoder.
class Encoder {
 public:
  Encoder() { nghttp2_hd_deflate_new(&d_, 4096); }
  ~Encoder() { nghttp2_hd_deflate_del(d_); }
  Encoder(const Encoder&) = delete;
  Encoder& operator=(const Encoder&) = delete;

  std::string Encode(const Fields& fields) {
    std::vector<nghttp2_nv> nv;
    for (const auto& [n, v] : fields) {
      nv.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(n.data())),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(v.data())), n.size(), v.size(),
                    NGHTTP2_NV_FLAG_NONE});
    }
    std::string out(nghttp2_hd_deflate_bound(d_, nv.data(), nv.size()), '\0');
    const ssize_t n =
        nghttp2_hd_deflate_hd(d_, reinterpret_cast<uint8_t*>(out.data()), out.size(), nv.data(), nv.size());
    out.resize(n < 0 ? 0 : static_cast<size_t>(n));
    return out;
  }
  void ChangeTableSize(size_t size) { nghttp2_hd_deflate_change_table_size(d_, size); }

 private:
  nghttp2_hd_deflater* d_ = nullptr;
};

inline Fields Get(std::string path, std::string authority = "svc.local:8080") {
  return {{":method", "GET"},
          {":scheme", "http"},
          {":path", std::move(path)},
          {":authority", std::move(authority)}};
}

inline Fields GrpcRequest(std::string method) {
  return {{":method", "POST"},
          {":scheme", "http"},
          {":path", "/" + std::move(method)},
          {":authority", "localhost:50051"},
          {"content-type", "application/grpc"},
          {"te", "trailers"},
          {"user-agent", "grpc-python/1.51.1"}};
}

// Plays syscalls into a Connection: positions per direction, a captured prefix of each
// syscall, one timestamp pair per syscall.
class Wire {
 public:
  explicit Wire(bool client = true, protocols::http2::Limits limits = {})
      : conn_(client, limits), client_(client) {}

  void Request(std::string_view bytes, size_t captured = std::string::npos) { Send(true, bytes, captured); }
  void Response(std::string_view bytes, size_t captured = std::string::npos) { Send(false, bytes, captured); }
  // A syscall whose event never reached user space.
  void LoseRequest(size_t n) { pos_[1] += n; }
  void LoseResponse(size_t n) { pos_[0] += n; }

  void Drain() {
    protocols::ConnectionStats s;
    std::vector<protocols::Record> recs;
    conn_.Drain(&started, &recs, &s);
    stats += s;
    for (protocols::Record& r : recs) {
      envelopes.push_back(r);
      records.push_back(std::get<protocols::http2::Record>(r.body));
    }
  }
  void Close(protocols::Unanswered why = protocols::Unanswered::kNoResponse) {
    conn_.Close(why);
    Drain();
  }

  // Client preface and both sides' SETTINGS.
  void Open() {
    Request(std::string(protocols::http2::kPreface) + Settings({}));
    Response(Settings({}));
  }

  std::vector<protocols::RequestStart> started;
  std::vector<protocols::Record> envelopes;
  std::vector<protocols::http2::Record> records;
  protocols::ConnectionStats stats;
  Encoder request_encoder, response_encoder;
  uint64_t t = 1'000'000;

 private:
  void Send(bool request, std::string_view bytes, size_t captured) {
    const bool egress = request == client_;
    const size_t n = std::min(captured, bytes.size());
    uint64_t& pos = pos_[request ? 1 : 0];
    t += 1000;
    conn_.AddData({.channel = 0,
                   .egress = egress,
                   .position = pos,
                   .data = bytes.substr(0, n),
                   .total_len = static_cast<uint32_t>(bytes.size()),
                   .first_ns = t,
                   .last_ns = t + 10,
                   .tid = request ? 1u : 2u,
                   .turn = 0});
    pos += bytes.size();
  }

  protocols::http2::Connection conn_;
  bool client_;
  uint64_t pos_[2] = {0, 0};
};

}  // namespace kspan::testing::h2
