// The memcached text protocol as a registered protocol (protocols/registry.h): detection
// on a command line, one connection object per TCP connection. See README.md.
#pragma once

#include "protocols/registry.h"

namespace kspan::protocols::memcache {

const ProtocolSpec& Spec();

}  // namespace kspan::protocols::memcache
