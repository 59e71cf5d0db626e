#include "carrier/tcp_option_carrier.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "kspan/bpf/carrier.h"
#include "kspan_carrier.skel.h"

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif
#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

namespace kspan::carrier {

namespace {

WireContext FromKernel(const kspan_car_ctx& k) {
  WireContext c;
  std::memcpy(c.trace_id.data(), k.trace_id, sizeof(k.trace_id));
  std::memcpy(c.span_id.data(), k.span_id, sizeof(k.span_id));
  return c;
}

std::optional<ReceivedContext> Received(const kspan_car_conn& c) {
  if (c.in_count == 0) return std::nullopt;
  return ReceivedContext{FromKernel(c.in), static_cast<uint32_t>(c.in_seq - c.rcv_base), c.in_count};
}

Result<uint64_t> SocketCookie(int fd) {
  uint64_t cookie = 0;
  socklen_t len = sizeof(cookie);
  if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len) != 0)
    return InvalidArgument(std::string("SO_COOKIE: ") + std::strerror(errno));
  return cookie;
}

}  // namespace

struct TcpOptionCarrier::Impl {
  kspan_carrier_bpf* skel = nullptr;
  std::vector<bpf_link*> links;
  ring_buffer* ring = nullptr;
  std::vector<SentContext> sent;
  std::vector<ReceivedEvent> received;
  std::vector<ReadContext> read;
  uint64_t dropped = 0;
  int cgroup_fd = -1;
  ~Impl() {
    for (bpf_link* l : links) bpf_link__destroy(l);  // detach first: no callback runs after this
    if (ring) ring_buffer__free(ring);
    if (skel) kspan_carrier_bpf__destroy(skel);
    if (cgroup_fd >= 0) close(cgroup_fd);
  }
  static int OnSent(void* self, void* data, size_t size) {
    if (size < sizeof(kspan_car_event)) return 0;
    kspan_car_event e;
    std::memcpy(&e, data, sizeof(e));
    auto* impl = static_cast<Impl*>(self);
    auto keep = [impl](auto& v, auto&& value) {
      if (v.size() >= kMaxPendingReports) {
        ++impl->dropped;
        return;
      }
      v.push_back(std::move(value));
    };
    if (e.kind == KSPAN_CAR_EV_SENT)
      keep(impl->sent, SentContext{e.tgid, e.fd, e.cookie, e.offset, FromKernel(e.ctx), e.tid, e.ts_ns});
    else if (e.kind == KSPAN_CAR_EV_RECEIVED)
      keep(impl->received, ReceivedEvent{e.cookie, e.offset, FromKernel(e.ctx)});
    else if (e.kind == KSPAN_CAR_EV_READ || e.kind == KSPAN_CAR_EV_FRESH)
      keep(impl->read, ReadContext{e.tgid, e.tid, e.fd, e.cookie, e.offset, e.ts_ns, FromKernel(e.ctx),
                                   e.kind == KSPAN_CAR_EV_FRESH});
    return 0;
  }
};

TcpOptionCarrier::TcpOptionCarrier(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TcpOptionCarrier::~TcpOptionCarrier() = default;

Result<std::unique_ptr<TcpOptionCarrier>> TcpOptionCarrier::Start(const TcpOptionCarrierOptions& options) {
  auto impl = std::make_unique<Impl>();
  std::string cgroup = options.cgroup_path;
  auto fd = OpenCarrierCgroup(&cgroup, "the TCP-option carrier");
  if (!fd.ok()) return fd.status();
  impl->cgroup_fd = *fd;
  impl->skel = kspan_carrier_bpf__open();
  if (!impl->skel)
    return Internal(std::string("opening the carrier's BPF object failed: ") + std::strerror(errno));
  impl->skel->rodata->ks_car_netns = options.netns_cookie;
  impl->skel->rodata->ks_car_self_tgid = options.self_tgid;
  // Every program but the sockops one is a syscall tracepoint of the sending side.
  std::vector<bpf_program*> tracepoints;
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, impl->skel->obj) {
    if (prog == impl->skel->progs.ks_carrier) continue;
    tracepoints.push_back(prog);
    bpf_program__set_autoload(prog, options.kernel_contexts);
  }
  if (int err = kspan_carrier_bpf__load(impl->skel); err)
    return Unavailable(std::string("the kernel refused the carrier's programs: ") + std::strerror(-err));
  bpf_link* link = bpf_program__attach_cgroup(impl->skel->progs.ks_carrier, impl->cgroup_fd);
  if (!link)
    return Unavailable("attaching the carrier's sockops program to " + cgroup +
                       " failed: " + std::strerror(errno) + " (is it a cgroup v2 directory?)");
  impl->links.push_back(link);
  if (options.kernel_contexts) {
    for (bpf_program* p : tracepoints) {
      bpf_link* l = bpf_program__attach(p);
      if (!l)
        return Unavailable(std::string("attaching the carrier's ") + bpf_program__name(p) +
                           " failed: " + std::strerror(errno) + " (syscall tracepoints needed)");
      impl->links.push_back(l);
    }
  }
  impl->ring =
      ring_buffer__new(bpf_map__fd(impl->skel->maps.ks_car_events), &Impl::OnSent, impl.get(), nullptr);
  if (!impl->ring) return Internal(std::string("the carrier's ring buffer: ") + std::strerror(errno));
  return std::unique_ptr<TcpOptionCarrier>(new TcpOptionCarrier(std::move(impl)));
}

Status TcpOptionCarrier::SetOutgoing(int sock_fd, const WireContext& ctx) {
  auto cookie = SocketCookie(sock_fd);
  if (!cookie.ok()) return cookie.status();
  bpf_map* map = impl_->skel->maps.ks_car_conns;
  kspan_car_conn c{};
  if (bpf_map__lookup_elem(map, &*cookie, sizeof(uint64_t), &c, sizeof(c), 0) != 0)
    return NotFound("the carrier does not know this connection (established before it started?)");
  std::memcpy(c.out.trace_id, ctx.trace_id.data(), sizeof(c.out.trace_id));
  std::memcpy(c.out.span_id, ctx.span_id.data(), sizeof(c.out.span_id));
  c.out_state = KSPAN_CAR_PENDING;
  c.out_count += 1;
  if (bpf_map__update_elem(map, &*cookie, sizeof(uint64_t), &c, sizeof(c), BPF_EXIST) != 0)
    return Internal(std::string("setting the outgoing context failed: ") + std::strerror(errno));
  return Status::Ok();
}

std::optional<ReceivedContext> TcpOptionCarrier::Incoming(int sock_fd) const {
  auto cookie = SocketCookie(sock_fd);
  kspan_car_conn c{};
  if (!cookie.ok() ||
      bpf_map__lookup_elem(impl_->skel->maps.ks_car_conns, &*cookie, sizeof(uint64_t), &c, sizeof(c), 0) != 0)
    return std::nullopt;
  return Received(c);
}

std::vector<SentContext> TcpOptionCarrier::DrainSent() {
  ring_buffer__consume(impl_->ring);
  std::vector<SentContext> out;
  out.swap(impl_->sent);
  return out;
}

std::vector<ReceivedEvent> TcpOptionCarrier::DrainReceived() {
  ring_buffer__consume(impl_->ring);
  std::vector<ReceivedEvent> out;
  out.swap(impl_->received);
  return out;
}

std::vector<ReadContext> TcpOptionCarrier::DrainRead() {
  ring_buffer__consume(impl_->ring);
  std::vector<ReadContext> out;
  out.swap(impl_->read);
  return out;
}

std::vector<CarrierConn> TcpOptionCarrier::Connections() const {
  std::vector<CarrierConn> out;
  bpf_map* map = impl_->skel->maps.ks_car_conns;
  uint64_t key = 0, next = 0;
  const void* prev = nullptr;
  for (int i = 0; i < KSPAN_CAR_MAX_CONNS && bpf_map__get_next_key(map, prev, &next, sizeof(next)) == 0;
       ++i) {
    key = next;
    prev = &key;
    kspan_car_conn c{};
    if (bpf_map__lookup_elem(map, &key, sizeof(key), &c, sizeof(c), 0) != 0) continue;
    out.push_back({key, c.role == KSPAN_CAR_ACTIVE, Received(c)});
  }
  return out;
}

CarrierCounters TcpOptionCarrier::Counters() const {
  const int cpus = libbpf_num_possible_cpus();
  CarrierCounters c;
  uint64_t* fields[KSPAN_CAR_COUNTERS] = {&c.written, &c.rewritten, &c.no_space,    &c.parsed,  &c.malformed,
                                          &c.too_big, &c.set,       &c.events_lost, &c.unplaced};
  c.reports_dropped = impl_->dropped;
  if (cpus <= 0) return c;
  std::vector<uint64_t> per_cpu(static_cast<size_t>(cpus));
  for (uint32_t i = 0; i < KSPAN_CAR_COUNTERS; ++i) {
    if (bpf_map__lookup_elem(impl_->skel->maps.ks_car_counters, &i, sizeof(i), per_cpu.data(),
                             per_cpu.size() * sizeof(uint64_t), 0) != 0)
      continue;
    for (uint64_t v : per_cpu) *fields[i] += v;
  }
  return c;
}

ProgramRuns TcpOptionCarrier::Runs() const {
  ProgramRuns total;
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, impl_->skel->obj) {
    const int fd = bpf_program__fd(prog);
    if (fd < 0) continue;  // not loaded (kernel_contexts off)
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) continue;
    total.runs += info.run_cnt;
    total.ns += info.run_time_ns;
  }
  return total;
}

Result<int> OpenCarrierCgroup(std::string* path, std::string_view carrier) {
  if (path->empty()) {
    auto root = CgroupV2Root();
    if (!root.ok()) return root.status();
    *path = *root;
  }
  const int fd = open(path->c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return NotFound(std::string(carrier) + " attaches to a cgroup v2 directory, and " + *path +
                    " cannot be opened: " + std::strerror(errno));
  return fd;
}

Result<std::string> CgroupV2Root() {
  std::ifstream in("/proc/self/mounts");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string device, dir, type;
    if (fields >> device >> dir >> type && type == "cgroup2") return dir;
  }
  return NotFound(
      "cgroup v2 is not mounted (no cgroup2 line in /proc/self/mounts); the trace-context carriers "
      "attach to it: mount -t cgroup2 none /sys/fs/cgroup/unified");
}

Result<uint64_t> CurrentNetnsCookie() {
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Internal(std::string("socket: ") + std::strerror(errno));
  uint64_t cookie = 0;
  socklen_t len = sizeof(cookie);
  const int rc = getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len);
  const int err = errno;
  close(fd);
  if (rc != 0) return Unavailable(std::string("SO_NETNS_COOKIE: ") + std::strerror(err));
  return cookie;
}

}  // namespace kspan::carrier
