// What kspan left in the kernel: program and link ids whose program name starts with
// "ks_". Used to prove that stopping the agent detaches everything.
#pragma once

#include <string>
#include <vector>

namespace kspan::testing {

struct KernelObjects {
  std::vector<std::string> programs;  // "id:name"
  std::vector<std::string> links;     // "id:prog_name"
};

KernelObjects KspanObjectsInKernel();

// The entries of `after` that are not in `before`: what one agent added, even while
// another kspan runs on the same machine.
std::vector<std::string> Added(const std::vector<std::string>& before, const std::vector<std::string>& after);
// The entries of `subset` still present in `now`.
std::vector<std::string> StillThere(const std::vector<std::string>& subset,
                                    const std::vector<std::string>& now);

}  // namespace kspan::testing
