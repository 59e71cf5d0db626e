#include "events/events.h"

namespace kspan::events {

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kClient: return "client";
    case Role::kServer: return "server";
    case Role::kUnknown: return "unknown";
  }
  return "unknown";
}

std::string_view ConnKindName(ConnKind kind) {
  switch (kind) {
    case ConnKind::kTcp: return "tcp";
    case ConnKind::kUnix: return "unix";
    case ConnKind::kPipe: return "pipe";
    case ConnKind::kStdout: return "stdout";
    case ConnKind::kStderr: return "stderr";
  }
  return "unknown";
}

}  // namespace kspan::events
