// HTTP/1.x as a registered protocol (protocols/registry.h): detection on a request line,
// one Connection per TCP connection.
#pragma once

#include "protocols/registry.h"

namespace kspan::protocols::http1 {

const ProtocolSpec& Spec();

}  // namespace kspan::protocols::http1
