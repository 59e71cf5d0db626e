#include "processors/saturation.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/metrics.h"

namespace kspan::processors {
namespace {

namespace fs = std::filesystem;

void Write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

uint64_t CounterOf(const metrics::Registry& r, const std::string& name, const metrics::Labels& labels) {
  for (const metrics::Sample& s : r.Snapshot()) {
    if (s.name == name && s.labels == labels) return s.value;
  }
  return ~uint64_t{0};
}

TEST(Saturation, Parsers) {
  uint64_t v = 0;
  EXPECT_TRUE(
      ParseCpuPressureSomeTotal("some avg10=7.68 avg60=10.12 avg300=8.21 total=45501107\nfull avg10=0.00 "
                                "avg60=0.00 avg300=0.00 total=0\n",
                                &v));
  EXPECT_EQ(v, 45501107u);
  EXPECT_FALSE(ParseCpuPressureSomeTotal("full avg10=0.00 total=3\n", &v));
  EXPECT_FALSE(ParseCpuPressureSomeTotal("some avg10=0.00\n", &v));
  EXPECT_TRUE(ParseKeyedValue("usage_usec 10\nnr_throttled 4\nthrottled_usec 900\n", "nr_throttled", &v));
  EXPECT_EQ(v, 4u);
  EXPECT_FALSE(ParseKeyedValue("usage_usec 10\nnr_throttled_x 4\n", "nr_throttled", &v));
  EXPECT_EQ(CgroupV2Path("12:cpu,cpuacct:/a\n0::/system.slice/shop.service\n"), "/system.slice/shop.service");
  EXPECT_EQ(CgroupV2Path("4:memory:/x\n"), "");
  EXPECT_EQ(Cgroup2Mount("22 1 0:20 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
                         "25 1 0:23 / /sys/fs/cgroup/unified rw,nosuid shared:9 - cgroup2 cgroup2 rw\n"),
            "/sys/fs/cgroup/unified");
  EXPECT_EQ(Cgroup2Mount("22 1 0:20 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"), "");
}

TEST(Saturation, ListenQueueOneSeriesPerServiceAndPortBounded) {
  metrics::Registry r;
  Saturation s(&r, {.proc_root = "/nonexistent", .cgroup_root = "/nonexistent", .max_series = 2});
  s.OnAccept("shop", 8080, 0, 128);
  s.OnAccept("shop", 8080, 5, 128);
  s.OnAccept("shop", 9090, 1, 16);
  s.OnAccept("cart", 8080, 3, 16);  // a third pair: over the bound
  const metrics::Labels shop = {{"service.name", "shop"}, {"server.port", "8080"}};
  EXPECT_EQ(CounterOf(r, "kspan_listen_queue_limit", shop), 128u);
  int series = 0;
  for (const metrics::HistogramSample& h : r.HistogramSnapshot()) {
    if (h.name != "kspan_listen_queue_depth") continue;
    ++series;
    if (h.labels == shop) {
      EXPECT_EQ(h.data.count, 2u);
      EXPECT_EQ(h.data.sum, 5);
      EXPECT_EQ(h.data.counts[0], 1u);  // le 0
    }
  }
  EXPECT_EQ(series, 2);
  EXPECT_EQ(CounterOf(r, "kspan_saturation_series_dropped_total", {{"metric", "listen_queue"}}), 1u);
}

TEST(Saturation, CgroupPressureThrottlingAndRunDelayFromTheFirstRead) {
  const fs::path root = fs::temp_directory_path() / ("kspan-saturation-" + std::to_string(::getpid()));
  fs::remove_all(root);
  const fs::path proc = root / "proc", cg = root / "cgroup";
  Write(proc / "10/cgroup", "0::/shop.slice\n");
  Write(proc / "10/task/10/schedstat", "100 5000 3\n");
  Write(proc / "10/task/11/schedstat", "100 7000 3\n");
  Write(proc / "11/cgroup", "0::/shop.slice\n");  // a second process, the same cgroup
  fs::create_directories(proc / "11/task");
  Write(proc / "20/cgroup", "0::/\n");  // another service in the root group
  fs::create_directories(proc / "20/task");
  Write(cg / "shop.slice/cpu.pressure", "some avg10=1.00 avg60=0 avg300=0 total=1000\nfull total=0\n");
  Write(cg / "shop.slice/cpu.stat", "usage_usec 5\nnr_periods 9\nnr_throttled 2\nthrottled_usec 300\n");
  Write(cg / "cpu.pressure", "some avg10=0.00 avg60=0 avg300=0 total=50\n");
  Write(cg / "cpu.stat", "usage_usec 5\n");  // the root group has no throttling

  metrics::Registry r;
  Saturation s(&r, {.proc_root = proc.string(), .cgroup_root = cg.string(), .interval_ns = 1000});
  s.Watch(10, "shop");
  s.Watch(11, "shop");
  s.Watch(20, "other");
  s.Watch(10, "shop");  // already watched
  EXPECT_EQ(s.watched(), 3u);
  s.Tick(1'000'000);  // the first read: the baseline
  const metrics::Labels shop = {{"service.name", "shop"}}, other = {{"service.name", "other"}};
  EXPECT_EQ(CounterOf(r, "kspan_cgroup_cpu_pressure_stall_seconds_total", shop), 0u);

  Write(cg / "shop.slice/cpu.pressure", "some avg10=9.00 avg60=0 avg300=0 total=4000\n");
  Write(cg / "shop.slice/cpu.stat", "nr_throttled 5\nthrottled_usec 1300\n");
  Write(cg / "cpu.pressure", "some avg10=0.00 avg60=0 avg300=0 total=80\n");
  Write(proc / "10/task/10/schedstat", "100 9000 3\n");  // +4 µs
  fs::remove_all(proc / "10/task/11");                   // ended
  Write(proc / "10/task/12/schedstat", "100 2000 1\n");  // new: all of it, +2 µs
  s.Tick(1'000'500);                                     // before the interval: nothing read
  EXPECT_EQ(CounterOf(r, "kspan_cgroup_cpu_pressure_stall_seconds_total", shop), 0u);
  s.Tick(1'002'000);
  // The shop's cgroup counts once though two of its processes are in it.
  EXPECT_EQ(CounterOf(r, "kspan_cgroup_cpu_pressure_stall_seconds_total", shop), 3000u);
  EXPECT_EQ(CounterOf(r, "kspan_cgroup_cpu_throttled_periods_total", shop), 3u);
  EXPECT_EQ(CounterOf(r, "kspan_cgroup_cpu_throttled_seconds_total", shop), 1000u);
  EXPECT_EQ(CounterOf(r, "kspan_service_run_delay_seconds_total", shop), 6u);
  EXPECT_EQ(CounterOf(r, "kspan_cgroup_cpu_pressure_stall_seconds_total", other), 30u);
  EXPECT_EQ(CounterOf(r, "kspan_cgroup_cpu_throttled_periods_total", other), 0u);
  EXPECT_EQ(CounterOf(r, "kspan_saturation_read_failures_total", {{"file", "cpu.stat"}}), 1u);  // the root's
  EXPECT_EQ(CounterOf(r, "kspan_saturation_read_failures_total", {{"file", "cpu.pressure"}}), 0u);

  // Both shop processes gone: the cgroup is no longer read, and its sums stay.
  s.Forget(10);
  s.Forget(11);
  Write(cg / "shop.slice/cpu.pressure", "some avg10=9.00 avg60=0 avg300=0 total=9000\n");
  s.Tick(1'004'000);
  EXPECT_EQ(CounterOf(r, "kspan_cgroup_cpu_pressure_stall_seconds_total", shop), 3000u);
  EXPECT_EQ(s.watched(), 1u);
  fs::remove_all(root);
}

TEST(Saturation, BoundsOnServicesProcessesAndCgroups) {
  const fs::path root = fs::temp_directory_path() / ("kspan-saturation-b-" + std::to_string(::getpid()));
  fs::remove_all(root);
  for (int pid = 1; pid <= 4; ++pid) {
    Write(root / "proc" / std::to_string(pid) / "cgroup", "0::/g" + std::to_string(pid) + "\n");
  }
  metrics::Registry r;
  Saturation s(&r, {.proc_root = (root / "proc").string(),
                    .cgroup_root = (root / "cg").string(),
                    .max_series = 2,
                    .max_processes = 3,
                    .max_cgroups = 1});
  s.Watch(1, "a");
  s.Watch(2, "a");  // a second cgroup: over the cgroup bound, the process is still watched
  s.Watch(3, "b");
  s.Watch(4, "c");  // over the process bound
  EXPECT_EQ(s.watched(), 3u);
  EXPECT_EQ(CounterOf(r, "kspan_saturation_series_dropped_total", {{"metric", "cgroup"}}), 2u);
  EXPECT_EQ(CounterOf(r, "kspan_saturation_series_dropped_total", {{"metric", "process"}}), 1u);
  s.Forget(3);
  s.Watch(4, "c");  // a third service: over the series bound
  EXPECT_EQ(CounterOf(r, "kspan_saturation_series_dropped_total", {{"metric", "service"}}), 1u);
  EXPECT_EQ(s.watched(), 2u);
  fs::remove_all(root);
}

}  // namespace
}  // namespace kspan::processors
