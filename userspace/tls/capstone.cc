#include "tls/capstone.h"

#include <dlfcn.h>

#include <mutex>

namespace kspan::tls {

namespace {

#define KSPAN_STR2(x) #x
#define KSPAN_STR(x) KSPAN_STR2(x)
// Debian's libcapstone4 installs libcapstone.so.4; the unversioned name is the -dev
// package's link, a fallback for a build against a hand-installed library.
constexpr const char* kSonames[] = {"libcapstone.so." KSPAN_STR(CS_API_MAJOR), "libcapstone.so"};

template <typename F>
bool Bind(void* lib, const char* name, F* out, std::string* error) {
  *out = reinterpret_cast<F>(dlsym(lib, name));
  if (*out == nullptr && error->empty()) *error = std::string("libcapstone has no ") + name;
  return *out != nullptr;
}

}  // namespace

Capstone::Capstone() {
  for (const char* name : kSonames) {
    lib_ = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (lib_) break;
  }
  if (!lib_) {
    const char* why = dlerror();
    error_ = std::string("cannot load libcapstone (") + kSonames[0] + "): " + (why ? why : "unknown error");
    return;
  }
  unsigned major = 0, minor = 0;
  auto version = reinterpret_cast<decltype(&::cs_version)>(dlsym(lib_, "cs_version"));
  if (version) version(reinterpret_cast<int*>(&major), reinterpret_cast<int*>(&minor));
  bool bound = version != nullptr && major == CS_API_MAJOR;
  if (version && major != CS_API_MAJOR) {
    error_ = "libcapstone " + std::to_string(major) + "." + std::to_string(minor) +
             " loaded, built against " + std::to_string(CS_API_MAJOR) + "." + std::to_string(CS_API_MINOR);
  }
  bound = bound && Bind(lib_, "cs_open", &open, &error_) && Bind(lib_, "cs_option", &option, &error_) &&
          Bind(lib_, "cs_disasm", &disasm, &error_) && Bind(lib_, "cs_free", &free, &error_) &&
          Bind(lib_, "cs_close", &close, &error_) && Bind(lib_, "cs_regs_access", &regs_access, &error_);
  if (!bound) {
    if (error_.empty()) error_ = "libcapstone has no cs_version";
    dlclose(lib_);
    lib_ = nullptr;
  }
}

std::shared_ptr<const Capstone> Capstone::Load() {
  static std::mutex mu;
  static std::weak_ptr<const Capstone> held;
  std::lock_guard<std::mutex> lock(mu);
  if (auto cs = held.lock()) return cs;
  auto cs = std::make_shared<const Capstone>();
  held = cs;
  return cs;
}

Capstone::~Capstone() {
  if (lib_) dlclose(lib_);
}

}  // namespace kspan::tls
