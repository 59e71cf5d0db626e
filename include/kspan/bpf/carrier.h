/* The trace-context carrier's wire format and the state it shares with user space
 * (bpf/carrier.bpf.c, userspace/carrier/). Plain C, fixed-width fields, explicit padding.
 *
 * The carrier is a TCP header option (RFC 6994 shared experimental kind 254, 16-bit ExID),
 * written by a sockops program on the first data segment sent after a context was set for
 * the connection, and parsed by the same program on the receiving host. It never touches a
 * payload byte, so TLS, HTTP/2, WebSocket, tunnels and database protocols pass unchanged.
 *
 *   byte  0      1      2..3          4..19            20..27
 *       +------+------+-------------+----------------+------------+
 *       | 254  |  28  | ExID 0x6B73 | trace-id (16)  | span-id (8)|
 *       +------+------+-------------+----------------+------------+
 *
 * Why 28 bytes and no flags: TCP has 40 bytes of options; Linux puts timestamps on every
 * segment (NOP NOP TS = 12 bytes), which leaves exactly 28. The W3C sampled flag is not
 * carried: kspan's head samplers decide consistently from the trace id (docs/sampling.md),
 * so the serving host reaches the same decision. A segment that also needs SACK blocks has
 * no room: the option is then not written and that is counted (KSPAN_CAR_NOSPC). */
#ifndef KSPAN_BPF_CARRIER_H
#define KSPAN_BPF_CARRIER_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define KSPAN_CAR_KIND 254
#define KSPAN_CAR_LEN 28
#define KSPAN_CAR_EXID_HI 0x6B /* 'k' */
#define KSPAN_CAR_EXID_LO 0x73 /* 's' */

/* kspan_car_conn.out_state: the sending side. */
#define KSPAN_CAR_IDLE 0    /* nothing to carry */
#define KSPAN_CAR_PENDING 1 /* carry `out` on the next data segment */

/* kspan_car_conn.role */
#define KSPAN_CAR_ACTIVE 1  /* this end connected (a client) */
#define KSPAN_CAR_PASSIVE 2 /* this end accepted (a server) */

#define KSPAN_CAR_MAX_CONNS 65536   /* ks_car_conns: 65,536 x (8 + 88) B = 6 MiB at most */
#define KSPAN_CAR_MAX_THREADS 16384 /* ks_car_threads (16,384 x (8 + 56 + ~64) B ~= 2 MiB), ks_car_reads */

struct kspan_car_ctx {
  __u8 trace_id[16];
  __u8 span_id[8];
};

/* One per TCP connection established under the carrier (ks_car_conns, LRU hash keyed by
 * the socket cookie, which the kernel never reuses). Kept after the socket closes, until
 * the LRU evicts it: the serving host's agent reads it after the fact. Stream offsets are byte positions
 * from the connection's first payload byte in that direction: seq - snd_base / rcv_base. */
struct kspan_car_conn {
  struct kspan_car_ctx out; /* to carry on the next data segment (out_state PENDING) */
  struct kspan_car_ctx in;  /* the last valid context received */
  __u32 snd_base;           /* sequence number of the first payload byte sent */
  __u32 rcv_base;           /* ... and received */
  __u32 out_seq;            /* sequence number of the segment that carried `out` */
  __u32 in_seq;             /* sequence number of the segment that carried `in` */
  __u32 rcv_mark;           /* rcv_nxt when `out` was set: a new request needs an answer between */
  __u32 in_count;           /* valid contexts received */
  __u32 out_count;          /* contexts set for sending */
  __u8 out_state;
  __u8 role;
  __u8 answered; /* a server end: it sent since its last read (the next read starts a request) */
  __u8 tls;      /* a server end whose first bytes read were a TLS handshake record */
};

/* kspan_car_event.kind */
#define KSPAN_CAR_EV_SENT 1     /* the kernel set `ctx` for a client's request */
#define KSPAN_CAR_EV_RECEIVED 2 /* a valid `ctx` arrived for a request */
#define KSPAN_CAR_EV_READ 3     /* a server's read started at the first byte that carried `ctx` */
#define KSPAN_CAR_EV_FRESH                                      \
  4 /* a server's read started a request that carried none: the \
     * kernel chose `ctx.trace_id` (span id zero) for its calls */

/* One report on the ring buffer ks_car_events, in order per CPU.
 *   SENT: the CLIENT span of the request starting at `offset` on (tgid, fd) is to use
 *         these ids (the agent's client side).
 *   RECEIVED: the request starting at `offset` on the connection `cookie` came with this
 *         context (the serving side; tgid 0 and fd -1: it arrives in softirq, before any
 *         process reads it). Every one is reported, so a reader that comes late still has
 *         each request's context, not only the last.
 *   READ: thread `tid` of (tgid, fd), a server end, returned from a read whose first byte
 *         is the first byte of the segment that carried `ctx` (offset as RECEIVED). The
 *         agent's capture saw the same syscall (same thread, same fd, its exit at about
 *         `ts_ns`): the request that read starts is the one the context came with.
 *   FRESH: as READ, for a plaintext request that came with no context (a caller without
 *         kspan): the kernel chose a random trace id for it (`ctx.span_id` zero), which
 *         every call the thread makes while serving it carries, and the agent gives the
 *         request's SERVER span, the root of its trace, the same one.
 * `tid` and `ts_ns` (CLOCK_BOOTTIME ns: SENT at the send's entry, READ at the read's exit,
 * RECEIVED in softirq) tie a report to the capture's event of the same syscall. */
struct kspan_car_event {
  __u32 kind;
  __u32 tgid;
  __s32 fd;
  __u32 tid;
  __u64 cookie;
  __u64 offset; /* stream offset of the request's first byte */
  struct kspan_car_ctx ctx;
  __u64 ts_ns;
};

/* ks_car_counters indexes (per-CPU array). Renumbering is a breaking change. */
enum kspan_car_counter {
  KSPAN_CAR_WRITTEN = 0,    /* option written on a data segment */
  KSPAN_CAR_REWRITTEN = 1,  /* reserved: a retransmitted segment does not carry it again */
  KSPAN_CAR_NOSPC = 2,      /* no room left in the header (e.g. SACK blocks) */
  KSPAN_CAR_PARSED = 3,     /* a valid kspan option received */
  KSPAN_CAR_MALFORMED = 4,  /* an option with our ExID but a wrong length or an all-zero id */
  KSPAN_CAR_TOO_BIG = 5,    /* first segment already a full MSS: no room without exceeding it */
  KSPAN_CAR_SET = 6,        /* contexts set in the kernel for a client's outgoing request */
  KSPAN_CAR_EVENT_LOST = 7, /* a report (sent or received) that found the ring buffer full */
  KSPAN_CAR_UNPLACED = 8,   /* a context's first byte came in the middle of a server's read:
                             * which request it belongs to is not known, so none takes it */
  KSPAN_CAR_COUNTERS = 9,
};

#endif
