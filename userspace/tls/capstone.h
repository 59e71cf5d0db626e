// libcapstone, loaded for the span of one disassembly and unloaded after it.
//
// Only the Go and rustls probe planners disassemble (go_binary.cc, rustls_binary.cc), once
// per binary they are asked about. Linked for the life of the agent, the library's
// relocations alone kept ~3 MiB resident (its relocated tables and the dynamic linker's
// reads of its symbol and relocation sections) on every host, Go or not; loaded when a
// planner runs, that memory comes back when it ends.
#pragma once

#include <capstone/capstone.h>

#include <memory>
#include <string>

namespace kspan::tls {

class Capstone {
 public:
  // The loaded library: the one a caller still holds, else a new load. A planner holds
  // one for the whole binary so that each function it decodes does not load it again.
  // Never null; check ok().
  static std::shared_ptr<const Capstone> Load();

  // dlopen()s the libcapstone whose header this was built against (same major version:
  // the enum values and structures below are that header's). On failure ok() is false and
  // error() says why.
  Capstone();
  ~Capstone();
  Capstone(const Capstone&) = delete;
  Capstone& operator=(const Capstone&) = delete;

  bool ok() const { return lib_ != nullptr; }
  const std::string& error() const { return error_; }

  // The library's functions, valid while ok().
  decltype(&::cs_open) open = nullptr;
  decltype(&::cs_option) option = nullptr;
  decltype(&::cs_disasm) disasm = nullptr;
  decltype(&::cs_free) free = nullptr;
  decltype(&::cs_close) close = nullptr;
  decltype(&::cs_regs_access) regs_access = nullptr;

 private:
  void* lib_ = nullptr;
  std::string error_;
};

}  // namespace kspan::tls
