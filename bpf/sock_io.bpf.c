/* Socket I/O: syscall tracepoints that capture what TCP sockets send and receive, and,
 * for agents and MCP servers (ks_agent_tgids), Unix stream sockets, pipes and stdout/
 * stderr writes too (conn.bpf.h ks_track).
 *
 * Entry programs of the sending syscalls stash the arguments by pid_tgid (the receiving
 * ones take theirs from the saved user registers at the exit); exit programs resolve the
 * socket (sock_id.bpf.h, conn.bpf.h), advance the per-direction stream position and emit
 * one kspan_data_event with a bounded payload prefix:
 *
 *   sys_enter_X ──stash{fd,buf,count,enter_ns}──▶ sys_exit_X (ret > 0)
 *        │ skip: kspan itself, filtered pid,             │ fd → file → socket → sock
 *        │ fd known not to be tracked                    │ pos = fetch_add(pos_dir, ret)
 *   (reads: no entry; the exit filters the same way)     ▼
 *                            ring buffer: header + min(ret, ks_capture_bytes) bytes
 *                            (ks_llm_capture_bytes on a connection marked llm: a client
 *                            request to an LLM API path, llm.bpf.h)
 *
 * connect/accept/accept4 exits start a connection (role client/server) and close entry
 * ends one. Only syscall tracepoints: no kprobes, no fentry.
 *
 * TLS (tls.bpf.h): in processes that call the TLS library, a syscall inside SSL_read/
 * SSL_write tells the call its socket, and the connection's ciphertext is not sent. */
#include "common.bpf.h"
#include "tls.bpf.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

/* ---- entry: stash ---------------------------------------------------------------- */

static __always_inline int ks_stash_args(__s32 fd, __u64 buf, __u64 count, __u8 syscall) {
  __u64 id = bpf_get_current_pid_tgid();
  __u32 tgid = id >> 32;
  if (!ks_wanted(tgid)) return 0;
  if (ks_fd_known_other(tgid, fd)) return 0;
  struct ks_stash s = {};
  s.enter_ns = bpf_ktime_get_boot_ns();
  s.buf = buf;
  s.count = count;
  s.fd = fd;
  s.syscall = syscall;
  if (bpf_map_update_elem(&ks_stash, &id, &s, BPF_ANY) != 0) ks_count(KSPAN_CNT_STASH_FULL);
  return 0;
}

/* Reads have no entry program: their exit takes the arguments from the task's saved user
 * registers (ks_read_args), which saves a program run and a stash update, lookup and
 * delete per read (issue 17). Writes keep theirs: an egress chunk's time is its syscall's
 * entry (a request starts when its first write starts), which only an entry can know. */

/* Writes also place TLS writes that were waiting for their socket (tls.bpf.h). */
static __always_inline int ks_stash_write(__s32 fd, __u64 buf, __u64 count, __u8 syscall) {
  __u64 id = bpf_get_current_pid_tgid();
  if (ks_wanted(id >> 32) && ks_tls_process(id >> 32)) ks_tls_bind_pending(id, fd, syscall);
  return ks_stash_args(fd, buf, count, syscall);
}

#define KS_ENTER_WRITE(tp, name, sys)                                            \
  SEC("tracepoint/syscalls/sys_enter_" #tp)                                      \
  int name(struct trace_event_raw_sys_enter *ctx) {                              \
    return ks_stash_write((__s32)ctx->args[0], ctx->args[1], ctx->args[2], sys); \
  }

KS_ENTER_WRITE(write, ks_en_write, KSPAN_SYS_WRITE)
KS_ENTER_WRITE(writev, ks_en_writev, KSPAN_SYS_WRITEV)
KS_ENTER_WRITE(sendto, ks_en_sendto, KSPAN_SYS_SENDTO)
KS_ENTER_WRITE(sendmsg, ks_en_sendmsg, KSPAN_SYS_SENDMSG)

/* sendfile64(out_fd, in_fd, offset, count): the socket is out_fd; the bytes come from a
 * file and are not captured, but they advance the stream (a hole of known size). */
SEC("tracepoint/syscalls/sys_enter_sendfile64")
int ks_en_sendfile(struct trace_event_raw_sys_enter *ctx) {
  return ks_stash_args((__s32)ctx->args[0], 0, ctx->args[3], KSPAN_SYS_SENDFILE);
}

/* connect/accept: the fd argument is all we need (accept's new fd is the return). */
SEC("tracepoint/syscalls/sys_enter_connect")
int ks_en_connect(struct trace_event_raw_sys_enter *ctx) {
  return ks_stash_args((__s32)ctx->args[0], 0, 0, KSPAN_SYS_CONNECT);
}

/* accept's stash keeps the listening fd, whose socket's accept queue the exit reads. */
static __always_inline int ks_stash_accept(__s32 listen_fd, __u8 syscall) {
  __u64 id = bpf_get_current_pid_tgid();
  if (!ks_wanted(id >> 32)) return 0;
  struct ks_stash s = {};
  s.enter_ns = bpf_ktime_get_boot_ns();
  s.syscall = syscall;
  s.fd = listen_fd;
  if (bpf_map_update_elem(&ks_stash, &id, &s, BPF_ANY) != 0) ks_count(KSPAN_CNT_STASH_FULL);
  return 0;
}

SEC("tracepoint/syscalls/sys_enter_accept")
int ks_en_accept(struct trace_event_raw_sys_enter *ctx) {
  return ks_stash_accept((__s32)ctx->args[0], KSPAN_SYS_ACCEPT);
}

SEC("tracepoint/syscalls/sys_enter_accept4")
int ks_en_accept4(struct trace_event_raw_sys_enter *ctx) {
  return ks_stash_accept((__s32)ctx->args[0], KSPAN_SYS_ACCEPT4);
}

/* ---- exit: capture --------------------------------------------------------------- */

/* Copies up to `limit` bytes spread over an iovec array. A global function: its 64
 * unrolled iterations are verified once, on their own, instead of at each of ks_ex_data's
 * four call paths (readv/writev and sendmsg/recvmsg, each before and after the LLM
 * re-copy) and again for every state of the code around them, which made ks_ex_data
 * 17,805 instructions and ~0.6 s of BPF_PROG_LOAD (issue 17: attached in <= 300 ms). */
__attribute__((noinline)) __u32 ks_copy_iov(struct ks_scratch *s, __u64 iov_addr, __u64 iovcnt, __u32 limit) {
  if (!s) return 0;
  __u32 off = 0;
  if (limit > KSPAN_MAX_CAPTURE) limit = KSPAN_MAX_CAPTURE;
#pragma unroll
  for (int i = 0; i < KSPAN_MAX_IOV; i++) {
    if (i >= iovcnt || off >= limit) break;
    struct iovec iov;
    if (bpf_probe_read_user(&iov, sizeof(iov), (const void *)(iov_addr + i * sizeof(iov))) != 0) break;
    __u32 n = limit - off;
    if (iov.iov_len < n) n = iov.iov_len;
    if (n > KSPAN_MAX_CAPTURE) n = KSPAN_MAX_CAPTURE;
    __u32 at = off & (KSPAN_MAX_CAPTURE - 1);
    if (n == 0) continue;
    /* at < MAX and n <= MAX: the write stays inside ev.data + overflow. */
    if (bpf_probe_read_user(s->ev.data + at, ks_bound_len(n), iov.iov_base) != 0) {
      ks_count(KSPAN_CNT_COPY_FAILED);
      break;
    }
    off += n;
  }
  return off;
}

/* Copies up to `limit` bytes of the syscall's buffer(s) into s->ev.data. */
static __always_inline __u32 ks_copy_args(struct ks_scratch *s, const struct ks_stash *st, __u32 limit) {
  switch (st->syscall) {
    case KSPAN_SYS_READ:
    case KSPAN_SYS_WRITE:
    case KSPAN_SYS_SENDTO:
    case KSPAN_SYS_RECVFROM: return ks_copy_flat(s, st->buf, limit);
    case KSPAN_SYS_READV:
    case KSPAN_SYS_WRITEV: return ks_copy_iov(s, st->buf, st->count, limit);
    case KSPAN_SYS_SENDMSG:
    case KSPAN_SYS_RECVMSG: {
      struct user_msghdr msg;
      if (bpf_probe_read_user(&msg, sizeof(msg), (const void *)st->buf) == 0)
        return ks_copy_iov(s, (__u64)msg.msg_iov, msg.msg_iovlen, limit);
      ks_count(KSPAN_CNT_COPY_FAILED);
      return 0;
    }
    default: /* sendfile: nothing to copy */ return 0;
  }
}

/* ks_tls_note_syscall as a global function: the verifier checks the TLS bookkeeping on
 * its own, once per program, instead of again for every state of the capture path around
 * it (inline, it multiplied the egress exits' verification). c: the connection's
 * ks_conns entry; st: the syscall's stash. */
__attribute__((noinline)) int ks_tls_syscall(__u64 pid_tgid, struct ks_conn *c, const struct ks_stash *st,
                                             __u32 direction) {
  if (!c || !st) return 0;
  return ks_tls_note_syscall(pid_tgid, c, st, direction);
}

/* The read syscalls by number (the sys_exit context's id), or 0 for any other. */
static __always_inline __u8 ks_read_syscall(long nr) {
#if defined(__TARGET_ARCH_x86)
  switch (nr) {
    case 0: return KSPAN_SYS_READ;
    case 19: return KSPAN_SYS_READV;
    case 45: return KSPAN_SYS_RECVFROM;
    case 47: return KSPAN_SYS_RECVMSG;
  }
#elif defined(__TARGET_ARCH_arm64)
  switch (nr) { /* asm-generic/unistd.h */
    case 63: return KSPAN_SYS_READ;
    case 65: return KSPAN_SYS_READV;
    case 207: return KSPAN_SYS_RECVFROM;
    case 212: return KSPAN_SYS_RECVMSG;
  }
#else
#error "ks_read_syscall: syscall numbers of this architecture"
#endif
  return 0;
}

/* A read's (fd, buffer, length or iovec count) at its exit, from the user registers the
 * syscall entry saved: the kernel does not change them while the call runs (arm64 returns
 * in x0, so its first argument is orig_x0). The same values the entry would have seen,
 * including arguments a seccomp or ptrace tracer changed before the call. */
static __always_inline void ks_read_args(struct ks_stash *st, __u8 syscall) {
  struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
#if defined(__TARGET_ARCH_x86)
  st->fd = (__s32)regs->di;
  st->buf = regs->si;
  st->count = regs->dx;
#else
  st->fd = (__s32)regs->orig_x0;
  st->buf = regs->regs[1];
  st->count = regs->regs[2];
#endif
  st->syscall = syscall;
}

/* The data syscalls' exit: which way the bytes went comes from the syscall's number
 * (reads) or its stash (writes), so one program serves every exit (ks_ex_data). */
static __always_inline int ks_data_exit(long nr, long ret) {
  __u64 id = bpf_get_current_pid_tgid();
  struct ks_stash st = {};
  const __u8 read_syscall = ks_read_syscall(nr);
  if (read_syscall) {
    __u32 tgid = id >> 32;
    if (ret <= 0 || !ks_wanted(tgid)) return 0;
    ks_read_args(&st, read_syscall);
    /* Reads inside an SSL_read of a known TLS connection are settled here (tls.bpf.h). */
    if (ks_tls_process(tgid) && ks_tls_read_in_call(id, st.fd)) return 0;
    /* enter_ns stays 0: a read's bytes are timed at its exit (ks_submit_data), and a clock
     * read costs ~40 ns here */
  } else {
    struct ks_stash *sp = bpf_map_lookup_elem(&ks_stash, &id);
    if (!sp) return 0;
    st = *sp;
    bpf_map_delete_elem(&ks_stash, &id);
  }
  __u8 direction;
  switch (st.syscall) {
    case KSPAN_SYS_READ:
    case KSPAN_SYS_READV:
    case KSPAN_SYS_RECVFROM:
    case KSPAN_SYS_RECVMSG: direction = KSPAN_DIR_INGRESS; break;
    case KSPAN_SYS_WRITE:
    case KSPAN_SYS_WRITEV:
    case KSPAN_SYS_SENDTO:
    case KSPAN_SYS_SENDMSG:
    case KSPAN_SYS_SENDFILE: direction = KSPAN_DIR_EGRESS; break;
    default: return 0; /* another syscall's stash (one whose exit was missed): not data */
  }
  __u32 tgid = id >> 32;
  if (ret <= 0) {
    /* A TLS write the socket did not take: its SSL_write returns WANT_WRITE (tls.bpf.h). */
    if (ret == -KS_EAGAIN && direction == KSPAN_DIR_EGRESS && ks_tls_process(tgid))
      ks_tls_write_blocked(id, &st);
    return 0;
  }

  struct ks_conn *c = ks_tracked_fd(tgid, st.fd, st.syscall);
  if (!c) return 0;
  if (c->kind == KS_FD_STDIO && direction != KSPAN_DIR_EGRESS) return 0; /* stdout/stderr: writes only */
  /* TLS is followed over TCP only. */
  if (c->kind == KS_FD_TCP && ks_tls_process(tgid) && ks_tls_syscall(id, c, &st, direction)) ks_mark_tls(c);
  if (c->tls) {
    ks_count(KSPAN_CNT_TLS_CIPHERTEXT);
    return 0;
  }

  struct ks_scratch *s = ks_scratch_slot();
  if (!s) return 0;

  __u32 total = ret > 0xFFFFFFFFL ? 0xFFFFFFFF : (__u32)ret;
  __u32 captured = ks_copy_args(s, &st, ks_capture_limit(c->llm, total));
  if (direction == KSPAN_DIR_EGRESS && !c->llm && c->role != KSPAN_ROLE_SERVER &&
      ks_llm_request(s, captured)) {
    c->llm = 1;
    if (captured < total) captured = ks_copy_args(s, &st, ks_capture_limit(1, total));
  }

  struct ks_data_meta m = {
      .fd = st.fd,
      .generation = c->generation,
      .enter_ns = st.enter_ns,
      .position = __sync_fetch_and_add(direction == KSPAN_DIR_EGRESS ? &c->pos_out : &c->pos_in, total),
      .total = total,
      .captured = captured,
      .direction = direction,
      .syscall = st.syscall,
      .role = c->role,
  };
  const int flat = st.syscall == KSPAN_SYS_READ || st.syscall == KSPAN_SYS_WRITE ||
                   st.syscall == KSPAN_SYS_SENDTO || st.syscall == KSPAN_SYS_RECVFROM;
  ks_submit_data_chunked(s, id, &m, st.buf, flat && c->llm);
  return 0;
}

/* One program for the exit of all nine data syscalls: the loader attaches it to each
 * sys_exit tracepoint (kPrograms in userspace/events/bpf_event_source.cc), so the verifier
 * checks the capture path once at start instead of once per syscall (nine times ~0.1-0.4 s
 * on a busy 2-core machine). Every sys_exit tracepoint has the same context layout. */
SEC("tracepoint")
int ks_ex_data(struct trace_event_raw_sys_exit *ctx) {
  return ks_data_exit(ctx->id, ctx->ret);
}

/* ---- connection lifecycle -------------------------------------------------------- */

SEC("tracepoint/syscalls/sys_exit_connect")
int ks_ex_connect(struct trace_event_raw_sys_exit *ctx) {
  __u64 id = bpf_get_current_pid_tgid();
  struct ks_stash *sp = bpf_map_lookup_elem(&ks_stash, &id);
  if (!sp) return 0;
  __s32 fd = sp->fd;
  bpf_map_delete_elem(&ks_stash, &id);
  /* A non-blocking connect returns -EINPROGRESS with the local port already bound. */
  if (ctx->ret != 0 && ctx->ret != -KS_EINPROGRESS) return 0;
  ks_track(id >> 32, fd, ks_fd_file(fd), KSPAN_ROLE_CLIENT, 0, KSPAN_SYS_CONNECT);
  return 0;
}

static __always_inline int ks_accept_exit(long ret) {
  __u64 id = bpf_get_current_pid_tgid();
  struct ks_stash *sp = bpf_map_lookup_elem(&ks_stash, &id);
  if (!sp) return 0;
  __u8 syscall = sp->syscall;
  __s32 listen_fd = sp->fd;
  bpf_map_delete_elem(&ks_stash, &id);
  if (ret < 0) return 0;
  __s32 fd = (__s32)ret;
  /* The listener's queue after this accept took its connection: the saturation of the
   * server (docs/metrics.md, "Saturation"). */
  ks_track_listened(id >> 32, fd, ks_fd_file(fd), KSPAN_ROLE_SERVER, 0, syscall,
                    ks_tcp_sock(ks_fd_file(listen_fd)));
  return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept")
int ks_ex_accept(struct trace_event_raw_sys_exit *ctx) {
  return ks_accept_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int ks_ex_accept4(struct trace_event_raw_sys_exit *ctx) {
  return ks_accept_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_close")
int ks_en_close(struct trace_event_raw_sys_enter *ctx) {
  __u64 id = bpf_get_current_pid_tgid();
  __u32 tgid = id >> 32;
  if (!ks_wanted(tgid)) return 0;
  struct ks_fd_key key = {.tgid = tgid, .fd = (__s32)ctx->args[0]};
  struct ks_conn *c = bpf_map_lookup_elem(&ks_conns, &key);
  if (!c) return 0;
  if (c->kind != KS_FD_OTHER) ks_emit_close(tgid, key.fd, c);
  bpf_map_delete_elem(&ks_conns, &key);
  return 0;
}

/* listen(fd, backlog) of a process skipped until it listens (kspan/bpf/maps.h): it is
 * traced from here on, and its port reported, so user space decides it again with the
 * port and skips it anew if no rule selects it there. A server a port rule selects is thus
 * traced from its first connection, however late user space reads the event; one it does
 * not costs its connections of those few milliseconds, dropped in user space (counted).
 * A bound TCP socket only (a listen() that binds an ephemeral port itself is left to user
 * space's periodic look). */
SEC("tracepoint/syscalls/sys_enter_listen")
int ks_en_listen(struct trace_event_raw_sys_enter *ctx) {
  if (ks_select_mode != KSPAN_SELECT_RULES) return 0;
  __u64 id = bpf_get_current_pid_tgid();
  __u32 tgid = id >> 32;
  __u8 *v = bpf_map_lookup_elem(&ks_select, &tgid);
  if (!v || *v != KSPAN_SELECTED_SKIP_UNTIL_LISTEN) return 0;
  __s32 fd = (__s32)ctx->args[0];
  struct sock *sk = ks_tcp_sock(ks_fd_file(fd));
  if (!sk) return 0;
  __u16 port = BPF_CORE_READ(sk, __sk_common.skc_num);
  if (port == 0) return 0;
  __u8 trace = KSPAN_SELECTED_TRACE;
  bpf_map_update_elem(&ks_select, &tgid, &trace, BPF_EXIST);
  struct kspan_listen_event *e = bpf_ringbuf_reserve(&ks_events, sizeof(*e), 0);
  if (!e) {
    ks_count(KSPAN_CNT_RB_FULL_PROC);
    return 0;
  }
  ks_fill_header(&e->hdr, KSPAN_EV_LISTEN, id);
  e->fd = fd;
  e->family = BPF_CORE_READ(sk, __sk_common.skc_family);
  e->port = port;
  bpf_ringbuf_submit(e, ks_rb_flags());
  ks_count(KSPAN_CNT_EVENTS);
  return 0;
}
