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
#include "tls_send.bpf.h"

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

__attribute__((noinline)) int ks_ssl_send_egress(__u64 id, const struct ks_ssl_call *call, __u64 bytes) {
  if (!call) return 0;
  ks_ssl_send_dir(id, call, bytes, KSPAN_DIR_EGRESS);
  return 0;
}

static __always_inline int ks_ssl_enter(__u64 ssl, __u64 buf, __u64 out, __u8 direction) {
  __u64 id = bpf_get_current_pid_tgid();
  struct ks_ssl_call call = {.ssl = ssl, .buf = buf, .out = out, .direction = direction};
  if (!ks_ssl_begin(id, &call)) return 0;
  if (bpf_map_update_elem(&ks_ssl_calls, &id, &call, BPF_ANY) != 0) ks_count(KSPAN_CNT_TLS_CALL_FULL);
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
  if (bpf_map_update_elem(&ks_ssl_calls, &id, &call, BPF_ANY) != 0) ks_count(KSPAN_CNT_TLS_CALL_FULL);
  if (send) ks_ssl_send(id, &call, len);
  return 0;
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

/* rustls (userspace/tls/rustls_binary.h): its plaintext boundary is
 *
 *   <rustls::conn::Reader as std::io::Read>::read(&mut self, buf: &mut [u8]) -> io::Result<usize>
 *   <rustls::conn::Writer as std::io::Write>::write(&mut self, buf: &[u8]) -> io::Result<usize>
 *
 * Rust's own calling convention, which changed between compilers: older rustc (Debian 12's
 * 1.63) returns the 16-byte io::Result through memory (RDI the result's address, the
 * arguments from RSI: self, buffer, length; at return the tag, 0 for Ok, at +0 and the
 * count at +8), newer ones in registers (arguments from RDI; RAX the tag, RDX the count).
 * User space tells which from Reader::read's code and attaches the matching programs.
 *
 * The TLS object is the first word of the Reader (its &mut ChunkVecBuffer of received
 * plaintext) or of the Writer (the data pointer of its &mut dyn PlaintextSink, the
 * connection): both stay the same for a connection's life, though not the same as each
 * other. rustls works on memory buffers: the application reads the socket before
 * Reader::read (read_tls, then process_new_packets) and writes it after Writer::write
 * (write_tls). So a write is sent at entry, deferred like a shared libssl's, and its
 * socket is its next TLS record write (tls.bpf.h); a read is the socket the thread read
 * last, or the one the Reader was last bound to. A thread that never waits in an event
 * loop (a blocking client) has turn 0 throughout: for rustls that is a turn too. */
static __always_inline int ks_rustls_read_enter(__u64 self, __u64 buf, __u64 len, __u64 result) {
  if (len == 0) return 0;
  __u64 key = 0;
  if (bpf_probe_read_user(&key, sizeof(key), (const void *)self) != 0 || key == 0) return 0;
  return ks_ssl_enter(key, buf, result, KSPAN_DIR_INGRESS);
}

static __always_inline int ks_rustls_write_enter(__u64 self, __u64 buf, __u64 len) {
  if (len == 0) return 0;
  __u64 key = 0;
  if (bpf_probe_read_user(&key, sizeof(key), (const void *)self) != 0 || key == 0) return 0;
  __u64 id = bpf_get_current_pid_tgid();
  struct ks_ssl_call call = {
      .ssl = key, .buf = buf, .len = len, .direction = KSPAN_DIR_EGRESS, .deferred = 1};
  if (!ks_ssl_begin(id, &call)) return 0;
  /* rustls takes the bytes whatever its socket does: a noted EAGAIN of the write_tls that
   * followed the last write says nothing about this one (unlike OpenSSL's WANT_WRITE). */
  struct ks_ssl_key rk = {.tgid = id >> 32, .ssl = key};
  if (bpf_map_lookup_elem(&ks_ssl_retry, &rk)) bpf_map_delete_elem(&ks_ssl_retry, &rk);
  /* write_all after a short write passes the rest, which the last call already sent. */
  struct ks_ssl_call *prev = bpf_map_lookup_elem(&ks_ssl_calls, &id);
  int send = !(prev && prev->deferred && prev->ssl == key && buf > prev->buf && buf < prev->buf + prev->len &&
               buf + len == prev->buf + prev->len);
  if (bpf_map_update_elem(&ks_ssl_calls, &id, &call, BPF_ANY) != 0) ks_count(KSPAN_CNT_TLS_CALL_FULL);
  if (send) ks_ssl_send_egress(id, &call, len);
  return 0;
}

SEC("uprobe")
int BPF_KPROBE(ks_rls_read, void *self, void *buf, __u64 len) {
  return ks_rustls_read_enter((__u64)self, (__u64)buf, len, 0);
}

SEC("uprobe")
int BPF_KPROBE(ks_rls_read_m, void *result, void *self, void *buf, __u64 len) {
  return ks_rustls_read_enter((__u64)self, (__u64)buf, len, (__u64)result);
}

SEC("uprobe")
int BPF_KPROBE(ks_rls_write, void *self, void *buf, __u64 len) {
  return ks_rustls_write_enter((__u64)self, (__u64)buf, len);
}

SEC("uprobe")
int BPF_KPROBE(ks_rls_write_m, void *result, void *self, void *buf, __u64 len) {
  return ks_rustls_write_enter((__u64)self, (__u64)buf, len);
}

/* Reader::read's return, either convention: `out` (the result's address) was kept at
 * entry when the result is in memory. */
SEC("uretprobe")
int BPF_KRETPROBE(ks_rls_rd_ret) {
  __u64 id = bpf_get_current_pid_tgid();
  struct ks_ssl_call *cp = bpf_map_lookup_elem(&ks_ssl_calls, &id);
  if (!cp || cp->deferred || cp->direction != KSPAN_DIR_INGRESS) return 0;
  struct ks_ssl_call call = *cp;
  bpf_map_delete_elem(&ks_ssl_calls, &id);
  __u64 result[2] = {1, 0};
  if (call.out) {
    if (bpf_probe_read_user(result, sizeof(result), (const void *)call.out) != 0) return 0;
  } else {
    result[0] = PT_REGS_RC(ctx);
    result[1] = PT_REGS_PARM3(ctx); /* RDX */
  }
  if (result[0] != 0 || result[1] == 0) return 0; /* Err (WouldBlock: nothing yet), or EOF */
  if (call.fd < 0) {
    /* The Reader's socket when it is known and still open, else what the thread read last. */
    struct ks_ssl_key key = {.tgid = id >> 32, .ssl = call.ssl};
    __s32 *known = bpf_map_lookup_elem(&ks_ssl_fds, &key);
    if (known) {
      struct ks_fd_key fk = {.tgid = id >> 32, .fd = *known};
      struct ks_conn *kc = bpf_map_lookup_elem(&ks_conns, &fk);
      if (kc && kc->kind == KS_FD_TCP) call.fd = *known;
    }
    if (call.fd < 0) {
      struct ks_last_read *lr = bpf_map_lookup_elem(&ks_last_read, &id);
      if (lr && lr->turn == ks_current_turn(id)) call.fd = lr->fd;
    }
  }
  ks_ssl_send(id, &call, result[1]);
  return 0;
}
