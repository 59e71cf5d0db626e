/* TLS plaintext: uprobes on the TLS library's read and write functions.
 *
 * User space (userspace/tls/) attaches these to each OpenSSL it finds (a shared libssl,
 * or a binary with OpenSSL linked in, like node), choosing per function where to attach
 * (a cheap instruction; see docs/tls.md):
 *
 *   entry program      signature                                  return program
 *   ks_ssl_read        SSL_read(ssl, buf, int num)            -> n  ks_ssl_rd_ret
 *   ks_ssl_read_ex     SSL_read_ex(ssl, buf, num, size_t *n)  -> 1  ks_ssl_rd_ret
 *   ks_ssl_write       SSL_write(ssl, buf, int num)           -> n  ks_ssl_wr_ret
 *   ks_ssl_write_ex    SSL_write_ex(ssl, buf, num, size_t *n) -> 1  ks_ssl_wr_ret
 *   ks_ssl_sockw       SSL_write, plaintext sent at entry           (none)
 *   ks_ssl_sockw_ex    SSL_write_ex, likewise                       (none)
 *
 * (the _ex programs also fit OpenSSL's internal ssl_read_internal/ssl_write_internal,
 * which have the _ex signature). Entry stashes the call by thread; the syscalls it makes
 * meanwhile name its socket (tls.bpf.h); return sends the plaintext as a data event with
 * KSPAN_DATA_F_TLS. A shared libssl's writes use ks_ssl_sockw*: sent at entry, with the
 * socket writes standing in for the return probe (tls.bpf.h). These programs have no attach
 * target of their own: the loader skips them at start and user space attaches them per
 * library. */
#include "common.bpf.h"
#include "tls.bpf.h"

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

static __always_inline void ks_ssl_send(__u64 id, const struct ks_ssl_call *call, __u64 bytes);

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

static __always_inline int ks_ssl_enter(__u64 ssl, __u64 buf, __u64 out, __u8 direction) {
  __u64 id = bpf_get_current_pid_tgid();
  struct ks_ssl_call call = {.ssl = ssl, .buf = buf, .out = out, .direction = direction};
  if (!ks_ssl_begin(id, &call)) return 0;
  bpf_map_update_elem(&ks_ssl_calls, &id, &call, BPF_ANY);
  return 0;
}

/* SSL_write of a library whose socket writes tell what its return would (tls.bpf.h): the
 * plaintext is sent now, while the buffer surely holds it; no return probe. */
static __always_inline int ks_ssl_sockw_enter(__u64 ssl, __u64 buf, __u64 len) {
  __u64 id = bpf_get_current_pid_tgid();
  struct ks_ssl_call call = {
      .ssl = ssl, .buf = buf, .len = len, .direction = KSPAN_DIR_EGRESS, .deferred = 1};
  if (!ks_ssl_begin(id, &call)) return 0;
  int send = 1;
  struct ks_ssl_key key = {.tgid = id >> 32, .ssl = ssl};
  struct ks_ssl_retry *r = bpf_map_lookup_elem(&ks_ssl_retry, &key);
  if (r) {
    /* The retry of a WANT_WRITE: the failed call sent these bytes. */
    if (r->len == len) send = 0;
    bpf_map_delete_elem(&ks_ssl_retry, &key);
  } else {
    /* SSL_MODE_ENABLE_PARTIAL_WRITE: SSL_write returned after part of the buffer and this
     * call passes the rest, which the last call already sent. */
    struct ks_ssl_call *prev = bpf_map_lookup_elem(&ks_ssl_calls, &id);
    if (prev && prev->deferred && prev->ssl == ssl && buf > prev->buf && buf < prev->buf + prev->len &&
        buf + len == prev->buf + prev->len)
      send = 0;
  }
  /* Before the call replaces the last one: a first write of an object whose socket is
   * still unknown waits, unbound, for the call's socket write (tls.bpf.h). */
  bpf_map_update_elem(&ks_ssl_calls, &id, &call, BPF_ANY);
  if (send) ks_ssl_send(id, &call, len);
  return 0;
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
 * (a write) as unbound bytes that the thread's next write in this turn places. */
static __always_inline void ks_ssl_send(__u64 id, const struct ks_ssl_call *call, __u64 bytes) {
  const __u8 direction = call->direction;
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

static __always_inline int ks_ssl_return(long ret, __u8 direction) {
  __u64 id = bpf_get_current_pid_tgid();
  struct ks_ssl_call *cp = bpf_map_lookup_elem(&ks_ssl_calls, &id);
  if (!cp || cp->deferred) return 0; /* a write without return probe stays until replaced */
  struct ks_ssl_call call = *cp;
  bpf_map_delete_elem(&ks_ssl_calls, &id);
  if (call.direction != direction) return 0;

  /* Both forms return int: the upper half of the register is not theirs. */
  const int rc = (int)ret;
  __u64 bytes = 0;
  if (call.out) {
    if (rc == 1 && bpf_probe_read_user(&bytes, sizeof(bytes), (const void *)call.out) != 0) bytes = 0;
  } else if (rc > 0) {
    bytes = (__u64)rc;
  }
  if (bytes == 0) return 0;
  ks_ssl_send(id, &call, bytes);
  return 0;
}

SEC("uprobe")
int BPF_KPROBE(ks_ssl_read, void *ssl, void *buf, int num) {
  return ks_ssl_enter((__u64)ssl, (__u64)buf, 0, KSPAN_DIR_INGRESS);
}

SEC("uprobe")
int BPF_KPROBE(ks_ssl_read_ex, void *ssl, void *buf, __u64 num, void *done) {
  return ks_ssl_enter((__u64)ssl, (__u64)buf, (__u64)done, KSPAN_DIR_INGRESS);
}

SEC("uprobe")
int BPF_KPROBE(ks_ssl_write, void *ssl, void *buf, int num) {
  return ks_ssl_enter((__u64)ssl, (__u64)buf, 0, KSPAN_DIR_EGRESS);
}

SEC("uprobe")
int BPF_KPROBE(ks_ssl_write_ex, void *ssl, void *buf, __u64 num, void *done) {
  return ks_ssl_enter((__u64)ssl, (__u64)buf, (__u64)done, KSPAN_DIR_EGRESS);
}

SEC("uprobe")
int BPF_KPROBE(ks_ssl_sockw, void *ssl, void *buf, int num) {
  return num > 0 ? ks_ssl_sockw_enter((__u64)ssl, (__u64)buf, (__u64)num) : 0;
}

SEC("uprobe")
int BPF_KPROBE(ks_ssl_sockw_ex, void *ssl, void *buf, __u64 num) {
  return num > 0 ? ks_ssl_sockw_enter((__u64)ssl, (__u64)buf, num) : 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(ks_ssl_rd_ret, long ret) {
  return ks_ssl_return(ret, KSPAN_DIR_INGRESS);
}

SEC("uretprobe")
int BPF_KRETPROBE(ks_ssl_wr_ret, long ret) {
  return ks_ssl_return(ret, KSPAN_DIR_EGRESS);
}
