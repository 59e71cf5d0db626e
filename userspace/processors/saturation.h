// Saturation, the fourth golden signal, per traced service (latency, traffic and errors
// are the span metrics, span_metrics.h), from three cheap sources (docs/metrics.md,
// "Saturation", has what each costs):
//
//   listen queue   the kernel reads the listening socket's accept queue at every accept
//                  kspan traces (bpf/sock_io.bpf.c: sk_ack_backlog, sk_max_ack_backlog,
//                  in the connection's open event), so a server's backlog costs two loads
//                  per accepted connection and no event of its own:
//                    kspan_listen_queue_depth{service.name,server.port}   histogram
//                    kspan_listen_queue_limit{service.name,server.port}   gauge
//   cgroup CPU     on the timer (Tick), for the cgroup v2 groups of traced processes only:
//                  cpu.pressure "some total" and cpu.stat nr_throttled / throttled_usec,
//                  summed over the service's cgroups (each counted once), from the first
//                  read of each (its past is not this interval's):
//                    kspan_cgroup_cpu_pressure_stall_seconds_total{service.name}
//                    kspan_cgroup_cpu_throttled_periods_total{service.name}
//                    kspan_cgroup_cpu_throttled_seconds_total{service.name}
//   run delay      on the timer, /proc/PID/task/TID/schedstat (time spent runnable but
//                  waiting for a CPU) of every thread of the traced processes:
//                    kspan_service_run_delay_seconds_total{service.name}
//
// Bounds: `max_series` (service, port) pairs and services (past it the observation is
// counted in kspan_saturation_series_dropped_total{metric}), `max_processes` processes and
// `max_cgroups` cgroups watched (past it: {metric="processes"} / {metric="cgroups"}). A
// cgroup file that cannot be read (no PSI, no cpu controller) is counted once per cgroup
// in kspan_saturation_read_failures_total{file}.
//
// Threading: the pipeline thread (OnAccept, Watch, Forget, Tick); the metrics are read
// through the registry.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "common/metrics.h"

namespace kspan::processors {

struct SaturationOptions {
  std::string proc_root = "/proc";
  // Where the cgroup v2 hierarchy is mounted; empty: the cgroup2 line of
  // PROC_ROOT/self/mountinfo (none: no cgroup metrics).
  std::string cgroup_root;
  uint64_t interval_ns = 1'000'000'000;  // cgroup and run-delay reads at most this often
  size_t max_series = 256;
  size_t max_processes = 1024;
  size_t max_cgroups = 256;
};

class Saturation {
 public:
  Saturation(metrics::Registry* registry, SaturationOptions options = {});

  // An accepted connection of `pid` (service `service`) on `port`, with the listener's
  // queue as the accept left it.
  void OnAccept(std::string_view service, uint16_t port, uint16_t queue, uint16_t limit);
  // A traced process: its cgroup and threads are read from the next Tick on. Cheap when
  // it is watched already.
  void Watch(uint32_t pid, std::string_view service);
  void Forget(uint32_t pid);
  // Reads the cgroups and threads when `interval_ns` passed since the last read.
  void Tick(uint64_t now_ns);

  size_t watched() const { return procs_.size(); }

 private:
  struct CgroupTotals {
    uint64_t stall_us = 0, throttled_periods = 0, throttled_us = 0;
  };
  struct Cgroup {
    CgroupTotals last;  // the last values read, less `base`
    CgroupTotals base;  // the first values read
    size_t pids = 0;    // watched processes in it; read while > 0
    bool pressure_based = false, stat_based = false;
    bool pressure_failed = false, stat_failed = false;
  };
  struct ServiceSeries {
    metrics::Counter* stall_us;
    metrics::Counter* throttled_periods;
    metrics::Counter* throttled_us;
    metrics::Counter* run_delay_us;
    std::set<std::string> cgroups;  // every cgroup it was seen in
    uint64_t run_delay_ns = 0;      // summed increases of its threads' run delay
  };
  struct Proc {
    ServiceSeries* service = nullptr;
    std::string cgroup;                             // "" when unknown
    std::unordered_map<uint32_t, uint64_t> thread;  // tid → run_delay ns last read
    bool threads_read = false;                      // the first read is the baseline
  };
  struct Listener {
    metrics::Histogram* depth;
    metrics::Counter* limit;
  };

  ServiceSeries* SeriesFor(std::string_view service);
  void ReadCgroup(const std::string& path, Cgroup* c);
  void ReadThreads(uint32_t pid, Proc* p);

  metrics::Registry* registry_;
  SaturationOptions options_;
  uint64_t last_read_ns_ = 0;
  bool read_once_ = false;
  // Found by (string_view, port): a pair of a string and a pair of a string_view do not
  // compare with std::less<>.
  struct ListenerLess {
    using is_transparent = void;
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return std::pair<std::string_view, uint16_t>(a.first, a.second) <
             std::pair<std::string_view, uint16_t>(b.first, b.second);
    }
  };
  std::map<std::pair<std::string, uint16_t>, Listener, ListenerLess> listeners_;
  std::map<std::string, ServiceSeries, std::less<>> services_;
  std::unordered_map<uint32_t, Proc> procs_;
  std::map<std::string, Cgroup> cgroups_;
  metrics::Counter* dropped_listen_;
  metrics::Counter* dropped_services_;
  metrics::Counter* dropped_procs_;
  metrics::Counter* dropped_cgroups_;
  metrics::Counter* failed_pressure_;
  metrics::Counter* failed_stat_;
};

// "some avg10=… total=N" → N (µs of some-task stall); false when there is no "some" line.
bool ParseCpuPressureSomeTotal(std::string_view text, uint64_t* total_us);
// The value of `key` in a "key value" per line file (cpu.stat); false when absent.
bool ParseKeyedValue(std::string_view text, std::string_view key, uint64_t* value);
// The cgroup v2 path in /proc/PID/cgroup text (the "0::PATH" line); "" when none.
std::string CgroupV2Path(std::string_view proc_cgroup);
// The mount point of the cgroup2 file system in mountinfo text; "" when none.
std::string Cgroup2Mount(std::string_view mountinfo);

}  // namespace kspan::processors
