// kspan-carrier-probe: what each way of carrying trace context costs on this kernel, and
// whether it changes what applications see (bench/README.md "carrier"). As root.
//
// Creates two network namespaces joined by a veth pair and a cgroup v2 holding only this
// process, then runs closed-loop HTTP/1-sized round trips (an 80-byte request, a 27-byte
// response) over one connection from namespace A to B, in one thread, in modes:
//   base          nothing attached
//   option-idle   kspan's TCP-option carrier attached, no context set (per-segment callbacks)
//   option        the carrier writes a 28-byte option on every request, the context set
//                 from user space before each (a map update: a syscall per request)
//   option-kernel the same, the context set in the kernel by the carrier's send-syscall
//                 tracepoints, as for an unmodified program (what the agent runs)
//   skmsg-pass    both sockets in a sockhash with an sk_msg program that passes (OBI's setup)
//   skmsg-push    the same, pushing 70 bytes into each message (a traceparent's size)
// For each: ns per round trip (median of alternating repetitions), and ioctl(FIONREAD) on
// the server socket once the request has arrived (it should equal the bytes in flight).
// Everything it creates is removed at exit. Traffic stays in its own namespaces.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "carrier/tcp_option_carrier.h"
#include "kspan_carrier_probe.skel.h"

namespace {

constexpr char kAddrB[] = "10.232.0.2";
std::string ns_a, ns_b, cgroup, home_cgroup;
int home_netns = -1;  // this process's own network namespace, opened at start

int Sh(const std::string& cmd) {
  return std::system((cmd + " >/dev/null 2>&1").c_str());
}

bool EnterNetns(const std::string& ns) {
  const int fd = ns.empty() ? home_netns : open(("/var/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
  const bool ok = fd >= 0 && setns(fd, CLONE_NEWNET) == 0;
  if (fd >= 0 && fd != home_netns) close(fd);
  return ok;
}

void InNetns(const std::string& ns) {
  if (!EnterNetns(ns)) {
    std::perror("setns");
    std::exit(1);  // Cleanup (atexit) undoes what was made
  }
}

struct Conn {
  int listener = -1, client = -1, server = -1;
  ~Conn() {
    for (int fd : {client, server, listener})
      if (fd >= 0) close(fd);
  }
};

bool Connect(Conn* c) {
  InNetns(ns_b);
  c->listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  inet_pton(AF_INET, kAddrB, &a.sin_addr);
  if (bind(c->listener, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(c->listener, 4) != 0)
    return false;
  socklen_t len = sizeof(a);
  getsockname(c->listener, reinterpret_cast<sockaddr*>(&a), &len);
  InNetns(ns_a);
  c->client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connect(c->client, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return false;
  InNetns("");
  c->server = accept4(c->listener, nullptr, nullptr, SOCK_CLOEXEC);
  return c->server >= 0;
}

bool ReadN(int fd, char* buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    const ssize_t r = read(fd, buf + got, n - got);
    if (r <= 0) return false;
    got += static_cast<size_t>(r);
  }
  return true;
}

struct Run {
  double ns_per_rtt = 0;
  int fionread = -1;  // FIONREAD on the server once the first request arrived
};

// `pushed`: bytes the sk_msg program adds to each request. `carrier`: set a context from
// user space before each request.
Run RoundTrips(int n, kspan::carrier::TcpOptionCarrier* carrier, size_t pushed) {
  Conn c;
  Run out;
  if (!Connect(&c)) {
    std::perror("connect");
    return out;
  }
  const std::string req(80, 'q'), resp(27, 'r');
  std::vector<char> buf(4096);
  kspan::carrier::WireContext ctx;
  ctx.trace_id.fill(0x11);
  ctx.span_id.fill(0x22);
  // First request: wait until it has all arrived, then ask FIONREAD.
  if (write(c.client, req.data(), req.size()) != static_cast<ssize_t>(req.size())) return out;
  pollfd p{c.server, POLLIN, 0};
  poll(&p, 1, 2000);
  usleep(20000);
  ioctl(c.server, FIONREAD, &out.fionread);
  if (!ReadN(c.server, buf.data(), req.size() + pushed)) return out;
  if (write(c.server, resp.data(), resp.size()) != static_cast<ssize_t>(resp.size())) return out;
  if (!ReadN(c.client, buf.data(), resp.size())) return out;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) {
    if (carrier) (void)carrier->SetOutgoing(c.client, ctx);
    if (write(c.client, req.data(), req.size()) != static_cast<ssize_t>(req.size())) return out;
    if (!ReadN(c.server, buf.data(), req.size() + pushed)) return out;
    if (write(c.server, resp.data(), resp.size()) != static_cast<ssize_t>(resp.size())) return out;
    if (!ReadN(c.client, buf.data(), resp.size())) return out;
  }
  out.ns_per_rtt =
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / n;
  return out;
}

void Cleanup() {
  EnterNetns("");
  std::ofstream(home_cgroup + "/cgroup.procs") << getpid();
  rmdir(cgroup.c_str());
  Sh("ip netns del " + ns_a);
  Sh("ip netns del " + ns_b);
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 20000;
  const int reps = argc > 2 ? std::atoi(argv[2]) : 5;
  home_netns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  const std::string id = std::to_string(getpid() % 100000);
  ns_a = "kscpA" + id;
  ns_b = "kscpB" + id;
  struct stat st {};
  const std::string v2 =
      stat("/sys/fs/cgroup/cgroup.subtree_control", &st) == 0 ? "/sys/fs/cgroup" : "/sys/fs/cgroup/unified";
  {
    std::ifstream in("/proc/self/cgroup");
    std::string line;
    home_cgroup = v2 + "/";
    while (std::getline(in, line))
      if (line.rfind("0::", 0) == 0) home_cgroup = v2 + line.substr(3);
  }
  cgroup = v2 + "/kspan-carrier-probe-" + id;
  std::atexit(Cleanup);
  if (Sh("ip netns add " + ns_a) || Sh("ip netns add " + ns_b) ||
      Sh("ip link add kpA" + id + " netns " + ns_a + " type veth peer name kpB" + id + " netns " + ns_b) ||
      Sh("ip -n " + ns_a + " addr add 10.232.0.1/24 dev kpA" + id) ||
      Sh("ip -n " + ns_b + " addr add " + kAddrB + "/24 dev kpB" + id) ||
      Sh("ip -n " + ns_a + " link set kpA" + id + " up") ||
      Sh("ip -n " + ns_b + " link set kpB" + id + " up")) {
    std::fprintf(stderr, "setting up the namespaces failed\n");
    return 1;
  }
  mkdir(cgroup.c_str(), 0755);
  std::ofstream(cgroup + "/cgroup.procs") << getpid();
  const int cg_fd = open(cgroup.c_str(), O_RDONLY | O_DIRECTORY);

  // BPF run-time statistics on while the probe runs (the fd turns them off when closed):
  // the programs' own ns per callback, apart from the round trip's noise.
  const int stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
  std::map<std::string, std::vector<Run>> runs;
  std::map<std::string, std::pair<uint64_t, uint64_t>> prog_runs;  // mode -> (runs, ns)
  const char* modes[] = {"base", "option-idle", "option", "option-kernel", "skmsg-pass", "skmsg-push"};
  for (int r = 0; r < reps; ++r) {
    for (const char* mode : modes) {
      const std::string m = mode;
      std::unique_ptr<kspan::carrier::TcpOptionCarrier> carrier;
      kspan_carrier_probe_bpf* skel = nullptr;
      std::vector<bpf_link*> links;
      size_t pushed = 0;
      if (m.rfind("option", 0) == 0) {
        auto c = kspan::carrier::TcpOptionCarrier::Start(
            {.cgroup_path = cgroup, .kernel_contexts = m == "option-kernel"});
        if (!c.ok()) {
          std::fprintf(stderr, "%s: %s\n", mode, c.status().ToString().c_str());
          return 1;
        }
        carrier = std::move(*c);
      } else if (m.rfind("skmsg", 0) == 0) {
        skel = kspan_carrier_probe_bpf__open();
        pushed = m == "skmsg-push" ? 70 : 0;
        skel->rodata->ks_probe_push = static_cast<uint32_t>(pushed);
        if (kspan_carrier_probe_bpf__load(skel) != 0) {
          std::fprintf(stderr, "%s: the kernel refused the sk_msg probe\n", mode);
          return 1;
        }
        links.push_back(bpf_program__attach_cgroup(skel->progs.ks_probe_sockops, cg_fd));
        if (bpf_prog_attach(bpf_program__fd(skel->progs.ks_probe_msg), bpf_map__fd(skel->maps.ks_probe_socks),
                            BPF_SK_MSG_VERDICT, 0) != 0) {
          std::perror("attaching sk_msg");
          return 1;
        }
      }
      const Run run = RoundTrips(n, m == "option" ? carrier.get() : nullptr, pushed);
      runs[m].push_back(run);
      if (carrier) {
        const auto pr = carrier->Runs();
        prog_runs[m].first += pr.runs;
        prog_runs[m].second += pr.ns;
      }
      if (skel) {
        for (bpf_program* prog : {skel->progs.ks_probe_sockops, skel->progs.ks_probe_msg}) {
          bpf_prog_info info{};
          uint32_t len = sizeof(info);
          if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len) == 0) {
            prog_runs[m].first += info.run_cnt;
            prog_runs[m].second += info.run_time_ns;
          }
        }
        bpf_prog_detach2(bpf_program__fd(skel->progs.ks_probe_msg), bpf_map__fd(skel->maps.ks_probe_socks),
                         BPF_SK_MSG_VERDICT);
        for (auto* l : links) bpf_link__destroy(l);
        kspan_carrier_probe_bpf__destroy(skel);
      }
      if (carrier && r == 0 && m != "option-idle") {
        const auto k = carrier->Counters();
        std::printf("# %s: set in the kernel %lu, written %lu, parsed %lu, too_big %lu, no_space %lu\n", mode,
                    k.set, k.written, k.parsed, k.too_big, k.no_space);
      }
    }
  }
  for (const auto& [mode, pr] : prog_runs) {
    const double total_rtts = static_cast<double>(n + 1) * reps;
    std::printf("# %s: BPF %.2f runs and %.0f ns per round trip (%.0f ns a run)%s\n", mode.c_str(),
                pr.first / total_rtts, pr.second / total_rtts, pr.first ? double(pr.second) / pr.first : 0.0,
                stats_fd < 0 ? " [BPF stats unavailable]" : "");
  }
  std::printf("%-12s %12s %12s %18s\n", "mode", "ns/rtt", "+ns vs base", "FIONREAD (expect)");
  std::vector<double> base;
  for (const auto& r : runs["base"]) base.push_back(r.ns_per_rtt);
  std::sort(base.begin(), base.end());
  const double base_med = base[base.size() / 2];
  for (const char* mode : modes) {
    std::vector<double> v;
    int fionread_min = 1 << 30;
    for (const auto& r : runs[mode]) {
      v.push_back(r.ns_per_rtt);
      fionread_min = std::min(fionread_min, r.fionread);
    }
    std::sort(v.begin(), v.end());
    const std::string m = mode;
    const int expect = 80 + (m == "skmsg-push" ? 70 : 0);
    std::printf("%-12s %12.0f %12.0f %10d (%d)\n", mode, v[v.size() / 2], v[v.size() / 2] - base_med,
                fionread_min, expect);
  }
  close(cg_fd);
  if (stats_fd >= 0) close(stats_fd);
  return 0;
}
