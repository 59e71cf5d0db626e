#include "carrier/tcp_option_carrier.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "kspan/bpf/carrier.h"
#include "kspan_carrier.skel.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

namespace kspan::carrier {

struct TcpOptionCarrier::Impl {
  kspan_carrier_bpf* skel = nullptr;
  bpf_link* link = nullptr;
  int cgroup_fd = -1;
  ~Impl() {
    if (link) bpf_link__destroy(link);  // detach first: no callback runs after this
    if (skel) kspan_carrier_bpf__destroy(skel);
    if (cgroup_fd >= 0) close(cgroup_fd);
  }
};

TcpOptionCarrier::TcpOptionCarrier(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TcpOptionCarrier::~TcpOptionCarrier() = default;

Result<std::unique_ptr<TcpOptionCarrier>> TcpOptionCarrier::Start(const TcpOptionCarrierOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->cgroup_fd = open(options.cgroup_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (impl->cgroup_fd < 0)
    return NotFound("the TCP-option carrier attaches to a cgroup v2 directory, and " + options.cgroup_path +
                    " cannot be opened: " + std::strerror(errno));
  impl->skel = kspan_carrier_bpf__open();
  if (!impl->skel)
    return Internal(std::string("opening the carrier's BPF object failed: ") + std::strerror(errno));
  impl->skel->rodata->ks_car_netns = options.netns_cookie;
  if (int err = kspan_carrier_bpf__load(impl->skel); err)
    return Unavailable(std::string("the kernel refused the carrier's sockops program: ") +
                       std::strerror(-err));
  impl->link = bpf_program__attach_cgroup(impl->skel->progs.ks_carrier, impl->cgroup_fd);
  if (!impl->link)
    return Unavailable("attaching the carrier's sockops program to " + options.cgroup_path +
                       " failed: " + std::strerror(errno) + " (is it a cgroup v2 directory?)");
  return std::unique_ptr<TcpOptionCarrier>(new TcpOptionCarrier(std::move(impl)));
}

Status TcpOptionCarrier::SetOutgoing(int sock_fd, const WireContext& ctx) {
  kspan_car_out out{};
  std::memcpy(out.ctx.trace_id, ctx.trace_id.data(), sizeof(out.ctx.trace_id));
  std::memcpy(out.ctx.span_id, ctx.span_id.data(), sizeof(out.ctx.span_id));
  out.state = KSPAN_CAR_PENDING;
  if (bpf_map__update_elem(impl_->skel->maps.ks_car_out, &sock_fd, sizeof(sock_fd), &out, sizeof(out),
                           BPF_ANY) != 0)
    return Internal(std::string("setting the outgoing context failed: ") + std::strerror(errno));
  return Status::Ok();
}

std::optional<ReceivedContext> TcpOptionCarrier::Incoming(int sock_fd) const {
  kspan_car_in in{};
  if (bpf_map__lookup_elem(impl_->skel->maps.ks_car_in, &sock_fd, sizeof(sock_fd), &in, sizeof(in), 0) != 0)
    return std::nullopt;
  ReceivedContext r;
  std::memcpy(r.context.trace_id.data(), in.ctx.trace_id, sizeof(in.ctx.trace_id));
  std::memcpy(r.context.span_id.data(), in.ctx.span_id, sizeof(in.ctx.span_id));
  r.seq = in.seq;
  r.count = in.count;
  return r;
}

CarrierCounters TcpOptionCarrier::Counters() const {
  const int cpus = libbpf_num_possible_cpus();
  CarrierCounters c;
  uint64_t* fields[KSPAN_CAR_COUNTERS] = {&c.written, &c.rewritten, &c.no_space,
                                          &c.parsed,  &c.malformed, &c.too_big};
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
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(bpf_program__fd(impl_->skel->progs.ks_carrier), &info, &len) != 0) return {};
  return {info.run_cnt, info.run_time_ns};
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
