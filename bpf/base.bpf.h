/* Layer 0, base: kernel constants kspan needs without the kernel's headers, and the
 * cheap per-event checks every program makes first.
 *
 * Contract: no map writes except the per-CPU counters (ks_count, lock-free: each CPU owns
 * its slot); no ring-buffer output; nothing here reads a task's files or sockets. Every
 * other helper header includes this one. */
#ifndef KSPAN_BASE_BPF_H
#define KSPAN_BASE_BPF_H

#include "maps.bpf.h"

#include <bpf/bpf_helpers.h>

#define KS_AF_INET 2
#define KS_AF_INET6 10
#define KS_AF_UNIX 1
#define KS_SOCK_STREAM 1
#define KS_IPPROTO_TCP 6
#define KS_S_IFMT 00170000
#define KS_S_IFSOCK 0140000
#define KS_S_IFIFO 0010000
#define KS_EINPROGRESS 115

static __always_inline void ks_count(__u32 idx) {
  __u64 *v = bpf_map_lookup_elem(&ks_counters, &idx);
  if (v) *v += 1; /* per-CPU slot: no atomics needed */
}

/* True when this process is one kspan watches: one map lookup at most, so a process
 * the rules skip costs that and nothing else (no copy of its bytes). */
static __always_inline int ks_wanted(__u32 tgid) {
  if (tgid == ks_self_tgid) return 0;
  if (ks_select_mode == KSPAN_SELECT_ALL) return 1;
  __u8 *v = bpf_map_lookup_elem(&ks_select, &tgid);
  if (v) return *v == KSPAN_SELECTED_TRACE;
  return ks_select_mode == KSPAN_SELECT_RULES;
}

/* The calling thread's event-loop turn (see kspan_event_header.turn). */
static __always_inline __u32 ks_current_turn(__u64 pid_tgid) {
  __u32 tid = (__u32)pid_tgid;
  __u32 *turn = bpf_map_lookup_elem(&ks_turns, &tid);
  return turn ? *turn : 0;
}

/* True when the process has called a probed TLS function since kspan started. */
static __always_inline int ks_tls_process(__u32 tgid) {
  return bpf_map_lookup_elem(&ks_tls_tgids, &tgid) != NULL;
}

#endif /* KSPAN_BASE_BPF_H */
