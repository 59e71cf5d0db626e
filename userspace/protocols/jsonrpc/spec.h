// JSON-RPC 2.0 lines on agents' local channels (MCP stdio) as a registered protocol
// (protocols/registry.h): every pipe and Unix stream socket of a marked agent process, one
// LineStream per process (requests and answers travel on different channels).
#pragma once

#include "protocols/registry.h"

namespace kspan::protocols::jsonrpc {

const ProtocolSpec& Spec();

}  // namespace kspan::protocols::jsonrpc
