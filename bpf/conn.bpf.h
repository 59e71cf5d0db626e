/* Layer 3, connection tracking: which (tgid, fd) kspan follows, cached in ks_conns per
 * (tgid, file) so the socket walk (sock_id.bpf.h) happens once per connection, not per
 * syscall. A connection is (tgid, fd, generation); a new generation on every new file
 * behind an fd means fd reuse never merges two connections.
 *
 * What an fd becomes on first sight (ks_track), cached in ks_conns per (tgid, file):
 *
 *   file                              any watched process   an agent (ks_agent_tgids)
 *   TCP socket (INET/INET6)           TCP                   TCP
 *   AF_UNIX SOCK_STREAM socket        OTHER                 LOCAL (kind UNIX)   [F_LOCAL]
 *   pipe or FIFO                      OTHER                 LOCAL (kind PIPE)   [F_LOCAL]
 *   anything else as fd 1 / fd 2      OTHER                 STDIO (STDOUT/ERR)  [F_STDIO]
 *   anything else                     OTHER                 OTHER
 *
 * OTHER entries make the fd's later syscalls bail at entry (ks_fd_known_other), so a
 * process that is not an agent pays for the agent check once per fd, at its first
 * sight, and never after.
 *
 * Contract: entries are made here (ks_track) and only here, and end at close
 * (sock_io.bpf.c ks_en_close) or when user space drops them (BpfEventSource::MarkAgent,
 * UnmarkAgent). Each tracked generation is bracketed by an open event (emit.bpf.h) and a
 * close event, the close sent before any reuse of the fd is tracked, so user space never
 * merges two connections. Callers advance the stream positions (pos_in/pos_out) with an
 * atomic add and set the tls (ks_mark_tls) and llm flags. */
#ifndef KSPAN_CONN_BPF_H
#define KSPAN_CONN_BPF_H

#include "base.bpf.h"
#include "emit.bpf.h"
#include "sock_id.bpf.h"

#include <bpf/bpf_helpers.h>

static __always_inline __u64 ks_next_generation(void) {
  __u32 zero = 0;
  __u64 *g = bpf_map_lookup_elem(&ks_gen, &zero);
  if (!g) return 0;
  return __sync_fetch_and_add(g, 1) + 1;
}

/* From now on the connection's plaintext comes from the TLS library: positions restart
 * at 0 and count plaintext, and the socket's ciphertext events are no longer sent. */
static __always_inline void ks_mark_tls(struct ks_conn *c) {
  if (c->tls) return;
  c->tls = 1;
  c->pos_in = 0;
  c->pos_out = 0;
}

/* Starts tracking (tgid, fd) as a new connection with `role`. Returns the map entry for
 * a TCP socket, or for an agent's Unix socket, pipe or stdio (see the table at the top),
 * NULL otherwise (a negative entry is remembered so the walk is not repeated for this
 * file). A stale tracked entry (fd reused without a close kspan saw) is closed first so
 * user space never merges two connections. ks_track_listened: an accepted socket, whose
 * open event also carries `listener`'s accept queue (emit.bpf.h). */
static __always_inline struct ks_conn *ks_track_listened(__u32 tgid, __s32 fd, struct file *f, __u8 role,
                                                         __u8 flags, __u8 syscall, struct sock *listener) {
  struct ks_fd_key key = {.tgid = tgid, .fd = fd};
  struct ks_conn *old = bpf_map_lookup_elem(&ks_conns, &key);
  if (old && old->kind != KS_FD_OTHER) ks_emit_close(tgid, fd, old);

  struct ks_conn c = {};
  c.file = (__u64)f;
  __u8 conn_kind = KSPAN_CONN_KIND_TCP;
  struct sock *sk = ks_tcp_sock(f);
  if (sk) {
    c.kind = KS_FD_TCP;
  } else if (f) {
    /* Only here, at the first sight of a non-TCP fd, does a process pay the lookup. */
    __u8 *agent = bpf_map_lookup_elem(&ks_agent_tgids, &tgid);
    if (agent) conn_kind = ks_local_kind(f, fd, *agent);
    if (conn_kind == KSPAN_CONN_KIND_STDOUT || conn_kind == KSPAN_CONN_KIND_STDERR)
      c.kind = KS_FD_STDIO;
    else if (conn_kind != KSPAN_CONN_KIND_TCP)
      c.kind = KS_FD_LOCAL;
  }
  if (c.kind != KS_FD_OTHER) {
    c.role = role;
    c.generation = ks_next_generation();
  }
  if (bpf_map_update_elem(&ks_conns, &key, &c, BPF_ANY) != 0) {
    ks_count(KSPAN_CNT_CONN_FULL);
    return NULL;
  }
  if (c.kind == KS_FD_OTHER) return NULL;
  if (sk)
    ks_emit_open(sk, listener, tgid, fd, c.generation, role, flags, syscall);
  else
    ks_emit_open_local(f, tgid, fd, c.generation, role, flags, syscall, conn_kind);
  return bpf_map_lookup_elem(&ks_conns, &key);
}

static __always_inline struct ks_conn *ks_track(__u32 tgid, __s32 fd, struct file *f, __u8 role, __u8 flags,
                                                __u8 syscall) {
  return ks_track_listened(tgid, fd, f, role, flags, syscall, NULL);
}

/* The tracked connection of any kind behind (tgid, fd), starting to track it mid-stream
 * when kspan has not seen this file there before; NULL when it is not tracked. */
static __always_inline struct ks_conn *ks_tracked_fd(__u32 tgid, __s32 fd, __u8 syscall) {
  struct file *f = ks_fd_file(fd);
  if (!f) return NULL;
  struct ks_fd_key key = {.tgid = tgid, .fd = fd};
  struct ks_conn *c = bpf_map_lookup_elem(&ks_conns, &key);
  if (c && c->file == (__u64)f) return c->kind != KS_FD_OTHER ? c : NULL;
  return ks_track(tgid, fd, f, KSPAN_ROLE_UNKNOWN, KSPAN_CONN_F_MIDSTREAM, syscall);
}

/* The tracked TCP connection behind (tgid, fd), as ks_tracked_fd; NULL when fd is not a
 * TCP socket. What the TLS helpers use: TLS is only followed over TCP. */
static __always_inline struct ks_conn *ks_conn_for_fd(__u32 tgid, __s32 fd, __u8 syscall) {
  struct ks_conn *c = ks_tracked_fd(tgid, fd, syscall);
  return c && c->kind == KS_FD_TCP ? c : NULL;
}

/* True when (tgid, fd) is known not to be tracked; lets entry probes bail early. */
static __always_inline int ks_fd_known_other(__u32 tgid, __s32 fd) {
  struct ks_fd_key key = {.tgid = tgid, .fd = fd};
  struct ks_conn *c = bpf_map_lookup_elem(&ks_conns, &key);
  if (!c || c->kind != KS_FD_OTHER) return 0;
  return c->file == (__u64)ks_fd_file(fd);
}

#endif /* KSPAN_CONN_BPF_H */
