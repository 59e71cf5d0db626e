#include "exporters/span_groups.h"

namespace kspan::exporters {

ResourceGroups GroupByResource(std::span<const model::Span> spans) {
  // A counting sort over group numbers. Batches hold spans of a handful of processes, so
  // the group lookup is a linear scan with the previous hit tried first.
  ResourceGroups g;
  std::vector<uint32_t> group_of(spans.size());
  size_t last = 0;
  for (size_t i = 0; i < spans.size(); ++i) {
    const model::Resource* r = spans[i].resource.get();
    if (last < g.resources.size() && g.resources[last] == r) {
      group_of[i] = static_cast<uint32_t>(last);
      continue;
    }
    size_t k = 0;
    while (k < g.resources.size() && g.resources[k] != r) ++k;
    if (k == g.resources.size()) g.resources.push_back(r);
    group_of[i] = static_cast<uint32_t>(k);
    last = k;
  }
  g.start.assign(g.resources.size() + 1, 0);
  for (const uint32_t k : group_of) ++g.start[k + 1];
  for (size_t k = 0; k < g.resources.size(); ++k) g.start[k + 1] += g.start[k];
  g.order.resize(spans.size());
  std::vector<uint32_t> next(g.start.begin(), g.start.end() - 1);
  for (size_t i = 0; i < spans.size(); ++i) g.order[next[group_of[i]]++] = static_cast<uint32_t>(i);
  return g;
}

}  // namespace kspan::exporters
