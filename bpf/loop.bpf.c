/* Event-loop turns. A thread that waits for readiness (epoll_wait, poll, select and
 * their variants) and then works through what the wait delivered does that work between
 * two waits; counting the waits per thread lets user space tell which request an
 * outgoing call of a single-threaded event loop (node, python asyncio) continues. The
 * count is stamped into every event header (kspan_event_header.turn). */
#include "common.bpf.h"

#include <bpf/bpf_helpers.h>

static __always_inline int ks_count_turn(void) {
  __u64 id = bpf_get_current_pid_tgid();
  if (!ks_wanted(id >> 32)) return 0;
  __u32 tid = (__u32)id;
  __u32 *turn = bpf_map_lookup_elem(&ks_turns, &tid);
  if (turn) {
    /* Only this thread writes its slot. 0 means "never waited": skip it on wrap. */
    __u32 next = *turn + 1;
    *turn = next ? next : 1;
  } else {
    __u32 first = 1;
    bpf_map_update_elem(&ks_turns, &tid, &first, BPF_ANY);
  }
  return 0;
}

SEC("tracepoint/syscalls/sys_exit_epoll_wait")
int ks_turn_epoll(void *ctx) {
  return ks_count_turn();
}

SEC("tracepoint/syscalls/sys_exit_epoll_pwait")
int ks_turn_epollp(void *ctx) {
  return ks_count_turn();
}

SEC("tracepoint/syscalls/sys_exit_epoll_pwait2")
int ks_turn_epollp2(void *ctx) {
  return ks_count_turn();
}

SEC("tracepoint/syscalls/sys_exit_poll")
int ks_turn_poll(void *ctx) {
  return ks_count_turn();
}

SEC("tracepoint/syscalls/sys_exit_ppoll")
int ks_turn_ppoll(void *ctx) {
  return ks_count_turn();
}

SEC("tracepoint/syscalls/sys_exit_select")
int ks_turn_select(void *ctx) {
  return ks_count_turn();
}

SEC("tracepoint/syscalls/sys_exit_pselect6")
int ks_turn_pselect(void *ctx) {
  return ks_count_turn();
}
