/* Measurement only (bench/src/carrier_probe.cc): the sk_msg way of carrying context, as
 * OBI does it, so its cost and its effect on ioctl(FIONREAD) can be measured on this
 * kernel beside kspan's TCP-option carrier. Not part of the agent. */
/* vmlinux.h first: it defines the types the libbpf headers use. */
/* clang-format off */
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
/* clang-format on */

const volatile __u32 ks_probe_push = 0; /* bytes to push into each message (0: pass only) */

struct {
  __uint(type, BPF_MAP_TYPE_SOCKHASH);
  __uint(max_entries, 1024);
  __type(key, __u64);
  __type(value, __u64);
} ks_probe_socks SEC(".maps");

SEC("sockops")
int ks_probe_sockops(struct bpf_sock_ops* skops) {
  if (skops->op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB || skops->op == BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB) {
    __u64 key = ((__u64)skops->local_port << 32) | bpf_ntohl(skops->remote_port);
    bpf_sock_hash_update(skops, &ks_probe_socks, &key, BPF_ANY);
  }
  return 1;
}

SEC("sk_msg")
int ks_probe_msg(struct sk_msg_md* msg) {
  if (ks_probe_push) bpf_msg_push_data(msg, 0, ks_probe_push, 0);
  return SK_PASS;
}

char LICENSE[] SEC("license") = "GPL";
