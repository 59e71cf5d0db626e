/* Agents' file writes: for processes in ks_agent_tgids only (agents, and the tool servers
 * and commands they start), which regular files they open for writing, how much they
 * write to each, and when; one event at the close. What a tool run changed on disk
 * becomes an event of its execute_tool span in user space (docs/agents.md).
 *
 *   sys_enter_openat (O_WRONLY/O_RDWR) ──stash{filename}──▶ sys_exit_openat (fd >= 0,
 *                                                           a regular file): ks_files[tgid, fd]
 *                                                           = {file, path}
 *   sys_enter_write/pwrite64/writev/pwritev (fd in ks_files) ──stash{fd}──▶ sys_exit_*
 *                                                           (ret > 0): bytes += ret, writes++
 *   sys_enter_close (fd in ks_files) ──▶ KSPAN_EV_FILE_WRITE {path, bytes, writes, first,
 *                                        last} when it was written; the entry goes
 *
 * Cost for every other process: one ks_agent_tgids lookup per openat, write and close
 * once any agent is marked; before that, none: user space attaches these programs when it
 * marks the first agent (BpfEventSource::MarkAgent).
 * Bytes are never read: only the path (at most KSPAN_PATH_LEN - 1 bytes, as passed) and
 * the counts. Not covered: open/creat/openat2 (glibc's open() and node and python use
 * openat), files written through mmap, copy_file_range or sendfile, and a file still open
 * at the process's exit (no close(2): nothing is sent). */
#include "common.bpf.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#define KS_O_ACCMODE 3
#define KS_O_RDONLY 0
#define KS_S_IFREG 0100000

static __always_inline int ks_file_agent(__u32 tgid) {
  return ks_wanted(tgid) && bpf_map_lookup_elem(&ks_agent_tgids, &tgid) != NULL;
}

SEC("tracepoint/syscalls/sys_enter_openat")
int ks_fw_en_openat(struct trace_event_raw_sys_enter *ctx) {
  __u64 id = bpf_get_current_pid_tgid();
  if (((__u32)ctx->args[2] & KS_O_ACCMODE) == KS_O_RDONLY) return 0;
  if (!ks_file_agent(id >> 32)) return 0;
  struct ks_file_call c = {.filename = ctx->args[1], .fd = -1, .syscall = KSPAN_SYS_OPENAT};
  if (bpf_map_update_elem(&ks_file_calls, &id, &c, BPF_ANY) != 0) ks_count(KSPAN_CNT_FILE_FULL);
  return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat")
int ks_fw_ex_openat(struct trace_event_raw_sys_exit *ctx) {
  __u64 id = bpf_get_current_pid_tgid();
  struct ks_file_call *cp = bpf_map_lookup_elem(&ks_file_calls, &id);
  if (!cp) return 0;
  struct ks_file_call c = *cp;
  bpf_map_delete_elem(&ks_file_calls, &id);
  if (c.syscall != KSPAN_SYS_OPENAT || ctx->ret < 0) return 0;
  __s32 fd = (__s32)ctx->ret;
  struct file *f = ks_fd_file(fd);
  if (!f) return 0;
  umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
  if ((mode & KS_S_IFMT) != KS_S_IFREG) return 0; /* a device, a FIFO: not a file written */
  __u32 zero = 0;
  struct ks_file *v = bpf_map_lookup_elem(&ks_file_scratch, &zero);
  if (!v) return 0;
  v->file = (__u64)f;
  v->bytes = 0;
  v->first_ns = 0;
  v->last_ns = 0;
  v->writes = 0;
  long n = bpf_probe_read_user_str(v->path, sizeof(v->path), (const void *)c.filename);
  v->path_len = n > 0 ? (__u32)(n - 1) : 0;
  struct ks_fd_key key = {.tgid = id >> 32, .fd = fd};
  if (bpf_map_update_elem(&ks_files, &key, v, BPF_ANY) != 0) ks_count(KSPAN_CNT_FILE_FULL);
  return 0;
}

static __always_inline int ks_file_write_enter(__s32 fd) {
  __u64 id = bpf_get_current_pid_tgid();
  __u32 tgid = id >> 32;
  if (!ks_file_agent(tgid)) return 0;
  struct ks_fd_key key = {.tgid = tgid, .fd = fd};
  if (!bpf_map_lookup_elem(&ks_files, &key)) return 0;
  struct ks_file_call c = {.filename = 0, .fd = fd, .syscall = KSPAN_SYS_WRITE};
  if (bpf_map_update_elem(&ks_file_calls, &id, &c, BPF_ANY) != 0) ks_count(KSPAN_CNT_FILE_FULL);
  return 0;
}

static __always_inline int ks_file_write_exit(long ret) {
  __u64 id = bpf_get_current_pid_tgid();
  struct ks_file_call *cp = bpf_map_lookup_elem(&ks_file_calls, &id);
  if (!cp) return 0;
  __s32 fd = cp->fd;
  __u8 syscall = cp->syscall;
  bpf_map_delete_elem(&ks_file_calls, &id);
  if (syscall != KSPAN_SYS_WRITE || ret <= 0) return 0;
  struct ks_fd_key key = {.tgid = id >> 32, .fd = fd};
  struct ks_file *v = bpf_map_lookup_elem(&ks_files, &key);
  if (!v || v->file != (__u64)ks_fd_file(fd)) return 0; /* the fd now names another file */
  __u64 now = bpf_ktime_get_boot_ns();
  __sync_fetch_and_add(&v->bytes, ret);
  __sync_fetch_and_add(&v->writes, 1);
  if (v->first_ns == 0) v->first_ns = now;
  v->last_ns = now;
  return 0;
}

#define KS_FW_WRITE(tp, en, ex)                      \
  SEC("tracepoint/syscalls/sys_enter_" #tp)          \
  int en(struct trace_event_raw_sys_enter *ctx) {    \
    return ks_file_write_enter((__s32)ctx->args[0]); \
  }                                                  \
  SEC("tracepoint/syscalls/sys_exit_" #tp)           \
  int ex(struct trace_event_raw_sys_exit *ctx) {     \
    return ks_file_write_exit(ctx->ret);             \
  }

KS_FW_WRITE(write, ks_fw_en_write, ks_fw_ex_write)
KS_FW_WRITE(pwrite64, ks_fw_en_pwrite, ks_fw_ex_pwrite)
KS_FW_WRITE(writev, ks_fw_en_writev, ks_fw_ex_writev)
KS_FW_WRITE(pwritev, ks_fw_en_pwv, ks_fw_ex_pwv)

SEC("tracepoint/syscalls/sys_enter_close")
int ks_fw_en_close(struct trace_event_raw_sys_enter *ctx) {
  __u64 id = bpf_get_current_pid_tgid();
  __u32 tgid = id >> 32;
  if (!ks_file_agent(tgid)) return 0;
  struct ks_fd_key key = {.tgid = tgid, .fd = (__s32)ctx->args[0]};
  struct ks_file *v = bpf_map_lookup_elem(&ks_files, &key);
  if (!v) return 0;
  if (v->writes > 0) {
    struct kspan_file_write_event *e = bpf_ringbuf_reserve(&ks_events, sizeof(*e), 0);
    if (e) {
      ks_fill_header(&e->hdr, KSPAN_EV_FILE_WRITE, id);
      e->fd = key.fd;
      e->writes = v->writes;
      e->bytes = v->bytes;
      e->first_ns = v->first_ns;
      e->last_ns = v->last_ns;
      e->path_len = v->path_len < KSPAN_PATH_LEN ? v->path_len : KSPAN_PATH_LEN - 1;
      e->_pad = 0;
      __builtin_memcpy(e->path, v->path, KSPAN_PATH_LEN);
      bpf_ringbuf_submit(e, ks_rb_flags());
      ks_count(KSPAN_CNT_EVENTS);
    } else {
      ks_count(KSPAN_CNT_RB_FULL_FILE);
    }
  }
  bpf_map_delete_elem(&ks_files, &key);
  return 0;
}
