/* The trace-context carrier's wire format and the state it shares with user space
 * (bpf/carrier.bpf.c, userspace/carrier/). Plain C, fixed-width fields, explicit padding.
 *
 * The carrier is a TCP header option (RFC 6994 shared experimental kind 254, 16-bit ExID),
 * written by a sockops program on the first data segment sent after a context was set for
 * the socket, and parsed by the same program on the receiving host. It never touches a
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

/* kspan_car_out.state: the sending side's per-socket state. */
#define KSPAN_CAR_IDLE 0    /* nothing to carry */
#define KSPAN_CAR_PENDING 1 /* carry `ctx` on the next data segment */
#define KSPAN_CAR_SENT 2    /* written on the segment starting at `seq` (again if it is retransmitted) */

struct kspan_car_ctx {
  __u8 trace_id[16];
  __u8 span_id[8];
};

/* Sending side, one per socket (BPF_MAP_TYPE_SK_STORAGE ks_car_out). */
struct kspan_car_out {
  struct kspan_car_ctx ctx;
  __u32 seq; /* first sequence number of the segment that carried ctx (state SENT) */
  __u8 state;
  __u8 _pad[3];
};

/* Receiving side, one per socket (ks_car_in): the last valid context received and the
 * sequence number of the first payload byte of the segment that carried it, so a reader
 * can tell which request it belongs to. */
struct kspan_car_in {
  struct kspan_car_ctx ctx;
  __u32 seq;
  __u32 count; /* valid contexts received on this socket */
};

/* ks_car_counters indexes (per-CPU array). Renumbering is a breaking change. */
enum kspan_car_counter {
  KSPAN_CAR_WRITTEN = 0,   /* option written on a data segment */
  KSPAN_CAR_REWRITTEN = 1, /* written again on a retransmission of that segment */
  KSPAN_CAR_NOSPC = 2,     /* no room left in the header (e.g. SACK blocks) */
  KSPAN_CAR_PARSED = 3,    /* a valid kspan option received */
  KSPAN_CAR_MALFORMED = 4, /* an option with our ExID but a wrong length or an all-zero id */
  KSPAN_CAR_TOO_BIG = 5,   /* first segment already a full MSS: no room without exceeding it */
  KSPAN_CAR_COUNTERS = 6,
};

#endif
