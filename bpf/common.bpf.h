/* Kernel-side helpers shared by the programs: filtering, counters, ring-buffer flags,
 * and the socket walk (fd -> struct file -> struct socket -> struct sock) that works
 * in a syscall tracepoint without kprobes.
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
 * sight, and never after. */
#ifndef KSPAN_COMMON_BPF_H
#define KSPAN_COMMON_BPF_H

#include "maps.bpf.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define KS_AF_INET 2
#define KS_AF_INET6 10
#define KS_AF_UNIX 1
#define KS_SOCK_STREAM 1
#define KS_IPPROTO_TCP 6
#define KS_S_IFMT 00170000
#define KS_S_IFSOCK 0140000
#define KS_S_IFIFO 0010000
#define KS_EINPROGRESS 115

static __always_inline void ks_count(__u32 idx) {
  __u64 *v = bpf_map_lookup_elem(&ks_counters, &idx);
  if (v) *v += 1; /* per-CPU slot: no atomics needed */
}

/* True when this process is one kspan watches. */
static __always_inline int ks_wanted(__u32 tgid) {
  if (tgid == ks_self_tgid) return 0;
  if (ks_filter_pids && !bpf_map_lookup_elem(&ks_pids, &tgid)) return 0;
  return 1;
}

/* Never wake the consumer per event (it costs ~5 us per syscall here): user space drains
 * on a short timer, and is woken only when the ring fills past ks_wakeup_bytes. */
static __always_inline __u64 ks_rb_flags(void) {
  __u64 avail = bpf_ringbuf_query(&ks_events, BPF_RB_AVAIL_DATA);
  return avail >= ks_wakeup_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

static __always_inline __u64 ks_next_generation(void) {
  __u32 zero = 0;
  __u64 *g = bpf_map_lookup_elem(&ks_gen, &zero);
  if (!g) return 0;
  return __sync_fetch_and_add(g, 1) + 1;
}

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

/* Fills the common header of every ring-buffer record. */
static __always_inline void ks_fill_header(struct kspan_event_header *h, __u32 type, __u64 pid_tgid) {
  h->type = type;
  h->tgid = pid_tgid >> 32;
  h->tid = (__u32)pid_tgid;
  __u32 tid = (__u32)pid_tgid;
  __u32 *turn = bpf_map_lookup_elem(&ks_turns, &tid);
  h->turn = turn ? *turn : 0;
  h->ts_ns = bpf_ktime_get_boot_ns();
}

/* What one data event says, besides the bytes already copied into the scratch slot. */
struct ks_data_meta {
  __s32 fd;
  __u64 generation; /* or, for an unbound TLS write, the TLS object's address */
  __u64 enter_ns;
  __u64 position;
  __u32 total;
  __u32 captured;
  __u8 direction;
  __u8 syscall;
  __u8 role;
  __u8 flags;
};

/* Sends the data event assembled in s->ev (its data[] holds m->captured bytes). */
static __always_inline void ks_submit_data(struct ks_scratch *s, __u64 pid_tgid,
                                           const struct ks_data_meta *m) {
  struct kspan_data_event *e = &s->ev;
  ks_fill_header(&e->hdr, KSPAN_EV_DATA, pid_tgid);
  e->conn.tgid = pid_tgid >> 32;
  e->conn.fd = m->fd;
  e->conn.generation = m->generation;
  e->enter_ns = m->enter_ns;
  e->position = m->position;
  e->total_len = m->total;
  e->direction = m->direction;
  e->syscall = m->syscall;
  e->role = m->role;
  e->flags = m->flags;
  __builtin_memset(e->_pad, 0, sizeof(e->_pad));
  __u32 captured = m->captured;
  if (captured > KSPAN_MAX_CAPTURE) captured = KSPAN_MAX_CAPTURE;
  e->captured_len = captured;
  __u64 size = offsetof(struct kspan_data_event, data) + ks_bound_len(captured);
  if (bpf_ringbuf_output(&ks_events, e, size, ks_rb_flags()) != 0) {
    ks_count(KSPAN_CNT_RB_FULL_DATA);
    return;
  }
  ks_count(KSPAN_CNT_EVENTS);
}

/* Copies up to `limit` bytes of a flat user buffer into ev->data; returns bytes copied. */
static __always_inline __u32 ks_copy_flat(struct ks_scratch *s, __u64 buf, __u32 limit) {
  __u32 n = limit;
  if (n > KSPAN_MAX_CAPTURE) n = KSPAN_MAX_CAPTURE;
  if (n == 0 || !buf) return 0;
  if (bpf_probe_read_user(s->ev.data, ks_bound_len(n), (const void *)buf) != 0) {
    ks_count(KSPAN_CNT_COPY_FAILED);
    return 0;
  }
  return n;
}

/* On a connection marked llm, a flat buffer larger than ks_llm_capture_bytes goes out as
 * up to KS_LLM_MAX_CHUNKS events of that size at consecutive stream positions, the last
 * one carrying the rest of the length (a hole past its captured bytes): LLM requests put
 * parameters after prompts of tens of KiB. The first chunk is already in s->ev.data (m as
 * for one event); buf is the user buffer. Anything else is one event. */
#define KS_LLM_MAX_CHUNKS 4
static __always_inline void ks_submit_data_chunked(struct ks_scratch *s, __u64 pid_tgid,
                                                   struct ks_data_meta *m, __u64 buf, int llm) {
  const __u32 chunk = ks_llm_capture_bytes;
  const __u32 total = m->total;
  if (!llm || chunk == 0 || total <= chunk) {
    ks_submit_data(s, pid_tgid, m);
    return;
  }
  const __u64 base = m->position;
#pragma unroll
  for (__u32 k = 0; k < KS_LLM_MAX_CHUNKS; k++) {
    const __u32 off = k * chunk;
    if (off >= total) break;
    const int last = k == KS_LLM_MAX_CHUNKS - 1 || total - off <= chunk;
    m->position = base + off;
    m->total = last ? total - off : chunk;
    if (k > 0) m->captured = ks_copy_flat(s, buf + off, m->total < chunk ? m->total : chunk);
    ks_submit_data(s, pid_tgid, m);
    if (last) break;
  }
}

static __always_inline struct ks_scratch *ks_scratch_slot(void) {
  __u32 cpu = bpf_get_smp_processor_id();
  return bpf_map_lookup_elem(&ks_scratch, &cpu);
}

/* LLM API calls carry the fields kspan reads (model, usage, finish reasons) anywhere in
 * JSON bodies of many KiB, so their connections capture more (docs/genai.md). A client's
 * request marks its connection when the request line is
 *   POST <path>[?query] HTTP/1.x
 * and the path ends with one of the suffixes below: OpenAI-compatible APIs (…/chat/
 * completions, …/completions, …/responses, …/embeddings), Anthropic (…/messages) and
 * Ollama (/api/chat, /api/generate, /api/embed). User space makes the exact call; a false
 * match only costs bigger events on that one connection. */
#define KS_LLM_PATH_SCAN 256 /* request-line bytes searched for the end of the path */

static __always_inline int ks_path_ends_with(const __u8 *d, __u32 end, const char *lit, __u32 n) {
  if (end < n) return 0;
#pragma unroll
  for (__u32 i = 0; i < n; i++) {
    if (d[(end - n + i) & (KSPAN_MAX_CAPTURE - 1)] != (__u8)lit[i]) return 0;
  }
  return 1;
}
#define KS_PATH_ENDS_WITH(d, end, lit) ks_path_ends_with(d, end, lit, sizeof(lit) - 1)

struct ks_path_scan {
  __u32 captured; /* bytes in s->ev.data */
  __u32 end;      /* out: index of the ' ' or '?' that ends the path; 0: not found */
};

/* bpf_loop callback over the request line: the verifier checks it once, where an inline
 * loop with an early exit would be explored once per exit point. */
static long ks_find_path_end(__u32 i, void *arg) {
  struct ks_path_scan *scan = arg;
  const __u32 at = i + 5; /* after "POST " */
  if (at >= scan->captured) return 1;
  struct ks_scratch *s = ks_scratch_slot();
  if (!s) return 1;
  const __u8 ch = s->ev.data[at & (KSPAN_MAX_CAPTURE - 1)];
  if (ch == ' ' || ch == '?') {
    scan->end = at;
    return 1;
  }
  return 0;
}

/* True when the `captured` bytes in s->ev.data start an LLM API request (see above). */
static __always_inline int ks_llm_request(const struct ks_scratch *s, __u32 captured) {
  const __u8 *d = s->ev.data;
  if (ks_llm_capture_bytes <= ks_capture_bytes || captured < 16) return 0;
  if (d[0] != 'P' || d[1] != 'O' || d[2] != 'S' || d[3] != 'T' || d[4] != ' ') return 0;
  struct ks_path_scan scan = {.captured = captured, .end = 0};
  bpf_loop(KS_LLM_PATH_SCAN, ks_find_path_end, &scan, 0);
  const __u32 end = scan.end;
  if (end == 0 || end >= KS_LLM_PATH_SCAN + 5) return 0;
  return KS_PATH_ENDS_WITH(d, end, "/completions") || KS_PATH_ENDS_WITH(d, end, "/responses") ||
         KS_PATH_ENDS_WITH(d, end, "/embeddings") || KS_PATH_ENDS_WITH(d, end, "/messages") ||
         KS_PATH_ENDS_WITH(d, end, "/api/chat") || KS_PATH_ENDS_WITH(d, end, "/api/generate") ||
         KS_PATH_ENDS_WITH(d, end, "/api/embed");
}

/* Bytes to capture of a `total`-byte event on a connection (llm: see ks_llm_request). */
static __always_inline __u32 ks_capture_limit(int llm, __u32 total) {
  const __u32 cap = llm && ks_llm_capture_bytes > ks_capture_bytes ? ks_llm_capture_bytes : ks_capture_bytes;
  return total < cap ? total : cap;
}

/* The calling thread's event-loop turn (see kspan_event_header.turn). */
static __always_inline __u32 ks_current_turn(__u64 pid_tgid) {
  __u32 tid = (__u32)pid_tgid;
  __u32 *turn = bpf_map_lookup_elem(&ks_turns, &tid);
  return turn ? *turn : 0;
}

/* True when the process has called a probed TLS function since kspan started. */
static __always_inline int ks_tls_process(__u32 tgid) {
  return bpf_map_lookup_elem(&ks_tls_tgids, &tgid) != NULL;
}

/* From now on the connection's plaintext comes from the TLS library: positions restart
 * at 0 and count plaintext, and the socket's ciphertext events are no longer sent. */
static __always_inline void ks_mark_tls(struct ks_conn *c) {
  if (c->tls) return;
  c->tls = 1;
  c->pos_in = 0;
  c->pos_out = 0;
}

/* Emits a connection-open event for sk. */
static __always_inline void ks_emit_open(struct sock *sk, __u32 tgid, __s32 fd, __u64 gen, __u8 role,
                                         __u8 flags, __u8 syscall) {
  struct kspan_conn_event *e = bpf_ringbuf_reserve(&ks_events, sizeof(*e), 0);
  if (!e) {
    ks_count(KSPAN_CNT_RB_FULL_CONN);
    return;
  }
  ks_fill_header(&e->hdr, KSPAN_EV_CONN_OPEN, bpf_get_current_pid_tgid());
  e->conn.tgid = tgid;
  e->conn.fd = fd;
  e->conn.generation = gen;
  e->family = BPF_CORE_READ(sk, __sk_common.skc_family);
  e->local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
  e->remote_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
  e->role = role;
  e->flags = flags;
  e->syscall = syscall;
  e->kind = KSPAN_CONN_KIND_TCP;
  __builtin_memset(e->_pad, 0, sizeof(e->_pad));
  __builtin_memset(e->local_addr, 0, sizeof(e->local_addr));
  __builtin_memset(e->remote_addr, 0, sizeof(e->remote_addr));
  if (e->family == KS_AF_INET) {
    __be32 local = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
    __be32 remote = BPF_CORE_READ(sk, __sk_common.skc_daddr);
    __builtin_memcpy(e->local_addr, &local, sizeof(local));
    __builtin_memcpy(e->remote_addr, &remote, sizeof(remote));
  } else {
    /* typed destinations: BPF_CORE_READ_INTO copies sizeof(*dst) bytes */
    BPF_CORE_READ_INTO((struct in6_addr *)e->local_addr, sk, __sk_common.skc_v6_rcv_saddr);
    BPF_CORE_READ_INTO((struct in6_addr *)e->remote_addr, sk, __sk_common.skc_v6_daddr);
  }
  bpf_ringbuf_submit(e, ks_rb_flags());
  ks_count(KSPAN_CNT_EVENTS);
}

/* Emits a connection-open event for an agent's Unix socket, pipe or stdio (conn_kind:
 * enum kspan_conn_kind): no ports; family AF_UNIX for a Unix socket; for a Unix socket or
 * a pipe, the channel's identity in the address fields (events.h: the inode numbers of
 * this end and of the other), so user space pairs the two processes of one channel. */
static __always_inline void ks_emit_open_local(struct file *f, __u32 tgid, __s32 fd, __u64 gen, __u8 role,
                                               __u8 flags, __u8 syscall, __u8 conn_kind) {
  struct kspan_conn_event *e = bpf_ringbuf_reserve(&ks_events, sizeof(*e), 0);
  if (!e) {
    ks_count(KSPAN_CNT_RB_FULL_CONN);
    return;
  }
  ks_fill_header(&e->hdr, KSPAN_EV_CONN_OPEN, bpf_get_current_pid_tgid());
  e->conn.tgid = tgid;
  e->conn.fd = fd;
  e->conn.generation = gen;
  e->family = conn_kind == KSPAN_CONN_KIND_UNIX ? KS_AF_UNIX : 0;
  e->local_port = 0;
  e->remote_port = 0;
  e->role = role;
  e->flags = flags;
  e->syscall = syscall;
  e->kind = conn_kind;
  __builtin_memset(e->_pad, 0, sizeof(e->_pad));
  __builtin_memset(e->local_addr, 0, sizeof(e->local_addr));
  __builtin_memset(e->remote_addr, 0, sizeof(e->remote_addr));
  __u64 own = 0, other = 0;
  if (conn_kind == KSPAN_CONN_KIND_PIPE) {
    own = other = BPF_CORE_READ(f, f_inode, i_ino);
  } else if (conn_kind == KSPAN_CONN_KIND_UNIX) {
    own = BPF_CORE_READ(f, f_inode, i_ino);
    struct socket *sock = BPF_CORE_READ(f, private_data);
    struct unix_sock *u = (struct unix_sock *)BPF_CORE_READ(sock, sk);
    struct sock *peer = BPF_CORE_READ(u, peer);
    if (peer) other = BPF_CORE_READ(peer, sk_socket, file, f_inode, i_ino);
  }
  __builtin_memcpy(e->local_addr, &own, sizeof(own));
  __builtin_memcpy(e->remote_addr, &other, sizeof(other));
  bpf_ringbuf_submit(e, ks_rb_flags());
  ks_count(KSPAN_CNT_EVENTS);
}

static __always_inline void ks_emit_close(__u32 tgid, __s32 fd, const struct ks_conn *c) {
  struct kspan_close_event *e = bpf_ringbuf_reserve(&ks_events, sizeof(*e), 0);
  if (!e) {
    ks_count(KSPAN_CNT_RB_FULL_CONN);
    return;
  }
  ks_fill_header(&e->hdr, KSPAN_EV_CONN_CLOSE, bpf_get_current_pid_tgid());
  e->conn.tgid = tgid;
  e->conn.fd = fd;
  e->conn.generation = c->generation;
  e->bytes_sent = c->pos_out;
  e->bytes_received = c->pos_in;
  bpf_ringbuf_submit(e, ks_rb_flags());
  ks_count(KSPAN_CNT_EVENTS);
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

/* Starts tracking (tgid, fd) as a new connection with `role`. Returns the map entry for
 * a TCP socket, or for an agent's Unix socket, pipe or stdio (see the table at the top),
 * NULL otherwise (a negative entry is remembered so the walk is not repeated for this
 * file). A stale tracked entry (fd reused without a close kspan saw) is closed first so
 * user space never merges two connections. */
static __always_inline struct ks_conn *ks_track(__u32 tgid, __s32 fd, struct file *f, __u8 role, __u8 flags,
                                                __u8 syscall) {
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
    ks_emit_open(sk, tgid, fd, c.generation, role, flags, syscall);
  else
    ks_emit_open_local(f, tgid, fd, c.generation, role, flags, syscall, conn_kind);
  return bpf_map_lookup_elem(&ks_conns, &key);
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

#endif /* KSPAN_COMMON_BPF_H */
