/* The opt-in HTTP-header carrier (bpf/hdr_carrier.bpf.c, userspace/carrier/http_header_carrier.*):
 * a W3C `traceparent` line written into outgoing plaintext HTTP/1 requests by an sk_msg
 * program, for servers that have no kspan. Plain C, fixed-width fields, explicit padding.
 *
 * Why opt-in and what it costs the sockets it touches: docs/tracing.md "Context across
 * hosts" ("The HTTP-header carrier"). In short: a client socket sits in a sockhash (its
 * send, receive and ioctl go through the kernel's tcp_bpf code) from its connect until its
 * first bytes are not a plaintext HTTP/1 request, or something in them is not understood;
 * then the socket leaves the map at its next outgoing segment and is plain TCP again. */
#ifndef KSPAN_BPF_HDR_CARRIER_H
#define KSPAN_BPF_HDR_CARRIER_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define KSPAN_HDR_MAX_CONNS 65536   /* ks_hdr_conns and the sockhash */
#define KSPAN_HDR_MAX_THREADS 16384 /* ks_hdr_threads, ks_hdr_io */
#define KSPAN_HDR_SCAN 1024         /* bytes of a request head examined (a power of two) */
#define KSPAN_HDR_LINE 70           /* "traceparent: 00-<32>-<16>-<2>\r\n" */

/* kspan_hdr_conn.state */
#define KSPAN_HDR_HEAD 1    /* a client: the next byte sent starts a request head */
#define KSPAN_HDR_BODY 2    /* a client: body_left bytes of a request body come next */
#define KSPAN_HDR_STOP 3    /* a client: never again (not HTTP/1, not understood, upgraded) */
#define KSPAN_HDR_SERVER 4  /* this end accepted: its reads are looked at for a traceparent */
#define KSPAN_HDR_REMOVED 5 /* STOP, and the socket has left the sockhash */

/* Per socket (sk_storage of a client, ks_hdr_servers by cookie for a server). */
struct kspan_hdr_conn {
  __u64 cookie;    /* the socket's cookie (the sockhash key) */
  __u64 body_left; /* BODY: request body bytes still to send */
  __u64 sent;      /* bytes the application sent so far (stream offset of the next) */
  __u32 state;
  __u32 requests; /* request heads seen (written or not) */
};

/* The context a thread is serving: from a valid `traceparent` in the request its last
 * request-starting read returned (server side). */
struct kspan_hdr_thread {
  __u8 trace_id[16];
  __u8 span_id[8]; /* the caller's span (the parent): for tests and diagnostics */
  __u8 flags;
  __u8 _pad[7];
};

/* ks_hdr_counters indexes (per-CPU array). Renumbering is a breaking change. */
enum kspan_hdr_counter {
  KSPAN_HDR_WRITTEN = 0,          /* a traceparent line inserted */
  KSPAN_HDR_SKIP_NOT_HTTP = 1,    /* a connection's first bytes are not an HTTP/1 request */
  KSPAN_HDR_SKIP_TLS = 2,         /* ... they are a TLS record */
  KSPAN_HDR_SKIP_HTTP2 = 3,       /* ... they are the HTTP/2 connection preface */
  KSPAN_HDR_SKIP_HAS_TP = 4,      /* the request already has a traceparent: left alone */
  KSPAN_HDR_SKIP_CONNECT = 5,     /* CONNECT: a tunnel follows, the connection is left */
  KSPAN_HDR_SKIP_UPGRADE = 6,     /* the request asks for Upgrade: written, then left */
  KSPAN_HDR_SKIP_SPLIT_HEAD = 7,  /* the head does not end within the first write/scan */
  KSPAN_HDR_SKIP_PIPELINED = 8,   /* more bytes follow the request in the same write */
  KSPAN_HDR_SKIP_FRAMING = 9,     /* chunked, bad or several Content-Length: left after it */
  KSPAN_HDR_SKIP_MID_STREAM = 10, /* a write mixes a body's end with what follows */
  KSPAN_HDR_PUSH_FAILED = 11,     /* bpf_msg_push_data or its pull failed: nothing changed */
  KSPAN_HDR_REMOVED_COUNT = 12,   /* sockets taken out of the sockhash (back to plain TCP) */
  KSPAN_HDR_IN_VALID = 13,        /* a served request's valid traceparent */
  KSPAN_HDR_IN_INVALID = 14,      /* a served request's traceparent that failed W3C rules */
  KSPAN_HDR_EVENT_LOST = 15,      /* a report that found the ring buffer full */
  KSPAN_HDR_COUNTERS = 16,
};

#endif
