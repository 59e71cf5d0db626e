// MySQL / MariaDB (client/server protocol) as a registered protocol (protocols/registry.h):
// detection on the client's HandshakeResponse, one connection object per TCP connection.
// See README.md.
#pragma once

#include "protocols/registry.h"

namespace kspan::protocols::mysql {

const ProtocolSpec& Spec();

}  // namespace kspan::protocols::mysql
