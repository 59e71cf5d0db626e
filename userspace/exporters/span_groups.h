// Spans grouped by resource, the shape every OTLP encoding needs (one ResourceSpans per
// distinct Resource). Shared by the JSON (otlp_json.h) and protobuf (otlp_proto.h)
// encoders so both group, and order, exactly alike.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "model/span.h"

namespace kspan::exporters {

// Groups are distinct Resource pointers (spans of a process share one immutable
// Resource) in order of first appearance; within a group, spans keep their batch order.
// Group g holds spans[order[start[g]]] ... spans[order[start[g + 1] - 1]].
struct ResourceGroups {
  std::vector<const model::Resource*> resources;  // one per group; may hold nullptr
  std::vector<uint32_t> start;                    // resources.size() + 1 offsets into order
  std::vector<uint32_t> order;                    // span indices, grouped
};

ResourceGroups GroupByResource(std::span<const model::Span> spans);

}  // namespace kspan::exporters
