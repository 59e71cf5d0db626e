#include "processors/saturation.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <vector>

namespace kspan::processors {
namespace {

// Depths of the accept queue: 0 (nothing waited), then powers of two up to the largest
// somaxconn default (4096).
const std::vector<double> kDepthBounds = {0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096};

// A small /proc or cgroup file, whole; false when it cannot be opened or read.
bool ReadSmall(const std::string& path, std::string* out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  out->clear();
  char buf[1024];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      ::close(fd);
      return false;
    }
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
    if (out->size() > 65536) break;
  }
  ::close(fd);
  return true;
}

bool ParseU64(std::string_view s, uint64_t* v) {
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
  return ec == std::errc() && p != s.data();
}

std::string_view NextLine(std::string_view* text) {
  const size_t eol = text->find('\n');
  std::string_view line = text->substr(0, eol);
  text->remove_prefix(eol == std::string_view::npos ? text->size() : eol + 1);
  return line;
}

}  // namespace

bool ParseCpuPressureSomeTotal(std::string_view text, uint64_t* total_us) {
  while (!text.empty()) {
    std::string_view line = NextLine(&text);
    if (line.rfind("some ", 0) != 0) continue;
    const size_t at = line.find(" total=");
    if (at == std::string_view::npos) return false;
    return ParseU64(line.substr(at + 7), total_us);
  }
  return false;
}

bool ParseKeyedValue(std::string_view text, std::string_view key, uint64_t* value) {
  while (!text.empty()) {
    std::string_view line = NextLine(&text);
    if (line.size() > key.size() && line.substr(0, key.size()) == key && line[key.size()] == ' ') {
      return ParseU64(line.substr(key.size() + 1), value);
    }
  }
  return false;
}

std::string CgroupV2Path(std::string_view proc_cgroup) {
  while (!proc_cgroup.empty()) {
    std::string_view line = NextLine(&proc_cgroup);
    if (line.rfind("0::", 0) == 0) return std::string(line.substr(3));
  }
  return "";
}

std::string Cgroup2Mount(std::string_view mountinfo) {
  // "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS"
  while (!mountinfo.empty()) {
    std::string_view line = NextLine(&mountinfo);
    const size_t dash = line.find(" - ");
    if (dash == std::string_view::npos || line.substr(dash + 3).rfind("cgroup2 ", 0) != 0) continue;
    std::string_view fields = line.substr(0, dash);
    for (int i = 0; i < 4; ++i) {
      const size_t sp = fields.find(' ');
      if (sp == std::string_view::npos) return "";
      fields.remove_prefix(sp + 1);
    }
    std::string_view mount = fields.substr(0, fields.find(' '));
    if (mount.find('\\') != std::string_view::npos) continue;  // an escaped path: not ours to guess
    return std::string(mount);
  }
  return "";
}

Saturation::Saturation(metrics::Registry* registry, SaturationOptions options)
    : registry_(registry),
      options_(std::move(options)),
      dropped_listen_(
          registry->GetCounter("kspan_saturation_series_dropped_total", {{"metric", "listen_queue"}})),
      dropped_services_(
          registry->GetCounter("kspan_saturation_series_dropped_total", {{"metric", "service"}})),
      dropped_procs_(registry->GetCounter("kspan_saturation_series_dropped_total", {{"metric", "process"}})),
      dropped_cgroups_(registry->GetCounter("kspan_saturation_series_dropped_total", {{"metric", "cgroup"}})),
      failed_pressure_(
          registry->GetCounter("kspan_saturation_read_failures_total", {{"file", "cpu.pressure"}})),
      failed_stat_(registry->GetCounter("kspan_saturation_read_failures_total", {{"file", "cpu.stat"}})) {
  if (options_.cgroup_root.empty()) {
    std::string mountinfo;
    if (ReadSmall(options_.proc_root + "/self/mountinfo", &mountinfo))
      options_.cgroup_root = Cgroup2Mount(mountinfo);
  }
}

void Saturation::OnAccept(std::string_view service, uint16_t port, uint16_t queue, uint16_t limit) {
  auto it = listeners_.find(std::make_pair(service, port));
  if (it == listeners_.end()) {
    if (listeners_.size() >= options_.max_series) {
      dropped_listen_->Add();
      return;
    }
    const metrics::Labels labels =
        registry_->Redacted({{"service.name", std::string(service)}, {"server.port", std::to_string(port)}});
    it = listeners_
             .emplace(std::make_pair(std::string(service), port),
                      Listener{registry_->GetHistogram("kspan_listen_queue_depth", labels, kDepthBounds),
                               registry_->GetCounter("kspan_listen_queue_limit", labels)})
             .first;
  }
  it->second.depth->Record(queue);
  it->second.limit->Set(limit);
}

Saturation::ServiceSeries* Saturation::SeriesFor(std::string_view service) {
  auto it = services_.find(service);
  if (it != services_.end()) return &it->second;
  if (services_.size() >= options_.max_series) {
    dropped_services_->Add();
    return nullptr;
  }
  const metrics::Labels labels = registry_->Redacted({{"service.name", std::string(service)}});
  ServiceSeries s{
      .stall_us = registry_->GetCounter("kspan_cgroup_cpu_pressure_stall_seconds_total", labels),
      .throttled_periods = registry_->GetCounter("kspan_cgroup_cpu_throttled_periods_total", labels),
      .throttled_us = registry_->GetCounter("kspan_cgroup_cpu_throttled_seconds_total", labels),
      .run_delay_us = registry_->GetCounter("kspan_service_run_delay_seconds_total", labels),
      .cgroups = {},
      .run_delay_ns = 0,
  };
  return &services_.emplace(std::string(service), std::move(s)).first->second;
}

void Saturation::Watch(uint32_t pid, std::string_view service) {
  if (procs_.count(pid)) return;
  if (procs_.size() >= options_.max_processes) {
    dropped_procs_->Add();
    return;
  }
  ServiceSeries* series = SeriesFor(service);
  if (!series) return;
  Proc& p = procs_[pid];
  p.service = series;
  std::string text;
  if (!options_.cgroup_root.empty() &&
      ReadSmall(options_.proc_root + "/" + std::to_string(pid) + "/cgroup", &text)) {
    std::string path = CgroupV2Path(text);
    if (!path.empty()) {
      auto c = cgroups_.find(path);
      if (c == cgroups_.end() && cgroups_.size() >= options_.max_cgroups) {
        dropped_cgroups_->Add();
      } else {
        if (c == cgroups_.end()) c = cgroups_.emplace(path, Cgroup{}).first;
        ++c->second.pids;
        series->cgroups.insert(path);
        p.cgroup = std::move(path);
      }
    }
  }
  // The threads' delay so far is the process's past: only what comes from now on counts.
  ReadThreads(pid, &p);
}

void Saturation::Forget(uint32_t pid) {
  auto it = procs_.find(pid);
  if (it == procs_.end()) return;
  if (!it->second.cgroup.empty()) {
    auto c = cgroups_.find(it->second.cgroup);
    if (c != cgroups_.end() && c->second.pids > 0) --c->second.pids;
  }
  procs_.erase(it);
}

void Saturation::ReadCgroup(const std::string& path, Cgroup* c) {
  const std::string dir = options_.cgroup_root + (path == "/" ? "" : path);
  std::string text;
  uint64_t v = 0;
  // Counted from the first read (kspan's start, or the group's first traced process), as
  // the run delay is: a group's past is not a burst of this interval.
  auto since_first = [](uint64_t value, uint64_t* base, bool* based) {
    if (!*based) {
      *based = true;
      *base = value;
    }
    return value >= *base ? value - *base : 0;
  };
  if (ReadSmall(dir + "/cpu.pressure", &text) && ParseCpuPressureSomeTotal(text, &v)) {
    c->last.stall_us = since_first(v, &c->base.stall_us, &c->pressure_based);
  } else if (!c->pressure_failed) {
    c->pressure_failed = true;
    failed_pressure_->Add();
  }
  // nr_throttled and throttled_usec exist where the cpu controller is enabled for the
  // group (not in the root group, nor on a host whose cpu controller is on cgroup v1).
  uint64_t us = 0;
  if (ReadSmall(dir + "/cpu.stat", &text) && ParseKeyedValue(text, "nr_throttled", &v) &&
      ParseKeyedValue(text, "throttled_usec", &us)) {
    const bool based = c->stat_based;
    c->last.throttled_periods = since_first(v, &c->base.throttled_periods, &c->stat_based);
    c->stat_based = based;
    c->last.throttled_us = since_first(us, &c->base.throttled_us, &c->stat_based);
  } else if (!c->stat_failed) {
    c->stat_failed = true;
    failed_stat_->Add();
  }
}

void Saturation::ReadThreads(uint32_t pid, Proc* p) {
  const std::string task = options_.proc_root + "/" + std::to_string(pid) + "/task";
  DIR* d = ::opendir(task.c_str());
  if (!d) return;  // gone: its exit event will Forget it
  const bool first = !p->threads_read;
  p->threads_read = true;
  std::unordered_map<uint32_t, uint64_t> now;
  now.reserve(p->thread.size() + 1);
  std::string text;
  while (const dirent* e = ::readdir(d)) {
    char* end = nullptr;
    const unsigned long tid = std::strtoul(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0') continue;
    if (!ReadSmall(task + "/" + e->d_name + "/schedstat", &text)) continue;  // the thread ended
    // "on-cpu ns, run-delay ns, timeslices"
    const size_t sp = text.find(' ');
    uint64_t delay = 0;
    if (sp == std::string::npos || !ParseU64(std::string_view(text).substr(sp + 1), &delay)) continue;
    now[static_cast<uint32_t>(tid)] = delay;
    if (first) continue;
    auto old = p->thread.find(static_cast<uint32_t>(tid));
    const uint64_t before = old == p->thread.end() ? 0 : old->second;  // a new thread: all of it
    if (delay > before) p->service->run_delay_ns += delay - before;
  }
  ::closedir(d);
  p->thread = std::move(now);
}

void Saturation::Tick(uint64_t now_ns) {
  if (read_once_ && now_ns - last_read_ns_ < options_.interval_ns) return;
  read_once_ = true;
  last_read_ns_ = now_ns;
  for (auto& [path, c] : cgroups_) {
    if (c.pids > 0) ReadCgroup(path, &c);
  }
  for (auto& [pid, p] : procs_) ReadThreads(pid, &p);
  // Each service: the sum over its cgroups (each once), as last read; a cgroup no longer
  // read keeps its last values, so the sums never go down.
  for (auto& [name, s] : services_) {
    CgroupTotals sum;
    for (const std::string& path : s.cgroups) {
      auto c = cgroups_.find(path);
      if (c == cgroups_.end()) continue;
      sum.stall_us += c->second.last.stall_us;
      sum.throttled_periods += c->second.last.throttled_periods;
      sum.throttled_us += c->second.last.throttled_us;
    }
    s.stall_us->Set(sum.stall_us);
    s.throttled_periods->Set(sum.throttled_periods);
    s.throttled_us->Set(sum.throttled_us);
    s.run_delay_us->Set(s.run_delay_ns / 1000);
  }
}

}  // namespace kspan::processors
