// Redis (RESP2/RESP3) as a registered protocol (protocols/registry.h): detection on a
// command array, one connection object per TCP connection. See README.md.
#pragma once

#include "protocols/registry.h"

namespace kspan::protocols::redis {

const ProtocolSpec& Spec();

}  // namespace kspan::protocols::redis
