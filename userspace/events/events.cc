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

}  // namespace kspan::events
