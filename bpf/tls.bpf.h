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
 * Syscalls of a connection found to be TLS are not sent: user space gets the plaintext.
 *
 * Writes of a shared libssl have no return probe (one trap per SSL_write, not two;
 * docs/tls.md). The plaintext is in the buffer when SSL_write begins, so the entry program
 * sends it then (tls.bpf.c: on the object's socket when known, else unbound), and keeps
 * the call as the thread's deferred write. What the return would have told, the socket
 * writes tell:
 *
 *   SSL_write(ssl, buf, len) entry   event: len bytes (prefix copied), unless it is
 *                                    - the retry of a WANT_WRITE (retry{len} of the object)
 *                                    - the rest of a partly written buffer (partial-write
 *                                      mode: buf and len continue the thread's last write)
 *     write(fd, TLS record) > 0      its socket: a first write of the object places its
 *                                    unbound bytes here (a bind event)
 *     write(fd, ...) = -EAGAIN       SSL_write returns WANT_WRITE: retry{len} for (tgid, ssl)
 *
 * With a memory BIO (CPython's asyncio and ssl.MemoryBIO) the ciphertext is written after
 * the call returned: the thread's next TLS record write, in whatever turn, is its socket
 * unless the object is known to be on another one. */
#ifndef KSPAN_TLS_BPF_H
#define KSPAN_TLS_BPF_H

#include "common.bpf.h"

#define KS_EAGAIN 11
/* OpenSSL's largest plaintext fragment (SSL3_RT_MAX_PLAIN_LENGTH). */
#define KS_TLS_MAX_FRAGMENT 16384

/* The connection (tgid, fd) as a TLS connection, or NULL when fd is not a TCP socket. */
static __always_inline struct ks_conn *ks_tls_conn(__u32 tgid, __s32 fd, __u8 syscall) {
  if (fd < 0) return NULL;
  struct ks_conn *c = ks_conn_for_fd(tgid, fd, syscall);
  if (c) ks_mark_tls(c);
  return c;
}

/* Written only when it changes: a hash update costs several lookups. */
static __always_inline void ks_remember_ssl_fd(__u32 tgid, __u64 ssl, __s32 fd) {
  struct ks_ssl_key key = {.tgid = tgid, .ssl = ssl};
  __s32 *known = bpf_map_lookup_elem(&ks_ssl_fds, &key);
  if (known && *known == fd) return;
  bpf_map_update_elem(&ks_ssl_fds, &key, &fd, BPF_ANY);
}

/* Places a thread's unbound TLS writes (p) at the current end of connection c (fd):
 * a bind event tells user space where. */
static __always_inline void ks_tls_place_unbound(__u64 pid_tgid, const struct ks_tls_pending *p, __s32 fd,
                                                 struct ks_conn *c) {
  __u32 tgid = pid_tgid >> 32;
  ks_remember_ssl_fd(tgid, p->ssl, fd);
  if (p->llm) c->llm = 1;
  __u64 position = __sync_fetch_and_add(&c->pos_out, p->bytes);
  struct kspan_tls_bind_event *e = bpf_ringbuf_reserve(&ks_events, sizeof(*e), 0);
  if (!e) {
    ks_count(KSPAN_CNT_RB_FULL_CONN);
    return;
  }
  ks_fill_header(&e->hdr, KSPAN_EV_TLS_BIND, pid_tgid);
  e->conn.tgid = tgid;
  e->conn.fd = fd;
  e->conn.generation = c->generation;
  e->ssl = p->ssl;
  e->bytes = p->bytes;
  e->position = position;
  bpf_ringbuf_submit(e, ks_rb_flags());
  ks_count(KSPAN_CNT_EVENTS);
}

/* When the bytes a write syscall sends start a TLS record (content type 20..23, version
 * 3.x, a length a record can have: 2^14 plaintext + 2048 of expansion), its content
 * type; else 0. Reads 5 bytes of the caller's buffer (the first iovec's for writev and
 * sendmsg). */
static __always_inline __u8 ks_tls_record_type(const struct ks_stash *st) {
  __u64 at = st->buf;
  if (st->syscall == KSPAN_SYS_WRITEV || st->syscall == KSPAN_SYS_SENDMSG) {
    if (st->syscall == KSPAN_SYS_SENDMSG) {
      struct user_msghdr msg;
      if (bpf_probe_read_user(&msg, sizeof(msg), (const void *)st->buf) != 0) return 0;
      at = (__u64)msg.msg_iov;
    }
    struct iovec iov;
    if (bpf_probe_read_user(&iov, sizeof(iov), (const void *)at) != 0) return 0;
    at = (__u64)iov.iov_base;
  } else if (st->syscall != KSPAN_SYS_WRITE && st->syscall != KSPAN_SYS_SENDTO) {
    return 0;
  }
  __u8 h[5];
  if (!at || bpf_probe_read_user(h, sizeof(h), (const void *)at) != 0) return 0;
  const __u32 len = ((__u32)h[3] << 8) | h[4];
  if (h[0] < 20 || h[0] > 23 || h[1] != 3 || h[2] > 4 || len == 0 || len > KS_TLS_MAX_FRAGMENT + 2048)
    return 0;
  return h[0];
}

/* A syscall of the thread while its last TLS call is a deferred write (returned or not).
 * Returns 1 when the syscall belongs to that write's connection (ciphertext), 0 when it
 * is the thread's own. */
static __always_inline int ks_tls_deferred_write(__u64 id, struct ks_ssl_call *call,
                                                 const struct ks_stash *st, struct ks_conn *c,
                                                 __u8 direction) {
  const __s32 fd = st->fd;
  /* A read inside SSL_write (a handshake it had to finish) belongs to it only on its socket. */
  if (direction != KSPAN_DIR_EGRESS) return call->fd == fd;
  if (call->fd < 0) {
    /* No socket yet: the thread's next TLS record write (inside the call with a socket
     * BIO; after it with a memory BIO, in whatever turn: a socket with a timeout polls
     * before it writes), unless the object is known to be on another open socket. */
    if (ks_tls_record_type(st) == 0) return 0;
    struct ks_ssl_key key = {.tgid = id >> 32, .ssl = call->ssl};
    __s32 *known = bpf_map_lookup_elem(&ks_ssl_fds, &key);
    if (known && *known != fd) {
      struct ks_fd_key fk = {.tgid = id >> 32, .fd = *known};
      struct ks_conn *kc = bpf_map_lookup_elem(&ks_conns, &fk);
      if (kc && kc->kind == KS_FD_TCP) return 0;
    }
    call->fd = fd;
    ks_remember_ssl_fd(id >> 32, call->ssl, fd);
    ks_mark_tls(c);
    /* The object's writes sent before its socket was known go here, in order. */
    struct ks_tls_pending *pp = bpf_map_lookup_elem(&ks_tls_pending, &id);
    if (pp && pp->ssl == call->ssl) {
      struct ks_tls_pending p = *pp;
      bpf_map_delete_elem(&ks_tls_pending, &id);
      ks_tls_place_unbound(id, &p, fd, c);
    }
  } else if (call->fd != fd) {
    return 0;
  }
  /* A write that went through while a WANT_WRITE of the object is noted: OpenSSL never
   * writes again before the retry's entry (which takes the note), so this is the
   * application flushing a memory BIO, and the note was about its socket, not OpenSSL. */
  struct ks_ssl_key rk = {.tgid = id >> 32, .ssl = call->ssl};
  if (bpf_map_lookup_elem(&ks_ssl_retry, &rk)) bpf_map_delete_elem(&ks_ssl_retry, &rk);
  return 1;
}

/* A socket syscall of a process that uses TLS has returned on a TCP socket (c, st->fd):
 * note it for the TLS call in progress on this thread, or as the thread's last read.
 * Returns 1 when the syscall ran inside a TLS call (its bytes are ciphertext). */
static __always_inline int ks_tls_note_syscall(__u64 pid_tgid, struct ks_conn *c, const struct ks_stash *st,
                                               __u8 direction) {
  struct ks_ssl_call *call = bpf_map_lookup_elem(&ks_ssl_calls, &pid_tgid);
  if (call && call->deferred) {
    if (ks_tls_deferred_write(pid_tgid, call, st, c, direction)) {
      /* A read on the deferred write's socket: rustls (tls.bpf.c) reads its socket after
       * the write returned, and its next Reader::read decrypts these bytes. */
      if (direction == KSPAN_DIR_INGRESS) {
        struct ks_last_read lr = {.fd = st->fd, .turn = ks_current_turn(pid_tgid)};
        bpf_map_update_elem(&ks_last_read, &pid_tgid, &lr, BPF_ANY);
      }
      return 1;
    }
    call = NULL; /* that write is over: this syscall is the thread's own */
  }
  if (call) {
    if (call->fd < 0) call->fd = st->fd;
    return 1;
  }
  if (direction == KSPAN_DIR_INGRESS) {
    struct ks_last_read lr = {.fd = st->fd, .turn = ks_current_turn(pid_tgid)};
    bpf_map_update_elem(&ks_last_read, &pid_tgid, &lr, BPF_ANY);
  }
  return 0;
}

/* A read syscall is starting on fd inside this thread's SSL_read (a socket BIO), on a
 * connection already known to be TLS: its ciphertext would only be counted and dropped at
 * exit, so the call notes its socket now and the syscall is not stashed (its exit program
 * then stops at the first lookup). Returns 1 when so. The file is compared as at exit:
 * an fd reused behind kspan's back is not taken for the TLS connection. */
static __always_inline int ks_tls_read_in_call(__u64 pid_tgid, __s32 fd) {
  struct ks_ssl_call *call = bpf_map_lookup_elem(&ks_ssl_calls, &pid_tgid);
  if (!call || call->deferred || (call->fd >= 0 && call->fd != fd)) return 0;
  struct ks_fd_key key = {.tgid = pid_tgid >> 32, .fd = fd};
  struct ks_conn *c = bpf_map_lookup_elem(&ks_conns, &key);
  if (!c || c->kind != KS_FD_TCP || !c->tls || c->file != (__u64)ks_fd_file(fd)) return 0;
  call->fd = fd;
  ks_count(KSPAN_CNT_TLS_CIPHERTEXT);
  return 1;
}

/* A write syscall of a process that uses TLS failed with EAGAIN. Inside a deferred
 * SSL_write that call returns WANT_WRITE, and OpenSSL requires the retry to pass the same
 * length: note it, so that the retry does not send the bytes again. */
static __always_inline void ks_tls_write_blocked(__u64 pid_tgid, const struct ks_stash *st) {
  struct ks_ssl_call *call = bpf_map_lookup_elem(&ks_ssl_calls, &pid_tgid);
  if (!call || !call->deferred) return;
  if (call->fd >= 0 && call->fd != st->fd) return;
  if (call->fd < 0 && ks_tls_record_type(st) == 0) return;
  struct ks_ssl_key key = {.tgid = pid_tgid >> 32, .ssl = call->ssl};
  struct ks_ssl_retry r = {.len = call->len};
  bpf_map_update_elem(&ks_ssl_retry, &key, &r, BPF_ANY);
}

/* A write syscall is starting on fd: if this thread's TLS writes are waiting for their
 * socket and it is the same event-loop turn, this is their socket. Writes of the object
 * whose deferred SSL_write is the thread's current call wait for that call's socket
 * write instead (ks_tls_deferred_write), which needs no turn: it is the same object. */
static __always_inline void ks_tls_bind_pending(__u64 pid_tgid, __s32 fd, __u8 syscall) {
  struct ks_tls_pending *pp = bpf_map_lookup_elem(&ks_tls_pending, &pid_tgid);
  if (!pp) return;
  struct ks_ssl_call *call = bpf_map_lookup_elem(&ks_ssl_calls, &pid_tgid);
  if (call && call->deferred && call->fd < 0 && call->ssl == pp->ssl) return;
  struct ks_tls_pending p = *pp;
  bpf_map_delete_elem(&ks_tls_pending, &pid_tgid);
  if (p.turn == 0 || p.turn != ks_current_turn(pid_tgid)) {
    ks_count(KSPAN_CNT_TLS_UNBOUND);
    return;
  }
  struct ks_conn *c = ks_tls_conn(pid_tgid >> 32, fd, syscall);
  if (!c) {
    ks_count(KSPAN_CNT_TLS_UNBOUND);
    return;
  }
  ks_tls_place_unbound(pid_tgid, &p, fd, c);
}

#endif /* KSPAN_TLS_BPF_H */
