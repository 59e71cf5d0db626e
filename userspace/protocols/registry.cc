#include "protocols/registry.h"

#include "protocols/http1/spec.h"
#include "protocols/http2/spec.h"
#include "protocols/jsonrpc/spec.h"
#include "protocols/memcache/spec.h"
#include "protocols/mysql/spec.h"
#include "protocols/postgres/spec.h"
#include "protocols/redis/spec.h"

namespace kspan::protocols {

std::span<const ProtocolSpec> Protocols() {
  // The registry: one row per protocol, in detection order.
  static const ProtocolSpec kAll[] = {
      http1::Spec(),    jsonrpc::Spec(),
      memcache::Spec(),  // after http1: lower-case command words are never an HTTP method
      http2::Spec(),     // the preface "PRI * HTTP/2.0" is no HTTP/1 request line
      redis::Spec(),     // a RESP array ("*"): no other protocol starts so
      postgres::Spec(),  // a StartupMessage or SSLRequest: starts with a zero byte
      mysql::Spec(),     // a HandshakeResponse: sequence id 1 and 19 zero bytes; last, as the weakest
  };
  return kAll;
}

size_t ProtocolIndex(const ProtocolSpec& spec) {
  const auto all = Protocols();
  for (size_t i = 0; i < all.size(); ++i) {
    if (all[i].name == spec.name) return i;
  }
  return all.size();
}

}  // namespace kspan::protocols
