#include "process/process_table.h"

#include <kspan/version.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

#include "common/redact.h"
#include "common/strings.h"

namespace kspan::process {
namespace {

std::string ReadFile(const std::string& path, size_t cap) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return {};
  std::string out(cap, '\0');
  f.read(out.data(), static_cast<std::streamsize>(cap));
  out.resize(static_cast<size_t>(f.gcount()));
  return out;
}

std::vector<std::string> SplitNul(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\0') {
      out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  if (start < s.size()) out.push_back(s.substr(start));
  return out;
}

std::string Basename(std::string_view path) {
  const size_t slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

std::string PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 && HexValue(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(s[i + 1]) << 4 | HexValue(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

bool LooksSecret(std::string_view key) {
  std::string k(key);
  std::transform(k.begin(), k.end(), k.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const char* word : {"password", "passwd", "secret", "token", "apikey", "api-key", "api_key",
                           "access-key", "access_key", "credential", "auth"}) {
    if (k.find(word) != std::string::npos) return true;
  }
  return false;
}

// Field 22 of /proc/PID/stat (starttime: clock ticks after boot, on the boot-time
// clock) as Unix ns; 0 when unreadable. The comm field may hold spaces and ')': the
// fields are counted after its last ')'.
uint64_t StartFromStat(const std::string& stat) {
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(stat.substr(close + 1));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i) {
    if (i != 22) continue;
    char* end = nullptr;
    const unsigned long long ticks = std::strtoull(field.c_str(), &end, 10);
    const long hz = sysconf(_SC_CLK_TCK);
    if (end == field.c_str() || *end != '\0' || hz <= 0) return 0;
    timespec real{}, boot{};
    clock_gettime(CLOCK_REALTIME, &real);
    clock_gettime(CLOCK_BOOTTIME, &boot);
    const auto ns = [](const timespec& t) {
      return uint64_t(t.tv_sec) * 1'000'000'000ull + uint64_t(t.tv_nsec);
    };
    const uint64_t since_boot =
        ticks / uint64_t(hz) * 1'000'000'000ull + ticks % uint64_t(hz) * (1'000'000'000ull / uint64_t(hz));
    return ns(real) - ns(boot) + since_boot;
  }
  return 0;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> ParseResourceAttributes(std::string_view s) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!s.empty()) {
    const size_t comma = s.find(',');
    std::string_view pair = s.substr(0, comma);
    s = comma == std::string_view::npos ? std::string_view() : s.substr(comma + 1);
    const size_t eq = pair.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view key = TrimSpace(pair.substr(0, eq));
    std::string_view value = TrimSpace(pair.substr(eq + 1));
    if (key.empty()) continue;
    out.emplace_back(PercentDecode(key), PercentDecode(value));
  }
  return out;
}

std::string RedactedCommandLine(const std::vector<std::string>& argv) {
  std::string out;
  enum { kNone, kWhole, kHeader, kUser } next = kNone;
  // "Name: value" of a header option (curl -H, wget --header): the value when the name
  // is an authorization, a cookie or secret-looking.
  auto header = [](const std::string& h) {
    const size_t colon = h.find(':');
    if (colon == std::string::npos) return h;
    std::string name = h.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    if (name != "cookie" && name != "proxy-authorization" && !LooksSecret(name)) return h;
    return h.substr(0, colon + 1) + " REDACTED";
  };
  for (const std::string& arg : argv) {
    if (!out.empty()) out += ' ';
    if (next != kNone) {
      // -u/--user USER:PASSWORD (curl): both; a value without ':' is no credential.
      const size_t colon = arg.find(':');
      out += next == kWhole               ? std::string("REDACTED")
             : next == kHeader            ? header(arg)
             : colon != std::string::npos ? std::string("REDACTED")
                                          : arg;
      next = kNone;
      continue;
    }
    if (arg == "-H" || arg == "--header" || arg == "--proxy-header") {
      next = kHeader;
      out += arg;
      continue;
    }
    if (arg == "-u" || arg == "--user" || arg == "-U" || arg == "--proxy-user") {
      next = kUser;
      out += arg;
      continue;
    }
    if (arg.starts_with("--header=")) {
      out += "--header=" + header(arg.substr(9));
      continue;
    }
    const size_t eq = arg.find('=');
    if (eq != std::string::npos && LooksSecret(std::string_view(arg).substr(0, eq))) {
      out += arg.substr(0, eq + 1);
      out += "REDACTED";
      continue;
    }
    if (arg.starts_with("--") && LooksSecret(arg)) next = kWhole;
    out += arg;
  }
  // Tokens anywhere (a Bearer credential, a vendor API key in a URL, a JWT).
  return RedactSecrets(out);
}

ProcessTable::ProcessTable(ProcessTableOptions options) : options_(std::move(options)) {
  if (options_.host_name.empty()) {
    char buf[256] = {};
    if (gethostname(buf, sizeof(buf) - 1) == 0) options_.host_name = buf;
  }
}

ProcessInfo& ProcessTable::Entry(uint32_t pid) {
  auto it = procs_.find(pid);
  if (it != procs_.end()) return it->second;
  if (procs_.size() >= options_.max_processes) {
    // Bounded: forget an arbitrary process that has no resource handed out yet, else any.
    auto victim =
        std::find_if(procs_.begin(), procs_.end(), [](const auto& kv) { return !kv.second.resource; });
    procs_.erase(victim != procs_.end() ? victim : procs_.begin());
  }
  ProcessInfo& p = procs_[pid];
  p.pid = pid;
  return p;
}

void ProcessTable::OnExec(const events::ProcessExecEvent& e) {
  ProcessInfo& p = Entry(e.pid);
  p = ProcessInfo{};  // a new program: forget the old image
  p.pid = e.pid;
  p.ppid = e.ppid;
  p.exe_path = e.filename;
  p.exe_name = !e.exe_name.empty() ? e.exe_name : Basename(e.filename.empty() ? e.comm : e.filename);
  p.argv = e.argv;
  p.start_ns = e.ts_ns;
  p.netns = e.netns;
  // Its container from the exec event, for a process gone before /proc is read (curl in a
  // container lives a few ms); /proc/PID/cgroup, while it lives, has the last word.
  p.container = ContainerFromCgroup(e.cgroup);
}

void ProcessTable::OnFork(const events::ProcessForkEvent& e) {
  if (e.pid == e.ppid) return;
  const bool known = procs_.contains(e.ppid);
  Touch(e.ppid);
  const auto parent = procs_.find(e.ppid);
  if (parent == procs_.end()) return;
  if (!parent->second.found_in_proc && parent->second.exe_path.empty()) {
    if (!known) procs_.erase(parent);  // nothing known of it: nothing to inherit
    return;
  }
  ProcessInfo child = parent->second;  // a copy first: Entry() may evict the parent
  child.pid = e.pid;
  child.ppid = e.ppid;
  child.start_ns = e.ts_ns;
  child.from_proc = false;
  child.found_in_proc = false;
  child.pod_generation_missing = 0;
  child.resource.reset();
  Entry(e.pid) = std::move(child);
}

void ProcessTable::OnExit(const events::ProcessExitEvent& e) {
  procs_.erase(e.pid);
}

void ProcessTable::Touch(uint32_t pid) {
  ProcessInfo& p = Entry(pid);
  if (!p.from_proc) ReadProc(&p);
}

void ProcessTable::ReadProc(ProcessInfo* p) {
  const std::string dir = options_.proc_root + "/" + std::to_string(p->pid);
  p->from_proc = true;
  char buf[4096];
  const std::string exe_link = dir + "/exe";
  const ssize_t n = readlink(exe_link.c_str(), buf, sizeof(buf) - 1);
  if (n > 0) {
    p->found_in_proc = true;
    std::string path(buf, static_cast<size_t>(n));
    if (path.ends_with(" (deleted)")) path.resize(path.size() - 10);
    p->exe_path = path;
    p->exe_name = Basename(path);
  }
  std::vector<std::string> argv = SplitNul(ReadFile(dir + "/cmdline", 16384));
  // Programs that retitle themselves (nginx, postgres) pad argv[0] with spaces.
  for (std::string& a : argv) a.erase(a.find_last_not_of(' ') + 1);
  if (!argv.empty()) {
    p->found_in_proc = true;
    p->argv = std::move(argv);
  }
  if (p->exe_name.empty()) {
    std::string comm = ReadFile(dir + "/comm", 64);
    while (!comm.empty() && comm.back() == '\n') comm.pop_back();
    p->exe_name = comm;
  }
  if (p->ppid == 0) {
    std::istringstream status(ReadFile(dir + "/status", 4096));
    std::string line;
    while (std::getline(status, line)) {
      if (line.starts_with("PPid:"))
        p->ppid = static_cast<uint32_t>(std::strtoul(line.c_str() + 5, nullptr, 10));
    }
  }
  if (p->start_ns == 0) p->start_ns = StartFromStat(ReadFile(dir + "/stat", 4096));
  // Gone: a forked child keeps its parent's (OnFork).
  if (const std::string cgroup = ReadFile(dir + "/cgroup", 16384); !cgroup.empty())
    p->container = ContainerFromCgroup(cgroup);
  // environ is only readable while the process lives; 256 KiB bounds a hostile one.
  for (const std::string& var : SplitNul(ReadFile(dir + "/environ", 256 * 1024))) {
    if (var.starts_with("OTEL_SERVICE_NAME=")) {
      p->service_name = var.substr(18);
    } else if (var.starts_with("OTEL_RESOURCE_ATTRIBUTES=")) {
      p->resource_attributes = ParseResourceAttributes(std::string_view(var).substr(25));
    }
  }
}

void ProcessTable::BuildResource(ProcessInfo* p) {
  auto r = std::make_shared<model::Resource>();
  // First come, first kept: sources are added from the strongest (the header's order).
  auto add = [&r](std::string key, model::AttributeValue value) {
    for (const auto& a : r->attributes) {
      if (a.key == key) return;
    }
    r->attributes.push_back({std::move(key), std::move(value)});
  };
  std::string service = p->service_name;
  for (const auto& [k, v] : p->resource_attributes) {
    if (k == "service.name" && service.empty()) service = v;
  }
  std::vector<std::pair<std::string, std::string>> pod;
  p->pod_generation_missing = 0;
  if (options_.pods && !p->container.id.empty()) {
    const uint64_t generation = options_.pods->generation();
    pod = options_.pods->Attributes(p->container);
    if (pod.empty()) p->pod_generation_missing = generation;
  }
  for (const auto& [k, v] : pod) {
    if (k == "service.name" && service.empty()) service = v;
  }
  if (service.empty()) service = p->exe_name.empty() ? "unknown_service" : p->exe_name;
  add("service.name", service);
  // telemetry.distro.* says what produced the spans: always kspan, whatever SDK the
  // process carries.
  auto ours = [](std::string_view k) { return k.starts_with("telemetry.distro."); };
  for (const auto& [k, v] : p->resource_attributes) {
    if (!ours(k)) add(k, v);
  }
  add("process.pid", int64_t{p->pid});
  if (p->ppid) add("process.parent_pid", int64_t{p->ppid});
  if (!p->exe_name.empty()) add("process.executable.name", p->exe_name);
  if (!p->exe_path.empty()) add("process.executable.path", p->exe_path);
  if (!p->argv.empty()) add("process.command_line", RedactedCommandLine(p->argv));
  if (!p->container.id.empty()) add("container.id", p->container.id);
  if (!p->container.runtime.empty()) add("container.runtime.name", p->container.runtime);
  if (!p->container.pod_uid.empty()) add("k8s.pod.uid", p->container.pod_uid);
  for (const auto& [k, v] : pod) {
    if (k != "service.name") add(k, v);
  }
  for (const auto& [k, v] : options_.resource_attributes) {
    if (k != "service.name" && !ours(k)) add(k, v);
  }
  if (!options_.host_name.empty()) add("host.name", options_.host_name);
  add("telemetry.distro.name", std::string("kspan"));
  add("telemetry.distro.version", std::string(KSPAN_VERSION));
  p->resource = std::move(r);
}

std::shared_ptr<const model::Resource> ProcessTable::ResourceFor(uint32_t pid) {
  ProcessInfo& p = Entry(pid);
  if (!p.from_proc) ReadProc(&p);
  // Built once; again only when the pod's names were missing and may have come since.
  if (!p.resource || (p.pod_generation_missing && options_.pods->generation() != p.pod_generation_missing)) {
    BuildResource(&p);
  }
  return p.resource;
}

uint64_t ProcessTable::StartTime(uint32_t pid) {
  ProcessInfo& p = Entry(pid);
  if (!p.from_proc) ReadProc(&p);
  return p.start_ns;
}

bool ProcessTable::Alive(uint32_t pid) const {
  const ProcessInfo* p = Find(pid);
  if (!p || !p->found_in_proc) return true;
  const std::string dir = options_.proc_root + "/" + std::to_string(pid);
  return access(dir.c_str(), F_OK) == 0;
}

const ProcessInfo* ProcessTable::Find(uint32_t pid) const {
  auto it = procs_.find(pid);
  return it == procs_.end() ? nullptr : &it->second;
}

}  // namespace kspan::process
