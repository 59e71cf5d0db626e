/* TLS helpers the socket programs call (sock_io.bpf.c) to tie TLS objects to sockets.
 *
 * A TLS library call (SSL_read/SSL_write, tls.bpf.c) learns its socket in one of three
 * ways, tried in this order:
 *   1. its own syscalls: OpenSSL with a socket BIO (nginx, CPython, curl) reads or
 *      writes the socket inside SSL_read/SSL_write, on the same thread;
 *   2. what is already known of the TLS object (ks_ssl_fds), from an earlier call;
 *   3. the thread's neighbouring syscall in the same event-loop turn, for libraries that
 *      work on memory buffers (node): SSL_read decrypts what the thread just read from a
 *      socket, and a socket write follows SSL_write (its writes wait in ks_tls_pending
 *      until then, sent as unbound events, and a bind event places them).
 * Syscalls of a connection found to be TLS are not sent: user space gets the plaintext. */
#ifndef KSPAN_TLS_BPF_H
#define KSPAN_TLS_BPF_H

#include "common.bpf.h"

/* The connection (tgid, fd) as a TLS connection, or NULL when fd is not a TCP socket. */
static __always_inline struct ks_conn *ks_tls_conn(__u32 tgid, __s32 fd, __u8 syscall) {
  if (fd < 0) return NULL;
  struct ks_conn *c = ks_conn_for_fd(tgid, fd, syscall);
  if (c) ks_mark_tls(c);
  return c;
}

static __always_inline void ks_remember_ssl_fd(__u32 tgid, __u64 ssl, __s32 fd) {
  struct ks_ssl_key key = {.tgid = tgid, .ssl = ssl};
  bpf_map_update_elem(&ks_ssl_fds, &key, &fd, BPF_ANY);
}

/* A socket syscall of a process that uses TLS has returned on `fd` (TCP): note it for
 * the TLS call in progress on this thread, or as the thread's last read. Returns 1 when
 * the syscall ran inside a TLS call (its bytes are ciphertext). */
static __always_inline int ks_tls_note_syscall(__u64 pid_tgid, __s32 fd, __u8 direction) {
  struct ks_ssl_call *call = bpf_map_lookup_elem(&ks_ssl_calls, &pid_tgid);
  if (call) {
    if (call->fd < 0) call->fd = fd;
    return 1;
  }
  if (direction == KSPAN_DIR_INGRESS) {
    struct ks_last_read lr = {.fd = fd, .turn = ks_current_turn(pid_tgid)};
    bpf_map_update_elem(&ks_last_read, &pid_tgid, &lr, BPF_ANY);
  }
  return 0;
}

/* A write syscall is starting on fd: if this thread's TLS writes are waiting for their
 * socket and it is the same event-loop turn, this is their socket. */
static __always_inline void ks_tls_bind_pending(__u64 pid_tgid, __s32 fd, __u8 syscall) {
  struct ks_tls_pending *pp = bpf_map_lookup_elem(&ks_tls_pending, &pid_tgid);
  if (!pp) return;
  struct ks_tls_pending p = *pp;
  bpf_map_delete_elem(&ks_tls_pending, &pid_tgid);
  __u32 tgid = pid_tgid >> 32;
  if (p.turn == 0 || p.turn != ks_current_turn(pid_tgid)) {
    ks_count(KSPAN_CNT_TLS_UNBOUND);
    return;
  }
  struct ks_conn *c = ks_tls_conn(tgid, fd, syscall);
  if (!c) {
    ks_count(KSPAN_CNT_TLS_UNBOUND);
    return;
  }
  ks_remember_ssl_fd(tgid, p.ssl, fd);
  if (p.llm) c->llm = 1;
  __u64 position = __sync_fetch_and_add(&c->pos_out, p.bytes);
  struct kspan_tls_bind_event *e = bpf_ringbuf_reserve(&ks_events, sizeof(*e), 0);
  if (!e) {
    ks_count(KSPAN_CNT_RB_FULL_CONN);
    return;
  }
  ks_fill_header(&e->hdr, KSPAN_EV_TLS_BIND, pid_tgid);
  e->conn.tgid = tgid;
  e->conn.fd = fd;
  e->conn.generation = c->generation;
  e->ssl = p.ssl;
  e->bytes = p.bytes;
  e->position = position;
  bpf_ringbuf_submit(e, ks_rb_flags());
  ks_count(KSPAN_CNT_EVENTS);
}

#endif /* KSPAN_TLS_BPF_H */
