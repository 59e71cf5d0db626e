/* Layer 1, socket identity: from an fd to what it is, in a syscall tracepoint, without
 * kprobes: current->files->fdt->fd[fd] -> struct file -> (inode mode) socket, pipe or
 * other -> struct socket -> struct sock (family, type, protocol).
 *
 * Contract: read-only CO-RE reads of the current task's kernel objects; no map access, no
 * events. NULL (or KSPAN_CONN_KIND_TCP for "not local") means "not ours", never an
 * error: an fd closed meanwhile, or a kernel object that does not fit, reads as nothing. */
#ifndef KSPAN_SOCK_ID_BPF_H
#define KSPAN_SOCK_ID_BPF_H

#include "base.bpf.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

/* current->files->fdt->fd[fd], or NULL. */
static __always_inline struct file *ks_fd_file(__s32 fd) {
  struct task_struct *task = (struct task_struct *)bpf_get_current_task();
  struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
  if (!fdt || fd < 0) return NULL;
  unsigned int max_fds = BPF_CORE_READ(fdt, max_fds);
  if ((unsigned int)fd >= max_fds) return NULL;
  struct file **fds = BPF_CORE_READ(fdt, fd);
  struct file *f = NULL;
  bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
  return f;
}

/* The struct sock behind a file when it is a TCP socket over IPv4/IPv6, else NULL. */
static __always_inline struct sock *ks_tcp_sock(struct file *f) {
  if (!f) return NULL;
  umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
  if ((mode & KS_S_IFMT) != KS_S_IFSOCK) return NULL;
  struct socket *sock = BPF_CORE_READ(f, private_data);
  if (!sock) return NULL;
  if (BPF_CORE_READ(sock, type) != KS_SOCK_STREAM) return NULL;
  struct sock *sk = BPF_CORE_READ(sock, sk);
  if (!sk) return NULL;
  __u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
  if (family != KS_AF_INET && family != KS_AF_INET6) return NULL;
  if (BPF_CORE_READ(sk, sk_protocol) != KS_IPPROTO_TCP) return NULL;
  return sk;
}

/* What an agent's non-TCP file f at fd is, by the agent's flags (enum
 * kspan_agent_flags): a kspan_conn_kind other than TCP, or KSPAN_CONN_KIND_TCP (0) when
 * it is not tracked. Runs once per file, at its first sight. */
static __always_inline __u8 ks_local_kind(struct file *f, __s32 fd, __u8 agent_flags) {
  if (agent_flags & KSPAN_AGENT_F_LOCAL) {
    umode_t mode = BPF_CORE_READ(f, f_inode, i_mode) & KS_S_IFMT;
    if (mode == KS_S_IFIFO) return KSPAN_CONN_KIND_PIPE;
    if (mode == KS_S_IFSOCK) {
      struct socket *sock = BPF_CORE_READ(f, private_data);
      if (sock && BPF_CORE_READ(sock, type) == KS_SOCK_STREAM) {
        struct sock *sk = BPF_CORE_READ(sock, sk);
        if (sk && BPF_CORE_READ(sk, __sk_common.skc_family) == KS_AF_UNIX) return KSPAN_CONN_KIND_UNIX;
      }
    }
  }
  if (agent_flags & KSPAN_AGENT_F_STDIO) {
    if (fd == 1) return KSPAN_CONN_KIND_STDOUT;
    if (fd == 2) return KSPAN_CONN_KIND_STDERR;
  }
  return KSPAN_CONN_KIND_TCP;
}

#endif /* KSPAN_SOCK_ID_BPF_H */
