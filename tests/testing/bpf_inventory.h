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

}  // namespace kspan::testing
