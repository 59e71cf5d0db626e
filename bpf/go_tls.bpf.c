/* Go's crypto/tls: uprobes on crypto/tls.(*Conn).Write and .Read of each Go binary
 * (userspace/tls/go_binary.h finds them, by symbol or through .gopclntab when stripped).
 *
 *   program          where                              registers (Go ABIInternal, Go >= 1.17)
 *   ks_go_tls_write  (*Conn).Write, the stack check's jbe   RAX c, RBX b.ptr, RCX b.len
 *   ks_go_tls_read   (*Conn).Read, likewise                  RAX c, RBX b.ptr, RCX b.len
 *   ks_go_tls_rdret  each RET instruction of (*Conn).Read   RAX n; R14 the goroutine (g)
 *
 * No return probes: a uretprobe replaces the return address on the goroutine's stack,
 * and Go moves and copies goroutine stacks (growth, tracebacks), which then crash or
 * return to the trampoline's address. A probe on each RET sees the same registers with
 * the stack untouched. Read's entry and its RET are paired by goroutine (R14 holds the
 * current g in Go code), not by thread: a goroutine blocked in Read resumes on whatever
 * thread the scheduler gives it.
 *
 * The events carry tid 0 (ks_go_send says why). Writes are sent at entry (the plaintext is in b then; Write
 * returns n < len(b) only with an error, as OpenSSL's entry-only writes in tls.bpf.h). The socket is found by
 * walking the *tls.Conn to its file descriptor, with these offsets (the same in every Go
 * release from 1.17 to 1.23, checked against each release's source):
 *
 *   *tls.Conn      +0  conn net.Conn   interface: +0 itab, +8 data (*net.TCPConn)
 *   *net.TCPConn   +0  conn.fd *netFD
 *   *netFD         +0  pfd poll.FD: +0 fdmu (16 bytes), +16 Sysfd int
 *
 * A conn that is not a *net.TCPConn (a wrapped or in-memory net.Conn) gives a number that
 * is not an open TCP socket of the process, and ks_tls_conn refuses it: its bytes are not
 * sent.
 *
 * The entry probes sit on the `jbe morestack` of the stack check every Go function with a
 * frame begins with (`cmp rsp,[r14+16]; jbe`): the kernel emulates a branch (~5 us here)
 * but single-steps the cmp or sub around it (~20 us). When the flags say the jump is
 * taken (CF or ZF: the stack must grow first), morestack restarts the function from its
 * entry and the probe fires again then: the first firing does nothing, so a write is
 * never sent twice. */
#include "common.bpf.h"
#include "tls.bpf.h"
#include "tls_send.bpf.h"

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define KS_GO_CONN_DATA 8  /* tls.Conn.conn's data word */
#define KS_GO_TCPCONN_FD 0 /* net.TCPConn.conn.fd */
#define KS_GO_NETFD_SYSFD 16

/* x86 EFLAGS: jbe jumps when CF or ZF is set. */
#define KS_X86_CF (1UL << 0)
#define KS_X86_ZF (1UL << 6)

/* At the jbe of the stack check: 1 when the function goes to morestack first (it comes
 * back to its entry and this probe fires again). */
static __always_inline int ks_go_grows_stack(const struct pt_regs *ctx) {
  return (ctx->flags & (KS_X86_CF | KS_X86_ZF)) != 0;
}

/* A conn whose socket is closed: Go sets Sysfd to -1 on Close, and a Write or Read on it
 * then fails (net.ErrClosed) before any syscall, so it carries no plaintext to lose. Go's
 * HTTP/2 server flushes its SETTINGS onto connections the client already dropped (the
 * client dials one per waiting request and closes the extra ones). */
#define KS_GO_CLOSED (-2)

/* The socket under a *tls.Conn, KS_GO_CLOSED, or -1 when the walk fails. */
static __always_inline __s32 ks_go_conn_fd(__u64 conn) {
  __u64 tcp = 0, netfd = 0;
  __s64 sysfd = -1;
  if (bpf_probe_read_user(&tcp, sizeof(tcp), (const void *)(conn + KS_GO_CONN_DATA)) != 0 || !tcp) return -1;
  if (bpf_probe_read_user(&netfd, sizeof(netfd), (const void *)(tcp + KS_GO_TCPCONN_FD)) != 0 || !netfd)
    return -1;
  if (bpf_probe_read_user(&sysfd, sizeof(sysfd), (const void *)(netfd + KS_GO_NETFD_SYSFD)) != 0) return -1;
  if (sysfd == -1) return KS_GO_CLOSED;
  return sysfd >= 0 && sysfd < 0x7fffffff ? (__s32)sysfd : -1;
}

/* Sends `bytes` plaintext at buf of the *tls.Conn `conn` on socket fd. */
static __always_inline void ks_go_send(__u64 id, __u64 conn, __u64 buf, __s32 fd, __u64 enter_ns,
                                       __u8 direction, __u64 bytes) {
  if (fd == KS_GO_CLOSED) return;
  if (fd < 0) {
    ks_count(KSPAN_CNT_TLS_UNBOUND);
    return;
  }
  struct ks_conn *c =
      ks_tls_conn(id >> 32, fd, direction == KSPAN_DIR_EGRESS ? KSPAN_SYS_SSL_WRITE : KSPAN_SYS_SSL_READ);
  if (!c) {
    /* Closed while Go still held the number (its Close sets Sysfd to -1 just after the
     * close syscall): the call fails too. */
    if (!ks_fd_file(fd)) return;
    ks_count(KSPAN_CNT_TLS_UNBOUND);
    return;
  }
  struct ks_ssl_call call = {.ssl = conn, .buf = buf, .enter_ns = enter_ns, .fd = fd, .direction = direction};
  /* The event names no thread (tid 0): the OS thread a goroutine runs on says nothing
   * about which request it serves (many goroutines share a thread, and one migrates),
   * so the stitcher's thread and event-loop rules must not apply to Go's TLS calls. */
  ks_ssl_send(id & ~0xffffffffULL, &call, bytes);
}

SEC("uprobe")
int ks_go_tls_write(struct pt_regs *ctx) {
  if (ks_go_grows_stack(ctx)) return 0;
  const __u64 conn = ctx->ax, buf = ctx->bx, len = ctx->cx;
  if (!conn || !buf || len == 0 || (__s64)len < 0) return 0;
  __u64 id = bpf_get_current_pid_tgid();
  struct ks_ssl_call call = {};
  if (!ks_ssl_begin(id, &call)) return 0;
  ks_go_send(id, conn, buf, ks_go_conn_fd(conn), call.enter_ns, KSPAN_DIR_EGRESS, len);
  return 0;
}

SEC("uprobe")
int ks_go_tls_read(struct pt_regs *ctx) {
  if (ks_go_grows_stack(ctx)) return 0;
  const __u64 conn = ctx->ax, buf = ctx->bx, len = ctx->cx;
  if (!conn || !buf || len == 0) return 0;
  __u64 id = bpf_get_current_pid_tgid();
  struct ks_ssl_call call = {};
  if (!ks_ssl_begin(id, &call)) return 0;
  struct ks_ssl_key key = {.tgid = id >> 32, .ssl = ctx->r14};
  struct ks_go_read r = {.conn = conn, .buf = buf, .enter_ns = call.enter_ns, .fd = ks_go_conn_fd(conn)};
  bpf_map_update_elem(&ks_go_reads, &key, &r, BPF_ANY);
  return 0;
}

SEC("uprobe")
int ks_go_tls_rdret(struct pt_regs *ctx) {
  __u64 id = bpf_get_current_pid_tgid();
  struct ks_ssl_key key = {.tgid = id >> 32, .ssl = ctx->r14};
  struct ks_go_read *rp = bpf_map_lookup_elem(&ks_go_reads, &key);
  if (!rp) return 0;
  struct ks_go_read r = *rp;
  bpf_map_delete_elem(&ks_go_reads, &key);
  const __s64 n = (__s64)ctx->ax;
  if (n <= 0) return 0;
  ks_go_send(id, r.conn, r.buf, r.fd, r.enter_ns, KSPAN_DIR_INGRESS, (__u64)n);
  return 0;
}
