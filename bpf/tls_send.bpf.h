/* What every TLS uprobe does once it has a call's plaintext (tls.bpf.c for OpenSSL,
 * go_tls.bpf.c for Go's crypto/tls): start a call, and send its bytes on the call's
 * socket, or unbound until the socket is known (tls.bpf.h). */
#ifndef KSPAN_TLS_SEND_BPF_H
#define KSPAN_TLS_SEND_BPF_H

#include "common.bpf.h"
#include "tls.bpf.h"

#include <bpf/bpf_helpers.h>

/* Starts the thread's new TLS call; 0 when the process is not watched. */
static __always_inline int ks_ssl_begin(__u64 id, struct ks_ssl_call *call) {
  __u32 tgid = id >> 32;
  if (!ks_wanted(tgid)) return 0;
  if (!ks_tls_process(tgid)) {
    __u8 one = 1;
    bpf_map_update_elem(&ks_tls_tgids, &tgid, &one, BPF_ANY);
  }
  call->enter_ns = bpf_ktime_get_boot_ns();
  call->fd = -1;
  return 1;
}

/* The socket of a TLS call that made no syscall of its own, or -1. */
static __always_inline __s32 ks_ssl_known_fd(__u64 id, const struct ks_ssl_call *call) {
  __u32 tgid = id >> 32;
  if (call->direction == KSPAN_DIR_INGRESS) {
    /* Memory-BIO libraries decrypt what the thread read from the socket this turn. */
    struct ks_last_read *lr = bpf_map_lookup_elem(&ks_last_read, &id);
    if (lr && lr->turn != 0 && lr->turn == ks_current_turn(id)) return lr->fd;
  }
  struct ks_ssl_key key = {.tgid = tgid, .ssl = call->ssl};
  __s32 *fd = bpf_map_lookup_elem(&ks_ssl_fds, &key);
  if (!fd) return -1;
  /* Only while that socket is still open: a freed TLS object's address gets reused. */
  struct ks_fd_key fk = {.tgid = tgid, .fd = *fd};
  struct ks_conn *c = bpf_map_lookup_elem(&ks_conns, &fk);
  return c && c->kind == KS_FD_TCP ? *fd : -1;
}

/* Sends `bytes` plaintext bytes of a finished call, on its socket when it is known, else
 * (a write) as unbound bytes that the thread's next write in this turn places.
 * `direction` is call->direction, passed apart so that a constant prunes the other's
 * paths where the verifier cannot see the call's content (ks_ssl_send_egress). */
static __always_inline void ks_ssl_send_dir(__u64 id, const struct ks_ssl_call *call, __u64 bytes,
                                            const __u8 direction) {
  __u32 total = bytes > 0xFFFFFFFFull ? 0xFFFFFFFF : (__u32)bytes;
  __u32 tgid = id >> 32;
  __u64 buf = call->buf;

  struct ks_conn *c = NULL;
  __s32 fd = call->fd;
  if (fd >= 0) {
    /* The call's own syscall found this connection (and checked its file) moments ago. */
    struct ks_fd_key key = {.tgid = tgid, .fd = fd};
    c = bpf_map_lookup_elem(&ks_conns, &key);
    if (c && c->kind != KS_FD_TCP) c = NULL;
    if (c) ks_mark_tls(c);
  } else {
    fd = ks_ssl_known_fd(id, call);
    c = ks_tls_conn(tgid, fd, direction == KSPAN_DIR_EGRESS ? KSPAN_SYS_SSL_WRITE : KSPAN_SYS_SSL_READ);
  }
  struct ks_data_meta m = {
      .enter_ns = call->enter_ns,
      .total = total,
      .direction = direction,
      .syscall = direction == KSPAN_DIR_EGRESS ? KSPAN_SYS_SSL_WRITE : KSPAN_SYS_SSL_READ,
      .flags = KSPAN_DATA_F_TLS,
  };
  struct ks_tls_pending np = {.ssl = call->ssl};
  if (fd >= 0) {
    if (!c) return; /* not a TCP socket: TLS over a pipe or a Unix socket */
    ks_remember_ssl_fd(tgid, call->ssl, fd);
    m.fd = fd;
    m.generation = c->generation;
    m.role = c->role;
    m.position = __sync_fetch_and_add(direction == KSPAN_DIR_EGRESS ? &c->pos_out : &c->pos_in, total);
  } else if (direction == KSPAN_DIR_EGRESS) {
    /* Sent before its socket is known: the thread's next write in this turn binds it, or,
     * for a write without return probe, the object's next TLS record write in any turn. */
    np.turn = ks_current_turn(id);
    struct ks_tls_pending *p = bpf_map_lookup_elem(&ks_tls_pending, &id);
    if (p && (p->ssl != call->ssl || (p->turn != np.turn && !call->deferred))) {
      ks_count(KSPAN_CNT_TLS_UNBOUND); /* the earlier object's writes never found a socket */
      p = NULL;
    }
    if (p) {
      np.bytes = p->bytes;
      np.llm = p->llm;
    }
    m.fd = -1;
    m.generation = call->ssl;
    m.position = np.bytes;
    m.flags |= KSPAN_DATA_F_UNBOUND;
  } else {
    ks_count(KSPAN_CNT_TLS_UNBOUND);
    return;
  }

  struct ks_scratch *s = ks_scratch_slot();
  const int llm = c ? c->llm : np.llm;
  if (s) {
    m.captured = ks_copy_flat(s, buf, ks_capture_limit(llm, total));
    /* A client's request to an LLM API marks its connection (llm.bpf.h). */
    if (direction == KSPAN_DIR_EGRESS && !llm && (!c || c->role != KSPAN_ROLE_SERVER) &&
        ks_llm_request(s, m.captured)) {
      if (c) c->llm = 1;
      np.llm = 1;
      if (m.captured < total) m.captured = ks_copy_flat(s, buf, ks_capture_limit(1, total));
    }
  }
  if (!c) {
    /* Counted even when no scratch slot: positions stay true for the bind. */
    np.bytes += total;
    bpf_map_update_elem(&ks_tls_pending, &id, &np, BPF_ANY);
  }
  if (s) ks_submit_data_chunked(s, id, &m, buf, c ? c->llm : np.llm);
}

static __always_inline void ks_ssl_send(__u64 id, const struct ks_ssl_call *call, __u64 bytes) {
  ks_ssl_send_dir(id, call, bytes, call->direction);
}

/* ks_ssl_send of a write as a global function (tls.bpf.c), checked once per program:
 * for callers where the inlined send is explored along many of the caller's states
 * (rustls' write probes: 31k instructions inlined, the largest programs kspan loads). */
int ks_ssl_send_egress(__u64 id, const struct ks_ssl_call *call, __u64 bytes);

#endif /* KSPAN_TLS_SEND_BPF_H */
