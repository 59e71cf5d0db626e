#include "carrier/http_header_carrier.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "kspan/bpf/carrier.h"
#include "kspan/bpf/hdr_carrier.h"
#include "kspan_hdr_carrier.skel.h"

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

namespace kspan::carrier {

struct HttpHeaderCarrier::Impl {
  kspan_hdr_carrier_bpf* skel = nullptr;
  std::vector<bpf_link*> links;
  bool msg_attached = false;
  ring_buffer* ring = nullptr;
  std::vector<SentContext> sent;
  uint64_t dropped = 0;
  int cgroup_fd = -1;
  ~Impl() {
    // The sockops program first: no socket joins the map after this. Then every socket
    // leaves the map now (each is plain TCP again when this returns: a psock keeps its own
    // reference to the sk_msg program, so detaching the program alone would not stop it,
    // and the map's own teardown is deferred). A killed agent gets the deferred teardown.
    for (bpf_link* l : links) bpf_link__destroy(l);
    if (skel) {
      const int map = bpf_map__fd(skel->maps.ks_hdr_socks);
      uint64_t key = 0;
      for (int i = 0; i < KSPAN_HDR_MAX_CONNS && bpf_map_get_next_key(map, nullptr, &key) == 0; ++i)
        bpf_map_delete_elem(map, &key);
    }
    if (msg_attached)
      bpf_prog_detach2(bpf_program__fd(skel->progs.ks_hdr_msg), bpf_map__fd(skel->maps.ks_hdr_socks),
                       BPF_SK_MSG_VERDICT);
    if (ring) ring_buffer__free(ring);
    if (skel) kspan_hdr_carrier_bpf__destroy(skel);
    if (cgroup_fd >= 0) close(cgroup_fd);
  }
  static int OnEvent(void* self, void* data, size_t size) {
    if (size < sizeof(kspan_car_event)) return 0;
    kspan_car_event e;
    std::memcpy(&e, data, sizeof(e));
    auto* impl = static_cast<Impl*>(self);
    if (e.kind != KSPAN_CAR_EV_SENT) return 0;
    if (impl->sent.size() >= kMaxPendingReports) {
      ++impl->dropped;
      return 0;
    }
    SentContext s{e.tgid, e.fd, e.cookie, e.offset, {}, e.tid, e.ts_ns};
    std::memcpy(s.context.trace_id.data(), e.ctx.trace_id, sizeof(e.ctx.trace_id));
    std::memcpy(s.context.span_id.data(), e.ctx.span_id, sizeof(e.ctx.span_id));
    impl->sent.push_back(s);
    return 0;
  }
};

HttpHeaderCarrier::HttpHeaderCarrier(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpHeaderCarrier::~HttpHeaderCarrier() = default;

Result<std::unique_ptr<HttpHeaderCarrier>> HttpHeaderCarrier::Start(const HttpHeaderCarrierOptions& options) {
  auto impl = std::make_unique<Impl>();
  std::string cgroup = options.cgroup_path;
  auto fd = OpenCarrierCgroup(&cgroup, "the HTTP-header carrier");
  if (!fd.ok()) return fd.status();
  impl->cgroup_fd = *fd;
  impl->skel = kspan_hdr_carrier_bpf__open();
  if (!impl->skel)
    return Internal(std::string("opening the HTTP-header carrier's BPF object failed: ") +
                    std::strerror(errno));
  impl->skel->rodata->ks_hdr_netns = options.netns_cookie;
  impl->skel->rodata->ks_hdr_self_tgid = options.self_tgid;
  impl->skel->rodata->ks_hdr_keep_opt_cb = options.keep_option_callbacks ? 1 : 0;
  if (int err = kspan_hdr_carrier_bpf__load(impl->skel); err)
    return Unavailable(std::string("the kernel refused the HTTP-header carrier's programs: ") +
                       std::strerror(-err));
  // sk_msg on the map before any socket can join it.
  if (bpf_prog_attach(bpf_program__fd(impl->skel->progs.ks_hdr_msg),
                      bpf_map__fd(impl->skel->maps.ks_hdr_socks), BPF_SK_MSG_VERDICT, 0) != 0)
    return Unavailable(std::string("attaching the HTTP-header carrier's sk_msg program failed: ") +
                       std::strerror(errno));
  impl->msg_attached = true;
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, impl->skel->obj) {
    if (prog == impl->skel->progs.ks_hdr_msg || prog == impl->skel->progs.ks_hdr_sockops) continue;
    bpf_link* l = bpf_program__attach(prog);
    if (!l)
      return Unavailable(std::string("attaching the HTTP-header carrier's ") + bpf_program__name(prog) +
                         " failed: " + std::strerror(errno) + " (syscall tracepoints needed)");
    impl->links.push_back(l);
  }
  bpf_link* link = bpf_program__attach_cgroup(impl->skel->progs.ks_hdr_sockops, impl->cgroup_fd);
  if (!link)
    return Unavailable("attaching the HTTP-header carrier's sockops program to " + cgroup +
                       " failed: " + std::strerror(errno) + " (is it a cgroup v2 directory?)");
  impl->links.insert(impl->links.begin(), link);
  impl->ring =
      ring_buffer__new(bpf_map__fd(impl->skel->maps.ks_hdr_events), &Impl::OnEvent, impl.get(), nullptr);
  if (!impl->ring)
    return Internal(std::string("the HTTP-header carrier's ring buffer: ") + std::strerror(errno));
  return std::unique_ptr<HttpHeaderCarrier>(new HttpHeaderCarrier(std::move(impl)));
}

std::vector<SentContext> HttpHeaderCarrier::DrainSent() {
  ring_buffer__consume(impl_->ring);
  std::vector<SentContext> out;
  out.swap(impl_->sent);
  return out;
}

bool HttpHeaderCarrier::InSockhash(int sock_fd) const {
  uint64_t cookie = 0;
  socklen_t len = sizeof(cookie);
  if (getsockopt(sock_fd, SOL_SOCKET, SO_COOKIE, &cookie, &len) != 0) return false;
  uint64_t value = 0;
  // A sockhash lookup from user space returns the socket's cookie (8-byte value).
  return bpf_map__lookup_elem(impl_->skel->maps.ks_hdr_socks, &cookie, sizeof(cookie), &value, sizeof(value),
                              0) == 0;
}

HttpHeaderCounters HttpHeaderCarrier::Counters() const {
  const int cpus = libbpf_num_possible_cpus();
  HttpHeaderCounters c;
  uint64_t* fields[KSPAN_HDR_COUNTERS] = {&c.written,       &c.skip_not_http,        &c.skip_tls,
                                          &c.skip_http2,    &c.skip_has_traceparent, &c.skip_connect,
                                          &c.skip_upgrade,  &c.skip_split_head,      &c.skip_pipelined,
                                          &c.skip_framing,  &c.skip_mid_stream,      &c.push_failed,
                                          &c.removed,       &c.incoming_valid,       &c.incoming_invalid,
                                          &c.events_lost,   &c.ts_written,           &c.ts_app_has,
                                          &c.ts_lost,       &c.ts_in_valid,          &c.ts_in_truncated,
                                          &c.ts_in_invalid, &c.ts_in_too_many,       &c.ts_in_no_traceparent};
  c.events_lost += impl_->dropped;
  if (cpus <= 0) return c;
  std::vector<uint64_t> per_cpu(static_cast<size_t>(cpus));
  for (uint32_t i = 0; i < KSPAN_HDR_COUNTERS; ++i) {
    if (bpf_map__lookup_elem(impl_->skel->maps.ks_hdr_counters, &i, sizeof(i), per_cpu.data(),
                             per_cpu.size() * sizeof(uint64_t), 0) != 0)
      continue;
    for (uint64_t v : per_cpu) *fields[i] += v;
  }
  return c;
}

ProgramRuns HttpHeaderCarrier::Runs() const {
  ProgramRuns total;
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, impl_->skel->obj) {
    const int fd = bpf_program__fd(prog);
    if (fd < 0) continue;
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) continue;
    total.runs += info.run_cnt;
    total.ns += info.run_time_ns;
  }
  return total;
}

}  // namespace kspan::carrier
