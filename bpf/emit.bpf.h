/* Layer 2, emit: every record kspan puts on the ring buffer (ks_events), in the layouts
 * of kspan/bpf/events.h, each with the common header (kspan_event_header).
 *
 * Contract: a record is whole or not sent at all; a failed reserve or output is counted
 * (KSPAN_CNT_RB_FULL_*) where it happens, and every record sent counts KSPAN_CNT_EVENTS.
 * Consumers are never woken per record (ks_rb_flags). Payload bytes go through the
 * per-CPU scratch slot (ks_scratch_slot): a copy that fails counts
 * KSPAN_CNT_COPY_FAILED and sends no bytes, never garbage. These helpers change no
 * tracking state (conn.bpf.h decides what to emit). */
#ifndef KSPAN_EMIT_BPF_H
#define KSPAN_EMIT_BPF_H

#include "base.bpf.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

/* Never wake the consumer per event (it costs ~5 us per syscall here): user space drains
 * on a short timer, and is woken only when the ring fills past ks_wakeup_bytes. */
static __always_inline __u64 ks_rb_flags(void) {
  __u64 avail = bpf_ringbuf_query(&ks_events, BPF_RB_AVAIL_DATA);
  return avail >= ks_wakeup_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
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
  e->enter_ns = m->enter_ns ? m->enter_ns : e->hdr.ts_ns; /* 0: a read, timed at its exit */
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

static __always_inline struct ks_scratch *ks_scratch_slot(void) {
  __u32 cpu = bpf_get_smp_processor_id();
  return bpf_map_lookup_elem(&ks_scratch, &cpu);
}

static __always_inline __u16 ks_cap16(__u32 v) {
  return v > 65535 ? 65535 : (__u16)v;
}

/* Emits a connection-open event for sk. `listener` (accept only, else NULL): the listening
 * socket, whose accept queue the event carries (KSPAN_CONN_F_BACKLOG). */
static __always_inline void ks_emit_open(struct sock *sk, struct sock *listener, __u32 tgid, __s32 fd,
                                         __u64 gen, __u8 role, __u8 flags, __u8 syscall) {
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
  e->listen_queue = 0;
  e->listen_queue_max = 0;
  if (listener) {
    e->flags |= KSPAN_CONN_F_BACKLOG;
    e->listen_queue = ks_cap16(BPF_CORE_READ(listener, sk_ack_backlog));
    e->listen_queue_max = ks_cap16(BPF_CORE_READ(listener, sk_max_ack_backlog));
  }
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
  e->listen_queue = 0;
  e->listen_queue_max = 0;
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

#endif /* KSPAN_EMIT_BPF_H */
