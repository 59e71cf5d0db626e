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
#define KSPAN_HDR_SCAN 2048         /* bytes of a request head examined (a power of two) */
#define KSPAN_HDR_LINE 70           /* "traceparent: 00-<32>-<16>-<2>\r\n" */
/* tracestate (W3C Trace Context, "tracestate Header Field Values" and "tracestate Limits"):
 * the combined list a served request came with, kept per thread and written after the
 * traceparent line as "tracestate: <list>\r\n". */
#define KSPAN_HDR_TS_MAX 512      /* bytes of a combined list propagated (the spec's minimum) */
#define KSPAN_HDR_TS_MEMBERS 32   /* list members at most; more: the list is invalid, dropped */
#define KSPAN_HDR_TS_LONG 128     /* members longer than this are removed first when truncating */
#define KSPAN_HDR_TS_THREADS 4096 /* threads holding a list at once (ks_hdr_tstate, LRU) */
#define KSPAN_HDR_TS_PREFIX 12    /* "tracestate: " */

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
  __u8 _pad;
  __u16 ts_len; /* the tracestate list it came with (bytes, 0: none), in ks_hdr_tstate */
  __u32 ts_tag; /* ks_hdr_tstate's entry belongs to this context when its tag is the same */
};

/* The tracestate of the request a thread serves (ks_hdr_tstate, by pid_tgid): validated,
 * members joined by single commas without OWS, at most KSPAN_HDR_TS_MAX bytes. */
struct kspan_hdr_tstate {
  __u32 tag;
  __u16 len;
  __u16 _pad;
  __u8 v[KSPAN_HDR_TS_MAX];
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
  KSPAN_HDR_TS_WRITTEN = 16,      /* a tracestate line written after the traceparent line */
  KSPAN_HDR_TS_APP_HAS = 17,      /* the thread had a tracestate, the request its own: not added */
  KSPAN_HDR_TS_LOST = 18,         /* the thread's tracestate was evicted (ks_hdr_tstate full) */
  KSPAN_HDR_TS_IN_VALID = 19,     /* a served request's tracestate, kept whole */
  KSPAN_HDR_TS_IN_TRUNCATED = 20, /* ... kept after removing whole members to fit */
  KSPAN_HDR_TS_IN_INVALID = 21,   /* ... not W3C list grammar: dropped whole */
  KSPAN_HDR_TS_IN_TOO_MANY = 22,  /* ... more than 32 members: dropped whole */
  KSPAN_HDR_TS_IN_NO_TP = 23,     /* ... without a valid traceparent: discarded (spec) */
  KSPAN_HDR_COUNTERS = 24,
};

#endif
