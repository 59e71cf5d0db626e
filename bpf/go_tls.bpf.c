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
 * The events carry no OS thread but the goroutine's request scope (below). Writes are sent at entry (the
 * plaintext is in b then; Write returns n < len(b) only with an error, as OpenSSL's entry-only writes in
 * tls.bpf.h). The socket is found by walking the *tls.Conn to its file descriptor, with these offsets (the
 * same in every Go release from 1.17 to 1.23, checked against each release's source):
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
 * never sent twice.
 *
 * Which request a goroutine works for (its scope), for the stitcher's thread rule
 * (docs/tracing.md): the OS thread says nothing in Go (goroutines share threads and
 * migrate), so an event's tid is a number made from the scope's g instead (ks_go_tid: bit
 * 31 set, which no real tid has). The scope of a goroutine is
 *
 *   a net/http client connection's readLoop/writeLoop   the scope of the goroutine that
 *     (ks_go_loops -> ks_go_pconns)                      last called roundTrip on it
 *   one spawned by a goroutine that has a scope          that scope (ks_go_scopes, set
 *     (runtime.newproc1's entry and RET)                 when it is created)
 *   else                                                 itself, recorded at its first TLS
 *                                                        handshake, Read or Write
 *
 *   program          where                                      registers
 *   ks_go_spawn      runtime.newproc1, stack check's jbe        RBX callergp (Go >= 1.18)
 *   ks_go_spawned    each RET of runtime.newproc1                RAX the new g
 *   ks_go_handshake  crypto/tls.(*Conn).serverHandshake and     R14 the goroutine
 *                    clientHandshake, jbe
 *   ks_go_roundtrip  net/http.(*persistConn).roundTrip, jbe      RAX the *persistConn
 *   ks_go_conn_loop  net/http.(*persistConn).readLoop and        RAX the *persistConn
 *                    writeLoop, jbe
 *
 * So an HTTP/1.1 server's connection goroutine (it does the handshake, reads the request,
 * runs the handler and writes the response) is the scope of everything the handler
 * spawns, and of the net/http client connection that carries the handler's outbound
 * request (written by the connection's writeLoop, not by the caller). A goroutine spawned
 * by one without a scope (an accept loop) starts a scope of its own; one whose g is reused
 * loses its old scope when it is created again. */
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

/* The scope of goroutine g of process tgid (see the top of this file); with `claim`, a
 * goroutine without one becomes its own. */
static __always_inline __u64 ks_go_scope(__u32 tgid, __u64 g, int claim) {
  struct ks_ssl_key key = {.tgid = tgid, .ssl = g};
  __u64 *pconn = bpf_map_lookup_elem(&ks_go_loops, &key);
  if (pconn) {
    struct ks_ssl_key pk = {.tgid = tgid, .ssl = *pconn};
    __u64 *scope = bpf_map_lookup_elem(&ks_go_pconns, &pk);
    if (scope) return *scope;
  }
  __u64 *scope = bpf_map_lookup_elem(&ks_go_scopes, &key);
  if (scope) return *scope;
  if (claim) bpf_map_update_elem(&ks_go_scopes, &key, &g, BPF_NOEXIST);
  return g;
}

/* The tid an event of scope g carries: bit 31 set (Linux tids stay below 2^22), the rest
 * a hash of g. Two live scopes that collide would share a "thread": 1 in 2^31 a pair. */
static __always_inline __u32 ks_go_tid(__u64 scope) {
  return (__u32)((scope * 0x9E3779B97F4A7C15ULL) >> 33) | 0x80000000U;
}

/* Sends `bytes` plaintext at buf of the *tls.Conn `conn` on socket fd. */
static __always_inline void ks_go_send(__u64 id, __u64 conn, __u64 buf, __s32 fd, __u64 enter_ns,
                                       __u8 direction, __u64 bytes, __u64 g) {
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
  /* The event names no OS thread: the thread a goroutine runs on says nothing about
   * which request it serves (many goroutines share a thread, and one migrates). It names
   * the goroutine's scope instead, so the stitcher's thread rule pairs a handler's
   * outbound call with its request; its event-loop rules never apply (no turn). */
  ks_ssl_send((id & ~0xffffffffULL) | ks_go_tid(ks_go_scope(id >> 32, g, 1)), &call, bytes);
}

SEC("uprobe")
int ks_go_tls_write(struct pt_regs *ctx) {
  if (ks_go_grows_stack(ctx)) return 0;
  const __u64 conn = ctx->ax, buf = ctx->bx, len = ctx->cx;
  if (!conn || !buf || len == 0 || (__s64)len < 0) return 0;
  __u64 id = bpf_get_current_pid_tgid();
  struct ks_ssl_call call = {};
  if (!ks_ssl_begin(id, &call)) return 0;
  ks_go_send(id, conn, buf, ks_go_conn_fd(conn), call.enter_ns, KSPAN_DIR_EGRESS, len, ctx->r14);
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
  ks_go_send(id, r.conn, r.buf, r.fd, r.enter_ns, KSPAN_DIR_INGRESS, (__u64)n, ctx->r14);
  return 0;
}

/* runtime.newproc1(fn, callergp, callerpc) *g, on the system stack: R14 is the thread's
 * g0 there, so the spawning goroutine comes from its argument. */
SEC("uprobe")
int ks_go_spawn(struct pt_regs *ctx) {
  if (ks_go_grows_stack(ctx)) return 0;
  const __u64 parent = ctx->bx;
  __u64 id = bpf_get_current_pid_tgid();
  if (!parent || !ks_wanted(id >> 32)) return 0;
  bpf_map_update_elem(&ks_go_spawns, &id, &parent, BPF_ANY);
  return 0;
}

SEC("uprobe")
int ks_go_spawned(struct pt_regs *ctx) {
  __u64 id = bpf_get_current_pid_tgid();
  __u64 *pp = bpf_map_lookup_elem(&ks_go_spawns, &id);
  if (!pp) return 0;
  const __u64 parent = *pp;
  bpf_map_delete_elem(&ks_go_spawns, &id);
  const __u64 child = ctx->ax;
  if (!child) return 0;
  const __u32 tgid = id >> 32;
  struct ks_ssl_key key = {.tgid = tgid, .ssl = child};
  /* A g is reused once its goroutine exits: whatever the old one had goes. */
  bpf_map_delete_elem(&ks_go_loops, &key);
  struct ks_ssl_key pk = {.tgid = tgid, .ssl = parent};
  if (bpf_map_lookup_elem(&ks_go_scopes, &pk) || bpf_map_lookup_elem(&ks_go_loops, &pk)) {
    __u64 scope = ks_go_scope(tgid, parent, 0);
    bpf_map_update_elem(&ks_go_scopes, &key, &scope, BPF_ANY);
  } else {
    bpf_map_delete_elem(&ks_go_scopes, &key);
  }
  return 0;
}

/* A TLS handshake: the goroutine doing it is a scope from now on, unless it has one (an
 * outbound connection dialed for a request keeps the request's). */
SEC("uprobe")
int ks_go_handshake(struct pt_regs *ctx) {
  if (ks_go_grows_stack(ctx)) return 0;
  __u64 id = bpf_get_current_pid_tgid();
  if (!ks_wanted(id >> 32)) return 0;
  ks_go_scope(id >> 32, ctx->r14, 1);
  return 0;
}

/* net/http.(*persistConn).roundTrip, on the goroutine that makes the request: the
 * connection's loops work for its scope until the next roundTrip (HTTP/1.1 carries one
 * request at a time). */
SEC("uprobe")
int ks_go_roundtrip(struct pt_regs *ctx) {
  if (ks_go_grows_stack(ctx)) return 0;
  __u64 id = bpf_get_current_pid_tgid();
  const __u64 pconn = ctx->ax;
  if (!pconn || !ks_wanted(id >> 32)) return 0;
  __u64 scope = ks_go_scope(id >> 32, ctx->r14, 1);
  struct ks_ssl_key pk = {.tgid = id >> 32, .ssl = pconn};
  bpf_map_update_elem(&ks_go_pconns, &pk, &scope, BPF_ANY);
  return 0;
}

/* net/http.(*persistConn).readLoop / writeLoop: this goroutine serves that connection. */
SEC("uprobe")
int ks_go_conn_loop(struct pt_regs *ctx) {
  if (ks_go_grows_stack(ctx)) return 0;
  __u64 id = bpf_get_current_pid_tgid();
  const __u64 pconn = ctx->ax;
  if (!pconn || !ks_wanted(id >> 32)) return 0;
  struct ks_ssl_key key = {.tgid = id >> 32, .ssl = ctx->r14};
  bpf_map_update_elem(&ks_go_loops, &key, &pconn, BPF_ANY);
  return 0;
}
