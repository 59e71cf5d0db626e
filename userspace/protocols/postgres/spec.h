// PostgreSQL (protocol 3.0) as a registered protocol (protocols/registry.h): detection on
// the StartupMessage or SSLRequest, one connection object per TCP connection. See README.md.
#pragma once

#include "protocols/registry.h"

namespace kspan::protocols::postgres {

const ProtocolSpec& Spec();

}  // namespace kspan::protocols::postgres
