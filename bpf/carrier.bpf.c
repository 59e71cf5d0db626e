/* The trace-context carrier: a TCP header option written and parsed by one sockops program
 * (wire format and shared state: include/kspan/bpf/carrier.h; why this and not a header
 * spliced into HTTP: docs/tracing.md "Context across hosts").
 *
 * Its own skeleton (kspan_carrier), apart from the capture programs: it attaches to a
 * cgroup v2 (the root for a host agent, a test's own cgroup in tests) and can be turned off
 * without touching capture.
 *
 * Per socket in scope (established; optionally only in one network namespace):
 *
 *   sending:   ks_car_out.state  IDLE --(context set)--> PENDING --(first data segment
 *              that fits, option written)--> IDLE.  HDR_OPT_LEN_CB reserves 28 bytes only
 *              while PENDING, and only when the segment still fits the MSS with them, so no
 *              packet ever grows past the path MTU; BPF_WRITE_HDR_TCP_CURRENT_MSS reserves too
 *              so the segments of the write that set the context are sized with the room.
 *   receiving: PARSE_HDR_OPT_CB (only for segments with an option Linux does not know):
 *              an option with our ExID and exactly 28 bytes and non-zero ids is stored in
 *              ks_car_in with the segment's first sequence number; anything else with our
 *              ExID is counted as malformed and ignored.
 *
 * Never: a payload byte changed, a socket redirected, a sockmap (so ioctl(FIONREAD),
 * MSG_PEEK and splice keep the kernel's own TCP code), a verdict that drops. Every program
 * returns 1 (the kernel ignores a sockops return for these callbacks). */
#include "vmlinux.h"

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "kspan/bpf/carrier.h"

_Static_assert(sizeof(struct kspan_car_ctx) == 24, "trace id + span id");
_Static_assert(4 + sizeof(struct kspan_car_ctx) == KSPAN_CAR_LEN, "kind, length, ExID, ids");
_Static_assert(sizeof(struct kspan_car_out) == 32, "explicit padding");
_Static_assert(sizeof(struct kspan_car_in) == 32, "explicit padding");

/* 0: every network namespace; else only sockets whose netns cookie matches. */
const volatile __u64 ks_car_netns = 0;

struct {
  __uint(type, BPF_MAP_TYPE_SK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, struct kspan_car_out);
} ks_car_out SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_SK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, struct kspan_car_in);
} ks_car_in SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, KSPAN_CAR_COUNTERS);
  __type(key, __u32);
  __type(value, __u64);
} ks_car_counters SEC(".maps");

#define KS_TCPHDR_FIN 0x01
#define KS_TCPHDR_SYN 0x02

static __always_inline void ks_car_count(__u32 idx) {
  __u64 *v = bpf_map_lookup_elem(&ks_car_counters, &idx);
  if (v) *v += 1; /* per-CPU slot */
}

static __always_inline int ks_car_in_scope(struct bpf_sock_ops *skops) {
  return ks_car_netns == 0 || bpf_get_netns_cookie(skops) == ks_car_netns;
}

static __always_inline int ks_car_ids_valid(const struct kspan_car_ctx *c) {
  __u64 t0 = 0, t1 = 0, s = 0;
  __builtin_memcpy(&t0, c->trace_id, 8);
  __builtin_memcpy(&t1, c->trace_id + 8, 8);
  __builtin_memcpy(&s, c->span_id, 8);
  return (t0 | t1) != 0 && s != 0; /* W3C: all-zero ids are invalid */
}

static __always_inline void ks_car_reserve(struct bpf_sock_ops *skops) {
  struct bpf_sock *sk = skops->sk;
  if (!sk) return;
  struct kspan_car_out *out = bpf_sk_storage_get(&ks_car_out, sk, 0, 0);
  if (!out || out->state != KSPAN_CAR_PENDING) return;
  if (skops->args[0] != BPF_WRITE_HDR_TCP_CURRENT_MSS) {
    /* A real segment: only one with payload, no SYN/FIN, that still fits the MSS. */
    if (skops->skb_tcp_flags & (KS_TCPHDR_SYN | KS_TCPHDR_FIN)) return;
    __u32 payload = skops->skb_len;
    if (payload == 0) return;
    if (payload + KSPAN_CAR_LEN > skops->mss_cache) {
      ks_car_count(KSPAN_CAR_TOO_BIG);
      out->state = KSPAN_CAR_IDLE; /* its first segment is gone without the option */
      return;
    }
  }
  if (bpf_reserve_hdr_opt(skops, KSPAN_CAR_LEN, 0) != 0 && skops->args[0] != BPF_WRITE_HDR_TCP_CURRENT_MSS)
    ks_car_count(KSPAN_CAR_NOSPC);
}

static __always_inline void ks_car_write(struct bpf_sock_ops *skops) {
  struct bpf_sock *sk = skops->sk;
  if (!sk) return;
  struct kspan_car_out *out = bpf_sk_storage_get(&ks_car_out, sk, 0, 0);
  if (!out || out->state != KSPAN_CAR_PENDING) return;
  struct tcphdr *th = skops->skb_data;
  if ((void *)(th + 1) > skops->skb_data_end) return;
  const __u32 seq = bpf_ntohl(th->seq); /* read now: storing invalidates packet pointers */
  __u8 opt[KSPAN_CAR_LEN] = {KSPAN_CAR_KIND, KSPAN_CAR_LEN, KSPAN_CAR_EXID_HI, KSPAN_CAR_EXID_LO};
  __builtin_memcpy(opt + 4, &out->ctx, sizeof(out->ctx));
  long err = bpf_store_hdr_opt(skops, opt, sizeof(opt), 0);
  if (err == 0) {
    out->seq = seq;
    out->state = KSPAN_CAR_IDLE;
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
  struct bpf_sock *sk = skops->sk;
  if (!sk) return;
  struct kspan_car_in *in = bpf_sk_storage_get(&ks_car_in, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
  if (!in) return;
  in->ctx = ctx;
  in->seq = bpf_ntohl(th->seq);
  in->count += 1;
  ks_car_count(KSPAN_CAR_PARSED);
}

SEC("sockops")
int ks_carrier(struct bpf_sock_ops *skops) {
  switch (skops->op) {
    case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
    case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
      if (ks_car_in_scope(skops))
        bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG |
                                             BPF_SOCK_OPS_PARSE_UNKNOWN_HDR_OPT_CB_FLAG);
      break;
    case BPF_SOCK_OPS_HDR_OPT_LEN_CB: ks_car_reserve(skops); break;
    case BPF_SOCK_OPS_WRITE_HDR_OPT_CB: ks_car_write(skops); break;
    case BPF_SOCK_OPS_PARSE_HDR_OPT_CB: ks_car_parse(skops); break;
  }
  return 1;
}

char LICENSE[] SEC("license") = "GPL";
