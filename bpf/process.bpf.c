/* Process lifecycle: exec and exit, so user space can name processes (comm, path,
 * argv) even when they are gone before it reads /proc, and forget them when they end. */
#include "common.bpf.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

/* kernfs_node's parent is `__parent` since Linux 6.15, `parent` before: both flavours, so
 * one object loads on either. */
struct kernfs_node___since615 {
  void *__parent;
} __attribute__((preserve_access_index));
struct kernfs_node___before615 {
  void *parent;
} __attribute__((preserve_access_index));

static __always_inline struct kernfs_node *ks_kn_parent(struct kernfs_node *kn) {
  if (bpf_core_field_exists(struct kernfs_node___since615, __parent))
    return (struct kernfs_node *)BPF_CORE_READ((struct kernfs_node___since615 *)kn, __parent);
  return (struct kernfs_node *)BPF_CORE_READ((struct kernfs_node___before615 *)kn, parent);
}

/* The path of the cgroup whose kernfs node is `kn`, innermost part first. */
static __always_inline void ks_cgroup_path(struct kernfs_node *kn, struct kspan_cgroup_path *out) {
  out->parts = 0;
  out->more = 0;
  for (int i = 0; i < KSPAN_CGROUP_PARTS; i++) {
    if (!kn) return;
    struct kernfs_node *parent = ks_kn_parent(kn);
    if (!parent) return; /* the root: no part of the path */
    const char *name = BPF_CORE_READ(kn, name);
    out->part[i][0] = 0;
    if (name) bpf_probe_read_kernel_str(out->part[i], KSPAN_CGROUP_PART_LEN, name);
    out->parts = (__u8)(i + 1);
    kn = parent;
  }
  if (kn && ks_kn_parent(kn)) out->more = 1;
}

/* The task's cgroup v2 path and its memory controller's (see kspan_exec_event). */
static __always_inline void ks_task_cgroups(struct task_struct *task, struct kspan_exec_event *e) {
  struct css_set *cgroups = BPF_CORE_READ(task, cgroups);
  ks_cgroup_path(cgroups ? BPF_CORE_READ(cgroups, dfl_cgrp, kn) : NULL, &e->cgroup_v2);
  struct kernfs_node *memory = NULL;
  if (cgroups && bpf_core_enum_value_exists(enum cgroup_subsys_id, memory_cgrp_id)) {
    /* The running kernel's index and count, not the build machine's. */
    const int idx = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
    const int count = bpf_core_enum_value(enum cgroup_subsys_id, CGROUP_SUBSYS_COUNT);
    struct cgroup_subsys_state *css = NULL;
    if (idx >= 0 && idx < count) bpf_core_read(&css, sizeof(css), &cgroups->subsys[idx]);
    if (css) memory = BPF_CORE_READ(css, cgroup, kn);
  }
  ks_cgroup_path(memory, &e->cgroup_memory);
}

SEC("tracepoint/sched/sched_process_exec")
int ks_proc_exec(struct trace_event_raw_sched_process_exec *ctx) {
  __u64 id = bpf_get_current_pid_tgid();
  __u32 tgid = id >> 32;
  /* With rules a new program is decided afresh: user space reads this event and writes
   * the new decision (until then the process is traced, so its first bytes are not lost). */
  if (ks_select_mode == KSPAN_SELECT_RULES) bpf_map_delete_elem(&ks_select, &tgid);
  if (!ks_wanted(tgid)) return 0;
  struct task_struct *task = (struct task_struct *)bpf_get_current_task();
  /* A program an agent (or such a program) starts, typically a tool server on its stdio:
   * its Unix sockets and pipes are captured from its first syscall, so the server's side
   * of each call is seen whole. Only LOCAL (its own output is not an agent's), and only
   * at exec: a plain fork of an agent shares its image and is left alone. */
  __u32 ppid = BPF_CORE_READ(task, real_parent, tgid);
  __u8 *parent = bpf_map_lookup_elem(&ks_agent_tgids, &ppid);
  if (parent && (*parent & KSPAN_AGENT_F_LOCAL)) {
    __u8 child = KSPAN_AGENT_F_LOCAL | KSPAN_AGENT_F_CHILD;
    if (bpf_map_update_elem(&ks_agent_tgids, &tgid, &child, BPF_NOEXIST) != 0 &&
        !bpf_map_lookup_elem(&ks_agent_tgids, &tgid))
      ks_count(KSPAN_CNT_AGENT_FULL);
  }
  struct kspan_exec_event *e = bpf_ringbuf_reserve(&ks_events, sizeof(*e), 0);
  if (!e) {
    ks_count(KSPAN_CNT_RB_FULL_PROC);
    return 0;
  }
  ks_fill_header(&e->hdr, KSPAN_EV_PROC_EXEC, id);
  e->ppid = ppid;
  e->parent_tid = BPF_CORE_READ(task, real_parent, pid);
  e->netns = BPF_CORE_READ(task, nsproxy, net_ns, ns.inum);
  ks_task_cgroups(task, e);
  bpf_get_current_comm(e->comm, sizeof(e->comm));
  unsigned int loc = ctx->__data_loc_filename & 0xFFFF;
  bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), (void *)ctx + loc);
  /* The new image's file: its dentry name is the target of /proc/PID/exe's basename. */
  const unsigned char *name = BPF_CORE_READ(task, mm, exe_file, f_path.dentry, d_name.name);
  e->exe_name[0] = 0;
  if (name) bpf_probe_read_kernel_str(e->exe_name, sizeof(e->exe_name), name);

  unsigned long arg_start = BPF_CORE_READ(task, mm, arg_start);
  unsigned long arg_end = BPF_CORE_READ(task, mm, arg_end);
  __u64 len = arg_end > arg_start ? arg_end - arg_start : 0;
  if (len > KSPAN_ARGS_LEN - 1) len = KSPAN_ARGS_LEN - 1;
  asm volatile("" : "+r"(len)); /* keep the mask below: the verifier needs to see it */
  len &= KSPAN_ARGS_LEN - 1;
  e->args_len = 0;
  if (len > 0 && bpf_probe_read_user(e->args, len, (const void *)arg_start) == 0) e->args_len = (__u32)len;
  bpf_ringbuf_submit(e, ks_rb_flags());
  ks_count(KSPAN_CNT_EVENTS);
  return 0;
}

/* A new process with selection rules: until it execs it runs its parent's program in its
 * parent's namespaces, so it is decided as its parent was. Its kernel entry is the
 * parent's, copied before it first runs (the tracepoint fires before the child is woken),
 * so a skipped parent's children cost one lookup per syscall from their first, and user
 * space hears of a child of a parent not skipped, to decide it without /proc (a
 * short-lived child, a PostgreSQL backend of one query, is often gone before user space
 * would read it). Threads share their process's entry and are left alone. A raw
 * tracepoint: it hands over both tasks, which the classic one does not. */
SEC("raw_tp/sched_process_fork")
int ks_proc_fork(struct bpf_raw_tracepoint_args *ctx) {
  if (ks_select_mode != KSPAN_SELECT_RULES) return 0;
  struct task_struct *parent = (struct task_struct *)ctx->args[0];
  struct task_struct *child = (struct task_struct *)ctx->args[1];
  __u32 tgid = BPF_CORE_READ(child, tgid);
  if (tgid != (__u32)BPF_CORE_READ(child, pid)) return 0;
  __u32 ptgid = BPF_CORE_READ(parent, tgid);
  if (ptgid == ks_self_tgid) return 0;
  __u8 *v = bpf_map_lookup_elem(&ks_select, &ptgid);
  if (v) {
    __u8 verdict = *v;
    bpf_map_update_elem(&ks_select, &tgid, &verdict, BPF_ANY);
    if (verdict != KSPAN_SELECTED_TRACE) return 0;
  }
  struct kspan_fork_event *e = bpf_ringbuf_reserve(&ks_events, sizeof(*e), 0);
  if (!e) {
    ks_count(KSPAN_CNT_RB_FULL_PROC);
    return 0;
  }
  e->hdr.type = KSPAN_EV_PROC_FORK;
  e->hdr.tgid = tgid;
  e->hdr.tid = tgid;
  e->hdr.turn = 0;
  e->hdr.ts_ns = bpf_ktime_get_boot_ns();
  e->ppid = ptgid;
  e->_pad = 0;
  bpf_ringbuf_submit(e, ks_rb_flags());
  ks_count(KSPAN_CNT_EVENTS);
  return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int ks_proc_exit(void *ctx) {
  __u64 id = bpf_get_current_pid_tgid();
  __u32 tgid = id >> 32;
  if ((__u32)id != tgid) return 0; /* one event per process: its main thread */
  /* A pid that comes back is not the agent it was (a miss for every other process). */
  bpf_map_delete_elem(&ks_agent_tgids, &tgid);
  /* Nor is it the process selected or skipped: its entry goes. With rules the exit of a
   * skipped process is still sent, so user space forgets its decision too. */
  const int wanted = ks_wanted(tgid);
  if (ks_select_mode != KSPAN_SELECT_ALL) bpf_map_delete_elem(&ks_select, &tgid);
  if (!wanted && ks_select_mode != KSPAN_SELECT_RULES) return 0;
  struct kspan_exit_event *e = bpf_ringbuf_reserve(&ks_events, sizeof(*e), 0);
  if (!e) {
    ks_count(KSPAN_CNT_RB_FULL_PROC);
    return 0;
  }
  struct task_struct *task = (struct task_struct *)bpf_get_current_task();
  ks_fill_header(&e->hdr, KSPAN_EV_PROC_EXIT, id);
  e->exit_code = BPF_CORE_READ(task, exit_code);
  e->_pad = 0;
  bpf_ringbuf_submit(e, ks_rb_flags());
  ks_count(KSPAN_CNT_EVENTS);
  return 0;
}
