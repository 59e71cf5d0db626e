#include "testing/bpf_inventory.h"

#include <bpf/bpf.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace kspan::testing {
namespace {

bool ProgName(uint32_t prog_id, std::string* name) {
  int fd = bpf_prog_get_fd_by_id(prog_id);
  if (fd < 0) return false;
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  const bool ok = bpf_obj_get_info_by_fd(fd, &info, &len) == 0;
  close(fd);
  if (ok) *name = info.name;
  return ok;
}

}  // namespace

KernelObjects KspanObjectsInKernel() {
  KernelObjects out;
  uint32_t id = 0;
  while (bpf_prog_get_next_id(id, &id) == 0) {
    std::string name;
    if (ProgName(id, &name) && name.rfind("ks_", 0) == 0)
      out.programs.push_back(std::to_string(id) + ":" + name);
  }
  id = 0;
  while (bpf_link_get_next_id(id, &id) == 0) {
    int fd = bpf_link_get_fd_by_id(id);
    if (fd < 0) continue;
    bpf_link_info info{};
    uint32_t len = sizeof(info);
    std::string name;
    if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && ProgName(info.prog_id, &name) &&
        name.rfind("ks_", 0) == 0) {
      out.links.push_back(std::to_string(id) + ":" + name);
    }
    close(fd);
  }
  return out;
}

std::vector<std::string> Added(const std::vector<std::string>& before,
                               const std::vector<std::string>& after) {
  std::vector<std::string> out;
  for (const auto& a : after) {
    if (std::find(before.begin(), before.end(), a) == before.end()) out.push_back(a);
  }
  return out;
}

std::vector<std::string> StillThere(const std::vector<std::string>& subset,
                                    const std::vector<std::string>& now) {
  std::vector<std::string> out;
  for (const auto& a : subset) {
    if (std::find(now.begin(), now.end(), a) != now.end()) out.push_back(a);
  }
  return out;
}

}  // namespace kspan::testing
