/* The trace-context carrier: a TCP header option written and parsed by one sockops program
 * (wire format and shared state: include/kspan/bpf/carrier.h; why this and not a header
 * spliced into HTTP: docs/tracing.md "Context across hosts").
 *
 * Its own skeleton (kspan_carrier), apart from the capture programs: it attaches to a
 * cgroup v2 (the root for a host agent, a test's own cgroup in tests) and can be turned off
 * without touching capture.
 *
 * Per TCP connection in scope (established under the carrier; optionally only in one
 * network namespace), one ks_car_conns entry keyed by the socket cookie:
 *
 *   sending:   out_state IDLE --(context set: by the write tracepoints below for a client's
 *              new request, or by user space)--> PENDING --(first data segment that fits,
 *              option written)--> IDLE. HDR_OPT_LEN_CB reserves 28 bytes only while
 *              PENDING, and only when the segment still fits the MSS with them, so no packet
 *              ever grows past the path MTU; BPF_WRITE_HDR_TCP_CURRENT_MSS reserves too so
 *              the segments of the write that set the context are sized with the room.
 *   receiving: PARSE_HDR_OPT_CB (only for segments with an option Linux does not know):
 *              an option with our ExID and exactly 28 bytes and non-zero ids is kept with
 *              the segment's sequence number; anything else with our ExID is counted as
 *              malformed and ignored.
 *
 * Never: a payload byte changed, a socket redirected, a sockmap (so ioctl(FIONREAD),
 * MSG_PEEK and splice keep the kernel's own TCP code), a verdict that drops. The sockops
 * program always returns 1 (the kernel ignores it for these callbacks). */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "kspan/bpf/carrier.h"

_Static_assert(sizeof(struct kspan_car_ctx) == 24, "trace id + span id");
_Static_assert(4 + sizeof(struct kspan_car_ctx) == KSPAN_CAR_LEN, "kind, length, ExID, ids");
_Static_assert(sizeof(struct kspan_car_conn) == 80, "explicit padding");
_Static_assert(sizeof(struct kspan_car_event) == 64, "explicit padding");

/* 0: every network namespace; else only sockets whose netns cookie matches. */
const volatile __u64 ks_car_netns = 0;
/* The agent's own process: its sockets never carry anything. */
const volatile __u32 ks_car_self_tgid = 0;

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, KSPAN_CAR_MAX_CONNS);
  __type(key, __u64); /* socket cookie */
  __type(value, struct kspan_car_conn);
} ks_car_conns SEC(".maps");

/* The context of the request each thread is serving: set when a server thread's read
 * starts at the first byte of a request that came with a context; when it starts another
 * request without one (plaintext), a fresh trace id (span id zero) and that read, which is
 * reported (FRESH) at the first call the thread sends for it, so only requests that call
 * out cost a report. A client request the thread then sends continues that trace (thread
 * causality, as the agent's rule 3 for CLIENT spans). */
struct ks_car_serving {
  struct kspan_car_ctx ctx;
  __u64 read_ts; /* fresh: the read's exit (CLOCK_BOOTTIME ns) */
  __u64 offset;  /* fresh: the request's first byte on the connection */
  __u64 cookie;  /* fresh: the connection */
  __s32 fd;      /* fresh: the read's fd */
  __u32 unsent;  /* fresh and not reported yet */
};
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, KSPAN_CAR_MAX_THREADS);
  __type(key, __u64); /* pid_tgid */
  __type(value, struct ks_car_serving);
} ks_car_threads SEC(".maps");

/* A read from a server end of ours, between the syscall's entry and its exit. */
struct ks_car_read {
  __u64 cookie;
  struct sock *sk;
  __u64 buf; /* the syscall's second argument */
  __s32 fd;
  __u32 vector; /* what buf is: 0 the buffer (read, recvfrom), 1 an iovec array (readv),
                 * 2 a msghdr (recvmsg) */
};
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, KSPAN_CAR_MAX_THREADS);
  __type(key, __u64); /* pid_tgid */
  __type(value, struct ks_car_read);
} ks_car_reads SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 256 * 1024); /* 3,640 reports (64 B + 8 B header) between two drains */
} ks_car_events SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, KSPAN_CAR_COUNTERS);
  __type(key, __u32);
  __type(value, __u64);
} ks_car_counters SEC(".maps");

#define KS_TCPHDR_FIN 0x01
#define KS_TCPHDR_SYN 0x02
#define KS_S_IFMT 00170000
#define KS_S_IFSOCK 0140000
#define KS_IPPROTO_TCP 6

static __always_inline void ks_car_count(__u32 idx) {
  __u64 *v = bpf_map_lookup_elem(&ks_car_counters, &idx);
  if (v) *v += 1; /* per-CPU slot */
}

static __always_inline int ks_car_ids_valid(const struct kspan_car_ctx *c) {
  __u64 t0 = 0, t1 = 0, s = 0;
  __builtin_memcpy(&t0, c->trace_id, 8);
  __builtin_memcpy(&t1, c->trace_id + 8, 8);
  __builtin_memcpy(&s, c->span_id, 8);
  return (t0 | t1) != 0 && s != 0; /* W3C: all-zero ids are invalid */
}

static __always_inline struct kspan_car_conn *ks_car_conn(struct bpf_sock_ops *skops) {
  __u64 cookie = bpf_get_socket_cookie(skops);
  return bpf_map_lookup_elem(&ks_car_conns, &cookie);
}

static __always_inline void ks_car_established(struct bpf_sock_ops *skops, __u8 role) {
  if (ks_car_netns != 0 && bpf_get_netns_cookie(skops) != ks_car_netns) return;
  __u64 cookie = bpf_get_socket_cookie(skops);
  struct kspan_car_conn c = {};
  c.snd_base = skops->snd_nxt;
  c.rcv_base = skops->rcv_nxt;
  c.rcv_mark = skops->rcv_nxt;
  c.role = role;
  if (bpf_map_update_elem(&ks_car_conns, &cookie, &c, BPF_ANY) != 0) return;
  bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG |
                                       BPF_SOCK_OPS_PARSE_UNKNOWN_HDR_OPT_CB_FLAG |
                                       BPF_SOCK_OPS_STATE_CB_FLAG);
}

static __always_inline void ks_car_reserve(struct bpf_sock_ops *skops) {
  struct kspan_car_conn *c = ks_car_conn(skops);
  if (!c || c->out_state != KSPAN_CAR_PENDING) return;
  if (skops->args[0] != BPF_WRITE_HDR_TCP_CURRENT_MSS) {
    /* A real segment: only one with payload, no SYN/FIN, that still fits the MSS. */
    if (skops->skb_tcp_flags & (KS_TCPHDR_SYN | KS_TCPHDR_FIN)) return;
    __u32 payload = skops->skb_len;
    if (payload == 0) return;
    if (payload + KSPAN_CAR_LEN > skops->mss_cache) {
      ks_car_count(KSPAN_CAR_TOO_BIG);
      c->out_state = KSPAN_CAR_IDLE; /* its first segment is gone without the option */
      return;
    }
  }
  if (bpf_reserve_hdr_opt(skops, KSPAN_CAR_LEN, 0) != 0 && skops->args[0] != BPF_WRITE_HDR_TCP_CURRENT_MSS)
    ks_car_count(KSPAN_CAR_NOSPC);
}

static __always_inline void ks_car_write(struct bpf_sock_ops *skops) {
  struct kspan_car_conn *c = ks_car_conn(skops);
  if (!c || c->out_state != KSPAN_CAR_PENDING) return;
  struct tcphdr *th = skops->skb_data;
  if ((void *)(th + 1) > skops->skb_data_end) return;
  const __u32 seq = bpf_ntohl(th->seq); /* read now: storing invalidates packet pointers */
  __u8 opt[KSPAN_CAR_LEN] = {KSPAN_CAR_KIND, KSPAN_CAR_LEN, KSPAN_CAR_EXID_HI, KSPAN_CAR_EXID_LO};
  __builtin_memcpy(opt + 4, &c->out, sizeof(c->out));
  long err = bpf_store_hdr_opt(skops, opt, sizeof(opt), 0);
  if (err == 0) {
    c->out_seq = seq;
    c->out_state = KSPAN_CAR_IDLE;
    ks_car_count(KSPAN_CAR_WRITTEN);
  } else if (err == -28 /* ENOSPC */) {
    ks_car_count(KSPAN_CAR_NOSPC);
  }
}

static __always_inline void ks_car_parse(struct bpf_sock_ops *skops) {
  __u8 opt[KSPAN_CAR_LEN] = {KSPAN_CAR_KIND, 4, KSPAN_CAR_EXID_HI, KSPAN_CAR_EXID_LO};
  long n = bpf_load_hdr_opt(skops, opt, sizeof(opt), 0);
  if (n == -42 /* ENOMSG: not ours */) return;
  if (n != KSPAN_CAR_LEN || opt[1] != KSPAN_CAR_LEN) {
    ks_car_count(KSPAN_CAR_MALFORMED); /* ours by ExID, but too long, too short or bad */
    return;
  }
  struct kspan_car_ctx ctx;
  __builtin_memcpy(&ctx, opt + 4, sizeof(ctx));
  if (!ks_car_ids_valid(&ctx)) {
    ks_car_count(KSPAN_CAR_MALFORMED);
    return;
  }
  struct tcphdr *th = skops->skb_data;
  if ((void *)(th + 1) > skops->skb_data_end) return;
  const __u32 seq = bpf_ntohl(th->seq);
  struct kspan_car_conn *c = ks_car_conn(skops);
  if (!c) return;
  c->in = ctx;
  c->in_seq = seq;
  c->in_count += 1;
  ks_car_count(KSPAN_CAR_PARSED);
  struct kspan_car_event *e = bpf_ringbuf_reserve(&ks_car_events, sizeof(*e), 0);
  if (!e) {
    ks_car_count(KSPAN_CAR_EVENT_LOST);
    return;
  }
  e->kind = KSPAN_CAR_EV_RECEIVED;
  e->tgid = 0;
  e->fd = -1;
  e->tid = 0;
  e->ts_ns = bpf_ktime_get_boot_ns();
  e->cookie = bpf_get_socket_cookie(skops);
  e->offset = (__u32)(seq - c->rcv_base);
  e->ctx = ctx;
  bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
}

SEC("sockops")
int ks_carrier(struct bpf_sock_ops *skops) {
  switch (skops->op) {
    case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB: ks_car_established(skops, KSPAN_CAR_ACTIVE); break;
    case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB: ks_car_established(skops, KSPAN_CAR_PASSIVE); break;
    case BPF_SOCK_OPS_HDR_OPT_LEN_CB: ks_car_reserve(skops); break;
    case BPF_SOCK_OPS_WRITE_HDR_OPT_CB: ks_car_write(skops); break;
    case BPF_SOCK_OPS_PARSE_HDR_OPT_CB: ks_car_parse(skops); break;
  }
  return 1;
}

/* ---- The sending side for unmodified programs: a client's new request gets a context ----
 *
 * On entry to a data-sending syscall on a socket: if it is a connection of ours opened by
 * this end (a client), nothing is waiting to be sent (write_seq == snd_nxt), and something
 * was received since the last context was set (an answer: so this write starts the next
 * request) or none was ever set, set a fresh random context for it and tell user space
 * which stream offset it belongs to. Pipelined requests after the first therefore carry
 * nothing: a missing context, never a wrong one. */

static __always_inline struct sock *ks_car_fd_sock(int fd) {
  struct task_struct *task = (struct task_struct *)bpf_get_current_task();
  struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
  if (!fdt || fd < 0) return NULL;
  unsigned int max_fds = BPF_CORE_READ(fdt, max_fds);
  if ((unsigned int)fd >= max_fds) return NULL;
  struct file **fds = BPF_CORE_READ(fdt, fd);
  struct file *f = NULL;
  bpf_core_read(&f, sizeof(f), &fds[fd]);
  if (!f) return NULL;
  umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
  if ((mode & KS_S_IFMT) != KS_S_IFSOCK) return NULL;
  struct socket *sock = BPF_CORE_READ(f, private_data);
  if (!sock) return NULL;
  return BPF_CORE_READ(sock, sk);
}

/* One report on ks_car_events (kspan_car_event); counted when the ring is full. */
static __always_inline void ks_car_report(__u32 kind, __u64 pid_tgid, __s32 fd, __u64 cookie, __u64 offset,
                                          const struct kspan_car_ctx *ctx, __u64 ts_ns) {
  struct kspan_car_event *e = bpf_ringbuf_reserve(&ks_car_events, sizeof(*e), 0);
  if (!e) {
    ks_car_count(KSPAN_CAR_EVENT_LOST);
    return;
  }
  e->kind = kind;
  e->tgid = pid_tgid >> 32;
  e->tid = (__u32)pid_tgid;
  e->fd = fd;
  e->cookie = cookie;
  e->offset = offset;
  e->ctx = *ctx;
  e->ts_ns = ts_ns;
  bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP); /* drained on a timer, never a wake-up per event */
}

static __always_inline void ks_car_on_send(int fd) {
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  __u32 tgid = pid_tgid >> 32;
  if (tgid == ks_car_self_tgid) return;
  struct sock *sk = ks_car_fd_sock(fd);
  if (!sk || BPF_CORE_READ(sk, sk_protocol) != KS_IPPROTO_TCP) return;
  __u64 cookie = BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);
  if (cookie == 0) return; /* never given a cookie: not established under the carrier */
  struct kspan_car_conn *c = bpf_map_lookup_elem(&ks_car_conns, &cookie);
  if (!c) return;
  if (c->role == KSPAN_CAR_PASSIVE) {
    c->answered = 1; /* the server answered: its next read starts the next request */
    return;
  }
  if (c->role != KSPAN_CAR_ACTIVE) return;
  struct tcp_sock *tp = (struct tcp_sock *)sk;
  __u32 write_seq = BPF_CORE_READ(tp, write_seq);
  __u32 snd_nxt = BPF_CORE_READ(tp, snd_nxt);
  __u32 rcv_nxt = BPF_CORE_READ(tp, rcv_nxt);
  if (write_seq != snd_nxt) return;                        /* bytes still queued: mid-message */
  if (c->out_count != 0 && rcv_nxt == c->rcv_mark) return; /* no answer since the last request */
  struct kspan_car_ctx ctx;
  __u32 *w = (__u32 *)&ctx;
#pragma unroll
  for (int i = 0; i < 6; i++) w[i] = bpf_get_prandom_u32();
  /* Inside a request that came with a context, or one the kernel started a trace for: the
   * same trace, a new span. */
  struct ks_car_serving *serving = bpf_map_lookup_elem(&ks_car_threads, &pid_tgid);
  if (serving) __builtin_memcpy(ctx.trace_id, serving->ctx.trace_id, sizeof(ctx.trace_id));
  if (!ks_car_ids_valid(&ctx)) return; /* 2^-64: start no context rather than an invalid one */
  if (serving && serving->unsent) {
    serving->unsent = 0;
    ks_car_report(KSPAN_CAR_EV_FRESH, pid_tgid, serving->fd, serving->cookie, serving->offset, &serving->ctx,
                  serving->read_ts);
  }
  c->out = ctx;
  c->rcv_mark = rcv_nxt;
  c->out_count += 1;
  c->out_state = KSPAN_CAR_PENDING;
  ks_car_count(KSPAN_CAR_SET);
  ks_car_report(KSPAN_CAR_EV_SENT, pid_tgid, fd, cookie, (__u32)(write_seq - c->snd_base), &ctx,
                bpf_ktime_get_boot_ns());
}

SEC("tracepoint/syscalls/sys_enter_write")
int ks_car_write_enter(struct trace_event_raw_sys_enter *ctx) {
  ks_car_on_send((int)ctx->args[0]);
  return 0;
}

SEC("tracepoint/syscalls/sys_enter_writev")
int ks_car_writev_enter(struct trace_event_raw_sys_enter *ctx) {
  ks_car_on_send((int)ctx->args[0]);
  return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int ks_car_sendto_enter(struct trace_event_raw_sys_enter *ctx) {
  ks_car_on_send((int)ctx->args[0]);
  return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int ks_car_sendmsg_enter(struct trace_event_raw_sys_enter *ctx) {
  ks_car_on_send((int)ctx->args[0]);
  return 0;
}

/* ---- The serving side: which request a thread is serving -------------------------------
 *
 * On exit of a read from a server end: if the bytes read [copied_seq - ret, copied_seq)
 * hold the first byte of a request that came with a context, the thread now serves it;
 * else if the read starts a new request (the server answered since its last read, or it
 * is the connection's first byte), the thread serves a request without context. A TLS
 * connection (its first bytes a handshake record) answers inside the handshake, so there
 * a read continues the last context that arrived before its bytes (ks_car_read_exit). */

static __always_inline void ks_car_read_enter(int fd, __u64 buf, __u32 vector) {
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  if ((__u32)(pid_tgid >> 32) == ks_car_self_tgid) return;
  struct sock *sk = ks_car_fd_sock(fd);
  if (!sk || BPF_CORE_READ(sk, sk_protocol) != KS_IPPROTO_TCP) return;
  struct ks_car_read r = {.cookie = BPF_CORE_READ(sk, __sk_common.skc_cookie.counter),
                          .sk = sk,
                          .buf = buf,
                          .fd = fd,
                          .vector = vector};
  if (r.cookie == 0) return;
  struct kspan_car_conn *c = bpf_map_lookup_elem(&ks_car_conns, &r.cookie);
  if (!c || c->role != KSPAN_CAR_PASSIVE) return;
  bpf_map_update_elem(&ks_car_reads, &pid_tgid, &r, BPF_ANY);
}

/* The connection's first bytes, read into the caller's buffer: a TLS handshake record
 * (content type 22, version 3.x) makes it a TLS connection. */
static __always_inline int ks_car_reads_tls(const struct ks_car_read *r) {
  __u64 at = r->buf;
  if (r->vector == 2) {
    struct user_msghdr msg;
    if (bpf_probe_read_user(&msg, sizeof(msg), (const void *)at) != 0) return 0;
    at = (__u64)msg.msg_iov;
  }
  if (r->vector) {
    struct iovec iov;
    if (bpf_probe_read_user(&iov, sizeof(iov), (const void *)at) != 0) return 0;
    at = (__u64)iov.iov_base;
  }
  __u8 h[2];
  if (!at || bpf_probe_read_user(h, sizeof(h), (const void *)at) != 0) return 0;
  return h[0] == 22 && h[1] == 3;
}

static __always_inline void ks_car_read_exit(long ret) {
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  struct ks_car_read *rp = bpf_map_lookup_elem(&ks_car_reads, &pid_tgid);
  if (!rp) return;
  struct ks_car_read r = *rp;
  bpf_map_delete_elem(&ks_car_reads, &pid_tgid);
  if (ret <= 0) return;
  struct kspan_car_conn *c = bpf_map_lookup_elem(&ks_car_conns, &r.cookie);
  if (!c) return;
  struct tcp_sock *tp = (struct tcp_sock *)r.sk; /* outside BPF_CORE_READ: r is ours, not the kernel's */
  __u32 end = BPF_CORE_READ(tp, copied_seq);
  __u32 start = end - (__u32)ret;
  const int starts_request = c->answered || start == c->rcv_base;
  c->answered = 0;
  if (start == c->rcv_base && ret >= 2 && ks_car_reads_tls(&r)) c->tls = 1;
  if (c->in_count != 0 && (__s32)(c->in_seq - start) >= 0 && (__s32)(end - c->in_seq) > 0) {
    struct ks_car_serving sv = {.ctx = c->in};
    bpf_map_update_elem(&ks_car_threads, &pid_tgid, &sv, BPF_ANY);
    if (c->in_seq != start) {
      ks_car_count(KSPAN_CAR_UNPLACED); /* mid-read (pipelined): the agent cannot tell whose */
      return;
    }
    ks_car_report(KSPAN_CAR_EV_READ, pid_tgid, r.fd, r.cookie, (__u32)(start - c->rcv_base), &sv.ctx,
                  bpf_ktime_get_boot_ns());
  } else if (c->tls) {
    /* TLS: the handshake answers and reads, so "answered" tells no request apart. The
     * client's kernel sets a context at its first write after anything arrived, so the
     * ciphertext between two contexts was written in one go: what this thread reads is
     * under the last context that arrived before it (often on the handshake's Finished,
     * the request's own segments carrying none). None yet, or the last one arrived after
     * these bytes: the thread serves nothing known. */
    if (c->in_count != 0 && (__s32)(start - c->in_seq) > 0) {
      struct ks_car_serving sv = {.ctx = c->in};
      bpf_map_update_elem(&ks_car_threads, &pid_tgid, &sv, BPF_ANY);
    } else {
      bpf_map_delete_elem(&ks_car_threads, &pid_tgid);
    }
  } else if (starts_request) {
    /* A request with no context (its caller has no kspan): the root of a new trace. One
     * trace id for it, so every call the thread makes while serving it carries the same,
     * and the agent gives the SERVER span that id too (FRESH, reported at its first call):
     * the trace continues on the hosts it calls instead of each call starting its own. */
    struct ks_car_serving sv = {.read_ts = bpf_ktime_get_boot_ns(),
                                .offset = (__u32)(start - c->rcv_base),
                                .cookie = r.cookie,
                                .fd = r.fd,
                                .unsent = 1};
    __u32 *w = (__u32 *)sv.ctx.trace_id;
#pragma unroll
    for (int i = 0; i < 4; i++) w[i] = bpf_get_prandom_u32();
    if ((w[0] | w[1] | w[2] | w[3]) == 0) {
      bpf_map_delete_elem(&ks_car_threads, &pid_tgid); /* 2^-128: no context rather than an invalid one */
      return;
    }
    bpf_map_update_elem(&ks_car_threads, &pid_tgid, &sv, BPF_ANY);
  }
}

SEC("tracepoint/syscalls/sys_enter_read")
int ks_car_read_enter_tp(struct trace_event_raw_sys_enter *ctx) {
  ks_car_read_enter((int)ctx->args[0], ctx->args[1], 0);
  return 0;
}
SEC("tracepoint/syscalls/sys_exit_read")
int ks_car_read_exit_tp(struct trace_event_raw_sys_exit *ctx) {
  ks_car_read_exit(ctx->ret);
  return 0;
}
SEC("tracepoint/syscalls/sys_enter_readv")
int ks_car_readv_enter_tp(struct trace_event_raw_sys_enter *ctx) {
  ks_car_read_enter((int)ctx->args[0], ctx->args[1], 1);
  return 0;
}
SEC("tracepoint/syscalls/sys_exit_readv")
int ks_car_readv_exit_tp(struct trace_event_raw_sys_exit *ctx) {
  ks_car_read_exit(ctx->ret);
  return 0;
}
SEC("tracepoint/syscalls/sys_enter_recvfrom")
int ks_car_recvfrom_enter_tp(struct trace_event_raw_sys_enter *ctx) {
  ks_car_read_enter((int)ctx->args[0], ctx->args[1], 0);
  return 0;
}
SEC("tracepoint/syscalls/sys_exit_recvfrom")
int ks_car_recvfrom_exit_tp(struct trace_event_raw_sys_exit *ctx) {
  ks_car_read_exit(ctx->ret);
  return 0;
}
SEC("tracepoint/syscalls/sys_enter_recvmsg")
int ks_car_recvmsg_enter_tp(struct trace_event_raw_sys_enter *ctx) {
  ks_car_read_enter((int)ctx->args[0], ctx->args[1], 2);
  return 0;
}
SEC("tracepoint/syscalls/sys_exit_recvmsg")
int ks_car_recvmsg_exit_tp(struct trace_event_raw_sys_exit *ctx) {
  ks_car_read_exit(ctx->ret);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
