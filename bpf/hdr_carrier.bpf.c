/* The opt-in HTTP-header carrier: a W3C `traceparent` line written into outgoing plaintext
 * HTTP/1 requests (why opt-in, what it costs: docs/tracing.md "Context across hosts"; shared
 * layout: include/kspan/bpf/hdr_carrier.h). Its own skeleton (kspan_hdr_carrier), apart from
 * the capture and the TCP-option carrier.
 *
 *   sockops (cgroup): a client connection established in scope gets per-socket state HEAD
 *     and joins the sockhash (so its sends run the sk_msg program); a server connection is
 *     remembered by cookie (its reads are looked at for an incoming traceparent). On each
 *     outgoing segment of a client in state STOP the socket leaves the sockhash: it is plain
 *     TCP again (send, receive, FIONREAD) for the rest of its life.
 *   sk_msg: per send, a small state machine per connection. HEAD: the bytes must start with
 *     a whole, understood request head (request line `METHOD SP target SP HTTP/1.x CRLF`,
 *     header lines, blank line) within the send and the first KSPAN_HDR_SCAN bytes; then
 *     `traceparent: 00-<trace>-<span>-<flags>\r\n` goes right after the request line unless
 *     the request has one (and after it `tracestate: <list>\r\n` when the request the thread
 *     serves came with a list and this request has none); Content-Length says how many body bytes follow
 * (BODY), and the next request must start exactly where the body ends. Anything else (TLS, the HTTP/2
 *     preface, CONNECT, Upgrade, chunked or unclear framing, a head split across sends,
 *     a send that holds more than one request or a body's end and more) sets STOP: that
 *     request and everything after it pass untouched. The verdict is always SK_PASS.
 *   tracepoints: the entry of write/writev/sendto/sendmsg/sendfile remembers the thread's
 *     fd (the sk_msg program cannot see it; the agent joins by process, fd and thread); the
 *     exit of read/recvfrom on a server connection whose bytes start a request parses its
 *     traceparent (W3C rules) into the thread's "serving" context, or clears it; with a valid
 *     traceparent its tracestate fields too, checked by the list grammar in the same pass
 *     over the head, combined, cut to KSPAN_HDR_TS_MAX bytes by whole members or dropped. */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "kspan/bpf/carrier.h"
#include "kspan/bpf/hdr_carrier.h"

_Static_assert((KSPAN_HDR_SCAN & (KSPAN_HDR_SCAN - 1)) == 0, "a power of two");

/* 0: every network namespace; else only sockets whose netns cookie matches. */
const volatile __u64 ks_hdr_netns = 0;
/* The agent's own process: its requests are never written into. */
const volatile __u32 ks_hdr_self_tgid = 0;
/* 1 when the TCP-option carrier runs too: it needs the header-option callbacks, so this
 * carrier never turns them off. */
const volatile __u32 ks_hdr_keep_opt_cb = 0;

struct {
  __uint(type, BPF_MAP_TYPE_SOCKHASH);
  __uint(max_entries, KSPAN_HDR_MAX_CONNS);
  __type(key, __u64); /* socket cookie */
  __type(value, __u64);
} ks_hdr_socks SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_SK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, struct kspan_hdr_conn);
} ks_hdr_store SEC(".maps");

/* Server connections in scope, by cookie (value unused). */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, KSPAN_HDR_MAX_CONNS);
  __type(key, __u64);
  __type(value, __u8);
} ks_hdr_servers SEC(".maps");

/* The context of the request each thread is serving (pid_tgid). */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, KSPAN_HDR_MAX_THREADS);
  __type(key, __u64);
  __type(value, struct kspan_hdr_thread);
} ks_hdr_threads SEC(".maps");

/* The tracestate of the request each thread is serving (pid_tgid), when it came with one;
 * it belongs to the thread's ks_hdr_threads entry whose ts_tag it carries. A thread whose
 * entry was evicted sends the traceparent alone (counted KSPAN_HDR_TS_LOST). */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, KSPAN_HDR_TS_THREADS);
  __type(key, __u64);
  __type(value, struct kspan_hdr_tstate);
} ks_hdr_tstate SEC(".maps");

/* A thread's syscall in flight: the fd of a send, or the fd and buffer of a read. */
struct ks_hdr_io {
  __u64 buf;
  __u64 ts_ns; /* the syscall's entry (CLOCK_BOOTTIME): what the capture times a send by */
  __s32 fd;
  __u32 _pad;
};
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, KSPAN_HDR_MAX_THREADS);
  __type(key, __u64);
  __type(value, struct ks_hdr_io);
} ks_hdr_io SEC(".maps");

/* Reports in the TCP-option carrier's layout (kind KSPAN_CAR_EV_SENT), so the agent's
 * matcher takes them the same way. */
struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 256 * 1024);
} ks_hdr_events SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, KSPAN_HDR_COUNTERS);
  __type(key, __u32);
  __type(value, __u64);
} ks_hdr_counters SEC(".maps");

#define KS_S_IFMT 00170000
#define KS_S_IFSOCK 0140000
#define KS_IPPROTO_TCP 6

static __always_inline void ks_hdr_count(__u32 idx) {
  __u64 *v = bpf_map_lookup_elem(&ks_hdr_counters, &idx);
  if (v) *v += 1;
}

/* ---- The head scanner: one pass over the bytes, the verifier checks it once ---------- */

/* Header names that matter, lowercase; a line's name is compared as it is read. */
#define KS_H_TP 0 /* traceparent */
#define KS_H_CL 1 /* content-length */
#define KS_H_TE 2 /* transfer-encoding */
#define KS_H_UP 3 /* upgrade */
#define KS_H_TS 4 /* tracestate */
#define KS_H_N 5
/* Globals in .rodata (static ones get no BTF offsets from this clang, and the sk_storage
 * map needs the object's BTF). */
const volatile char ks_hdr_names[KS_H_N][20] = {"traceparent", "content-length", "transfer-encoding",
                                                "upgrade", "tracestate"};
const volatile __u8 ks_hdr_name_len[KS_H_N] = {11, 14, 17, 7, 10};

/* Phases of the scan. */
#define KS_P_METHOD 0
#define KS_P_TARGET 1
#define KS_P_VERSION 2
#define KS_P_NAME 3
#define KS_P_VALUE 4
#define KS_P_DONE 5
#define KS_P_BAD 6

struct ks_scan {
  __u32 slot;
  __u32 n; /* bytes in the slot */
  __u32 phase;
  __u32 pos;      /* position in the current token or line */
  __u32 cand;     /* KS_H_* still matching the current name */
  __s32 hdr;      /* the header whose value this is, or -1 */
  __u32 line_end; /* offset just past the request line's LF */
  __u32 head_end; /* offset just past the blank line */
  __u32 method_len;
  __u32 tp_count;
  __u32 tp_start, tp_end; /* the first traceparent value, untrimmed */
  __u32 cl_count;
  __u32 cl_bad;
  __u64 cl;
  __u32 te, up, connect;
  __u8 method0;
  /* tracestate: every field's members, checked byte by byte as the scan passes them */
  __u32 ts_fields; /* tracestate header fields */
  __u32 ts_phase;  /* KS_TS_* */
  __u32 ts_bad;    /* not list grammar: the whole list is dropped */
  __u32 ts_count;  /* non-empty members (only the first KSPAN_HDR_TS_MEMBERS are placed) */
  __u32 ts_klen;   /* the current member's key length */
  __u32 ts_mstart, ts_vstart, ts_mend; /* the current member: key, value, past its last nblk-chr */
  __u32 ts_total;                      /* the placed members' bytes, a comma each */
};

/* Where the tracestate members are in the scanned bytes (b->d). */
struct ks_ts_members {
  __u16 start[KSPAN_HDR_TS_MEMBERS], end[KSPAN_HDR_TS_MEMBERS];
};

/* Building the propagated list from the members (one byte per bpf_loop step). */
struct ks_ts_copy {
  __u64 keep; /* members kept (truncation removes whole members) */
  __u32 k, p, o, comma;
};

struct ks_tp_parse {
  __u32 start;
  __u32 bad;
  struct kspan_hdr_thread out;
};

/* The bytes under examination and the scanners' state; one slot per CPU and per kind of
 * program (a sk_msg program and a tracepoint never share one). The state lives here, not
 * on the stack, so the verifier sees unknown values and checks each bpf_loop callback
 * once instead of following every byte's path. */
struct ks_hdr_buf {
  __u8 d[KSPAN_HDR_SCAN];
  struct ks_scan s;
  struct ks_tp_parse tp;
  struct ks_ts_members m;
  struct ks_ts_copy cp;
  struct kspan_hdr_tstate ts; /* the list being built (read side) */
};
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 2);
  __type(key, __u32);
  __type(value, struct ks_hdr_buf);
} ks_hdr_scratch SEC(".maps");
#define KS_SLOT_MSG 0
#define KS_SLOT_READ 1

const volatile char ks_http1[8] = "HTTP/1.";

static __always_inline __u8 ks_lower(__u8 c) {
  return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

static __always_inline int ks_tchar(__u8 c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return 1;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~': return 1;
  }
  return 0;
}

/* ---- W3C tracestate list grammar, one byte at a time --------------------------------------
 *   list = list-member 0*31( OWS "," OWS list-member ); list-member = (key "=" value) / OWS
 *   key = ( lcalpha / DIGIT ) 0*255 ( lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@" )
 *   value = 0*255(chr) nblk-chr; nblk-chr = %x21-2B / %x2D-3C / %x3E-7E; chr = %x20 / nblk-chr
 * Several fields are one list (RFC 9110 5.3: joined with commas); empty members are skipped;
 * a value's trailing spaces and tabs are OWS, its leading spaces its own. */
#define KS_TS_BEFORE 0 /* OWS before a member (or an empty one) */
#define KS_TS_KEY 1
#define KS_TS_VALUE 2
#define KS_TS_AFTER 3 /* OWS after a value */
#define KS_TS_CR 4    /* the field's CR: only its LF may follow */

static __always_inline int ks_ts_keychar(__u8 c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '*' || c == '/' ||
         c == '@';
}

static __always_inline void ks_ts_end_member(struct ks_scan *s, struct ks_ts_members *m) {
  if (s->ts_mend <= s->ts_vstart || s->ts_mend - s->ts_vstart > 256) {
    s->ts_bad = 1; /* an empty value, or longer than 256 */
    return;
  }
  if (s->ts_count < KSPAN_HDR_TS_MEMBERS) {
    m->start[s->ts_count & (KSPAN_HDR_TS_MEMBERS - 1)] = (__u16)s->ts_mstart;
    m->end[s->ts_count & (KSPAN_HDR_TS_MEMBERS - 1)] = (__u16)s->ts_mend;
    s->ts_total += s->ts_mend - s->ts_mstart + 1;
  }
  s->ts_count++;
}

static __always_inline void ks_ts_byte(struct ks_scan *s, struct ks_ts_members *m, __u8 c, __u32 i) {
  if (s->ts_bad) return;
  switch (s->ts_phase) {
    case KS_TS_BEFORE:
      if (c == ' ' || c == '\t' || c == ',') return;
      if (c == '\r' || c == '\n') {
        s->ts_phase = KS_TS_CR;
      } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
        s->ts_phase = KS_TS_KEY;
        s->ts_mstart = i;
        s->ts_klen = 1;
      } else {
        s->ts_bad = 1;
      }
      return;
    case KS_TS_KEY:
      if (c == '=') {
        s->ts_phase = KS_TS_VALUE;
        s->ts_vstart = i + 1;
        s->ts_mend = i + 1;
      } else if (!ks_ts_keychar(c) || ++s->ts_klen > 256) {
        s->ts_bad = 1;
      }
      return;
    case KS_TS_VALUE:
      if (c == ' ') return; /* the value's, or OWS if nothing but OWS follows */
      if (c > 0x20 && c < 0x7f && c != ',' && c != '=') {
        s->ts_mend = i + 1;
        return;
      }
      if (c == ',' || c == '\t' || c == '\r' || c == '\n') {
        ks_ts_end_member(s, m);
        s->ts_phase = c == ',' ? KS_TS_BEFORE : (c == '\t' ? KS_TS_AFTER : KS_TS_CR);
      } else {
        s->ts_bad = 1;
      }
      return;
    case KS_TS_AFTER:
      if (c == ' ' || c == '\t') return;
      if (c == ',')
        s->ts_phase = KS_TS_BEFORE;
      else if (c == '\r' || c == '\n')
        s->ts_phase = KS_TS_CR;
      else
        s->ts_bad = 1;
      return;
    case KS_TS_CR:
      if (c != '\n') s->ts_bad = 1;
      return;
  }
}

static long ks_scan_step(__u32 i, void *arg) {
  __u32 slot = *(__u32 *)arg;
  struct ks_hdr_buf *b = bpf_map_lookup_elem(&ks_hdr_scratch, &slot);
  if (!b) return 1;
  struct ks_scan *s = &b->s;
  if (i >= s->n) return 1;
  const __u8 c = b->d[i & (KSPAN_HDR_SCAN - 1)];
  switch (s->phase) {
    case KS_P_METHOD:
      if (c == ' ' && s->pos > 0) {
        s->method_len = s->pos;
        s->phase = KS_P_TARGET;
        s->pos = 0;
      } else if (c >= 'A' && c <= 'Z' && s->pos < 20) {
        if (s->pos == 0) s->method0 = c;
        s->pos++;
      } else {
        s->phase = KS_P_BAD;
        return 1;
      }
      return 0;
    case KS_P_TARGET:
      if (c == ' ' && s->pos > 0) {
        s->phase = KS_P_VERSION;
        s->pos = 0;
      } else if (c > ' ' && c < 0x7f) {
        s->pos++;
      } else {
        s->phase = KS_P_BAD;
        return 1;
      }
      return 0;
    case KS_P_VERSION: {
      const __u32 p = s->pos;
      int ok;
      if (p < 7)
        ok = c == (__u8)ks_http1[p & 7];
      else if (p == 7)
        ok = c == '0' || c == '1';
      else if (p == 8)
        ok = c == '\r';
      else
        ok = c == '\n';
      if (!ok) {
        s->phase = KS_P_BAD;
        return 1;
      }
      if (p == 9) {
        s->line_end = i + 1;
        s->phase = KS_P_NAME;
        s->pos = 0;
        s->cand = (1u << KS_H_N) - 1;
      } else {
        s->pos++;
      }
      return 0;
    }
    case KS_P_NAME:
      if (s->pos == 0 && c == '\r') {
        s->pos = 0xffff; /* the blank line's CR */
        return 0;
      }
      if (s->pos == 0xffff) {
        if (c != '\n') {
          s->phase = KS_P_BAD;
          return 1;
        }
        s->head_end = i + 1;
        s->phase = KS_P_DONE;
        return 1;
      }
      if (c == ':' && s->pos > 0) {
        s->hdr = -1;
#pragma unroll
        for (int h = 0; h < KS_H_N; h++)
          if ((s->cand & (1u << h)) && s->pos == ks_hdr_name_len[h]) s->hdr = h;
        if (s->hdr == KS_H_TP) {
          s->tp_count++;
          if (s->tp_count == 1) s->tp_start = i + 1;
        } else if (s->hdr == KS_H_CL) {
          s->cl_count++;
          s->cl = 0;
        } else if (s->hdr == KS_H_TE) {
          s->te = 1;
        } else if (s->hdr == KS_H_UP) {
          s->up = 1;
        } else if (s->hdr == KS_H_TS) {
          s->ts_fields++;
          s->ts_phase = KS_TS_BEFORE;
        }
        s->phase = KS_P_VALUE;
        s->pos = 0;
        return 0;
      }
      if (!ks_tchar(c)) { /* no colon, obs-fold, a bare LF: not understood */
        s->phase = KS_P_BAD;
        return 1;
      }
      {
        const __u8 lc = ks_lower(c);
        const __u32 p = s->pos;
#pragma unroll
        for (int h = 0; h < KS_H_N; h++)
          if (p >= 19 || lc != (__u8)ks_hdr_names[h][p < 19 ? p : 19]) s->cand &= ~(1u << h);
      }
      if (s->pos < 0xfff0) s->pos++;
      return 0;
    case KS_P_VALUE:
      if (s->hdr == KS_H_TS) ks_ts_byte(s, &b->m, c, i);
      if (c == '\n') {
        if (s->hdr == KS_H_TP && s->tp_count == 1) s->tp_end = i; /* CR, if any, trimmed later */
        s->phase = KS_P_NAME;
        s->pos = 0;
        s->cand = (1u << KS_H_N) - 1;
        return 0;
      }
      if (s->hdr == KS_H_CL && c != '\r' && c != ' ' && c != '\t') {
        if (c >= '0' && c <= '9' && s->cl < (1ull << 40))
          s->cl = s->cl * 10 + (c - '0');
        else
          s->cl_bad = 1;
      }
      return 0;
  }
  return 1;
}

/* Scans the n bytes of b (slot `slot`); the result is b->s. */
static __always_inline void ks_scan_head(struct ks_hdr_buf *b, __u32 slot, __u32 n) {
  __builtin_memset(&b->s, 0, sizeof(b->s));
  b->s.slot = slot;
  b->s.n = n;
  b->s.hdr = -1;
  bpf_loop(KSPAN_HDR_SCAN, ks_scan_step, &slot, 0);
}

/* ---- W3C traceparent (Level 2 rules, docs/tracing.md "Parent rules") ------------------ */

static __always_inline int ks_hexval(__u8 c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1; /* uppercase is invalid */
}

/* One of the 55 characters of the value at offset start + i. */
static long ks_tp_step(__u32 i, void *arg) {
  __u32 slot = *(__u32 *)arg;
  struct ks_hdr_buf *b = bpf_map_lookup_elem(&ks_hdr_scratch, &slot);
  if (!b) return 1;
  struct ks_tp_parse *p = &b->tp;
  const __u8 c = b->d[(p->start + i) & (KSPAN_HDR_SCAN - 1)];
  if (i == 2 || i == 35 || i == 52) {
    if (c == '-') return 0;
    p->bad = 1;
    return 1;
  }
  const int v = ks_hexval(c);
  if (v < 0) {
    p->bad = 1;
    return 1;
  }
  if (i < 2) {
    /* version: checked by the caller */
  } else if (i < 35) {
    const __u32 k = ((i - 3) >> 1) & 15;
    p->out.trace_id[k] = (p->out.trace_id[k] << 4) | v;
  } else if (i < 52) {
    const __u32 k = ((i - 36) >> 1) & 7;
    p->out.span_id[k] = (p->out.span_id[k] << 4) | v;
  } else {
    p->out.flags = (p->out.flags << 4) | v;
  }
  return 0;
}

static __always_inline __u8 ks_at(const struct ks_hdr_buf *b, __u32 i) {
  return b->d[i & (KSPAN_HDR_SCAN - 1)];
}

/* 1 and *out when the scan found exactly one valid traceparent; 0 when none; -1 invalid. */
static __always_inline int ks_tp_from_scan(struct ks_hdr_buf *b, __u32 slot, struct kspan_hdr_thread *out) {
  const struct ks_scan *s = &b->s;
  if (s->tp_count == 0) return 0;
  if (s->tp_count != 1 || s->tp_end <= s->tp_start) return -1;
  __u32 a = s->tp_start, e = s->tp_end;
  /* trim the CR and OWS: at most a few on either side are looked at */
#pragma unroll
  for (int k = 0; k < 8; k++)
    if (e > a && (ks_at(b, e - 1) == '\r' || ks_at(b, e - 1) == ' ' || ks_at(b, e - 1) == '\t')) e--;
#pragma unroll
  for (int k = 0; k < 8; k++)
    if (a < e && (ks_at(b, a) == ' ' || ks_at(b, a) == '\t')) a++;
  const __u32 len = e - a;
  if (len < 55) return -1;
  const __u8 v0 = ks_at(b, a), v1 = ks_at(b, a + 1);
  if (ks_hexval(v0) < 0 || ks_hexval(v1) < 0) return -1;
  if (v0 == 'f' && v1 == 'f') return -1; /* version ff is invalid */
  const int v00 = v0 == '0' && v1 == '0';
  if (v00 && len != 55) return -1;
  if (!v00 && len > 55 && ks_at(b, a + 55) != '-') return -1; /* a future version's extra fields */
  __builtin_memset(&b->tp, 0, sizeof(b->tp));
  b->tp.start = a;
  bpf_loop(55, ks_tp_step, &slot, 0);
  if (b->tp.bad) return -1;
  __u64 t0 = 0, t1 = 0, sp = 0;
  __builtin_memcpy(&t0, b->tp.out.trace_id, 8);
  __builtin_memcpy(&t1, b->tp.out.trace_id + 8, 8);
  __builtin_memcpy(&sp, b->tp.out.span_id, 8);
  if ((t0 | t1) == 0 || sp == 0) return -1;
  *out = b->tp.out;
  return 1;
}

/* ---- W3C tracestate: the list a served request came with -------------------------------- */

/* One byte of the propagated list (b->ts.v), or a step between members. */
static long ks_ts_copy_step(__u32 i, void *arg) {
  __u32 slot = *(__u32 *)arg;
  struct ks_hdr_buf *b = bpf_map_lookup_elem(&ks_hdr_scratch, &slot);
  if (!b) return 1;
  struct ks_ts_copy *cp = &b->cp;
  const __u32 k = cp->k;
  if (k >= b->s.ts_count || k >= KSPAN_HDR_TS_MEMBERS) return 1;
  if (!((cp->keep >> k) & 1)) {
    cp->k = k + 1;
    return 0;
  }
  if (cp->p == 0 && cp->o > 0 && !cp->comma) {
    if (cp->o >= KSPAN_HDR_TS_MAX) return 1;
    b->ts.v[cp->o & (KSPAN_HDR_TS_MAX - 1)] = ',';
    cp->o++;
    cp->comma = 1;
    return 0;
  }
  const __u32 start = b->m.start[k & (KSPAN_HDR_TS_MEMBERS - 1)];
  const __u32 len = b->m.end[k & (KSPAN_HDR_TS_MEMBERS - 1)] - start;
  if (cp->p >= len) {
    cp->k = k + 1;
    cp->p = 0;
    cp->comma = 0;
    return 0;
  }
  if (cp->o >= KSPAN_HDR_TS_MAX) return 1;
  b->ts.v[cp->o & (KSPAN_HDR_TS_MAX - 1)] = b->d[(start + cp->p) & (KSPAN_HDR_SCAN - 1)];
  cp->o++;
  cp->p++;
  return 0;
}

/* Truncation, one member per step from the end (i = 0 is the last member): the first pass
 * (cp.p == 0) removes members longer than KSPAN_HDR_TS_LONG, the second any, while the list
 * is longer than KSPAN_HDR_TS_MAX (cp.o: its length plus one, a comma per member). */
static long ks_ts_cut_step(__u32 i, void *arg) {
  __u32 slot = *(__u32 *)arg;
  struct ks_hdr_buf *b = bpf_map_lookup_elem(&ks_hdr_scratch, &slot);
  if (!b) return 1;
  struct ks_ts_copy *cp = &b->cp;
  if (cp->o <= KSPAN_HDR_TS_MAX + 1) return 1;
  const __u32 count = b->s.ts_count < KSPAN_HDR_TS_MEMBERS ? b->s.ts_count : KSPAN_HDR_TS_MEMBERS;
  if (i >= count) return 1;
  const __u32 k = (count - 1 - i) & (KSPAN_HDR_TS_MEMBERS - 1);
  const __u32 len = (__u32)b->m.end[k] - b->m.start[k] + 1;
  if (!((cp->keep >> k) & 1) || (cp->p == 0 && len <= KSPAN_HDR_TS_LONG + 1)) return 0;
  cp->keep &= ~(1ull << k);
  cp->o -= len;
  return 0;
}

/* After a scan that found a valid traceparent: the list its tracestate fields make, in b->ts
 * (len 0: none), and the counter of what became of it (0: there was none). Invalid grammar
 * or more than 32 members drops the whole list (the processing model lets a vendor discard
 * a tracestate it cannot parse); one longer than KSPAN_HDR_TS_MAX bytes loses whole members,
 * those over 128 bytes first, then from the end ("tracestate Limits"). */
static __always_inline __u32 ks_ts_from_scan(struct ks_hdr_buf *b, __u32 slot) {
  const struct ks_scan *s = &b->s;
  b->ts.len = 0;
  if (s->ts_fields == 0) return 0;
  if (s->ts_bad || s->ts_phase == KS_TS_KEY || s->ts_phase == KS_TS_VALUE) return KSPAN_HDR_TS_IN_INVALID;
  if (s->ts_count > KSPAN_HDR_TS_MEMBERS) return KSPAN_HDR_TS_IN_TOO_MANY;
  if (s->ts_count == 0) return 0; /* empty fields only: nothing to carry */
  __u32 outcome = KSPAN_HDR_TS_IN_VALID;
  __builtin_memset(&b->cp, 0, sizeof(b->cp));
  b->cp.keep = s->ts_count >= 64 ? ~0ull : (1ull << s->ts_count) - 1;
  b->cp.o = s->ts_total;
  if (b->cp.o > KSPAN_HDR_TS_MAX + 1) {
    outcome = KSPAN_HDR_TS_IN_TRUNCATED;
    bpf_loop(KSPAN_HDR_TS_MEMBERS, ks_ts_cut_step, &slot, 0); /* the long ones */
    b->cp.p = 1;
    bpf_loop(KSPAN_HDR_TS_MEMBERS, ks_ts_cut_step, &slot, 0); /* then from the end */
  }
  if (b->cp.keep == 0) return outcome;
  b->cp.k = b->cp.p = b->cp.o = b->cp.comma = 0;
  bpf_loop(KSPAN_HDR_TS_MAX + 2 * KSPAN_HDR_TS_MEMBERS, ks_ts_copy_step, &slot, 0);
  b->ts.len = (__u16)b->cp.o;
  return outcome;
}

/* ---- sockops --------------------------------------------------------------------------- */

SEC("sockops")
int ks_hdr_sockops(struct bpf_sock_ops *skops) {
  switch (skops->op) {
    case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB: {
      if (ks_hdr_netns != 0 && bpf_get_netns_cookie(skops) != ks_hdr_netns) return 1;
      struct bpf_sock *sk = skops->sk;
      if (!sk) return 1;
      struct kspan_hdr_conn *c = bpf_sk_storage_get(&ks_hdr_store, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
      if (!c) return 1;
      __u64 cookie = bpf_get_socket_cookie(skops);
      c->cookie = cookie;
      c->state = KSPAN_HDR_HEAD;
      if (bpf_sock_hash_update(skops, &ks_hdr_socks, &cookie, BPF_NOEXIST) != 0) {
        c->state = KSPAN_HDR_REMOVED; /* the map is full: this connection is left alone */
        return 1;
      }
      /* HDR_OPT_LEN_CB on each outgoing segment: where a STOPped socket leaves the map. */
      bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG);
      return 1;
    }
    case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB: {
      if (ks_hdr_netns != 0 && bpf_get_netns_cookie(skops) != ks_hdr_netns) return 1;
      __u64 cookie = bpf_get_socket_cookie(skops);
      __u8 one = 1;
      bpf_map_update_elem(&ks_hdr_servers, &cookie, &one, BPF_ANY);
      return 1;
    }
    case BPF_SOCK_OPS_HDR_OPT_LEN_CB: {
      struct bpf_sock *sk = skops->sk;
      if (!sk) return 1;
      struct kspan_hdr_conn *c = bpf_sk_storage_get(&ks_hdr_store, sk, 0, 0);
      if (!c || c->state != KSPAN_HDR_STOP) return 1;
      __u64 cookie = c->cookie;
      c->state = KSPAN_HDR_REMOVED;
      if (bpf_map_delete_elem(&ks_hdr_socks, &cookie) == 0) ks_hdr_count(KSPAN_HDR_REMOVED_COUNT);
      if (!ks_hdr_keep_opt_cb)
        bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags & ~BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG);
      return 1;
    }
  }
  return 1;
}

/* ---- sk_msg: the writing side ---------------------------------------------------------- */

static __always_inline char ks_hex(__u8 v) {
  v &= 15;
  return v < 10 ? '0' + v : 'a' + v - 10;
}

static __always_inline void ks_stop(struct kspan_hdr_conn *c, __u32 reason) {
  c->state = KSPAN_HDR_STOP;
  ks_hdr_count(reason);
}

/* What a connection's first bytes are, when they are not an HTTP/1 request. */
static __always_inline __u32 ks_not_http_reason(const struct ks_hdr_buf *b, __u32 n) {
  if (n >= 2 && b->d[0] == 0x16 && b->d[1] == 0x03) return KSPAN_HDR_SKIP_TLS;
  if (n >= 3 && b->d[0] == 'P' && b->d[1] == 'R' && b->d[2] == 'I') return KSPAN_HDR_SKIP_HTTP2;
  return KSPAN_HDR_SKIP_NOT_HTTP;
}

static __always_inline void ks_report(struct kspan_hdr_conn *c, const struct kspan_car_ctx *ctx,
                                      __u64 offset) {
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  struct kspan_car_event *e = bpf_ringbuf_reserve(&ks_hdr_events, sizeof(*e), 0);
  if (!e) {
    ks_hdr_count(KSPAN_HDR_EVENT_LOST);
    return;
  }
  struct ks_hdr_io *io = bpf_map_lookup_elem(&ks_hdr_io, &pid_tgid);
  e->kind = KSPAN_CAR_EV_SENT;
  e->tgid = pid_tgid >> 32;
  e->tid = (__u32)pid_tgid;
  e->fd = io ? io->fd : -1;
  e->cookie = c->cookie;
  e->offset = offset; /* in the application's bytes (what the capture sees) */
  e->ctx = *ctx;
  /* The send's entry, as the TCP-option carrier reports it: the agent's matcher joins a
   * report to the capture's send that starts nearest in time (within 100 us), and the
   * sk_msg program runs later inside that send (much later on a loaded machine). */
  e->ts_ns = io ? io->ts_ns : bpf_ktime_get_boot_ns();
  bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
}

/* "traceparent: ...\r\n" and "tracestate: <list>\r\n" at most. */
#define KS_INSERT_MAX (KSPAN_HDR_LINE + KSPAN_HDR_TS_PREFIX + KSPAN_HDR_TS_MAX + 2)
_Static_assert(KS_INSERT_MAX <= KSPAN_HDR_SCAN, "the lines are built in the scan buffer");

/* Inserts the traceparent line, and the tracestate line when ts_len > 0 (its list already
 * at line[KSPAN_HDR_LINE + KSPAN_HDR_TS_PREFIX]), at `at`, built in `line` (the scratch
 * slot, no longer needed for the scan). The bytes inserted, or 0 when nothing was changed. */
static __always_inline __u32 ks_insert(struct sk_msg_md *msg, __u32 at, const struct kspan_car_ctx *ctx,
                                       __u8 flags, __u8 *line, __u32 ts_len) {
  /* "traceparent: 00-" */
  line[0] = 't';
  line[1] = 'r';
  line[2] = 'a';
  line[3] = 'c';
  line[4] = 'e';
  line[5] = 'p';
  line[6] = 'a';
  line[7] = 'r';
  line[8] = 'e';
  line[9] = 'n';
  line[10] = 't';
  line[11] = ':';
  line[12] = ' ';
  line[13] = '0';
  line[14] = '0';
  line[15] = '-';
  for (int j = 0; j < 16; j++) {
    line[16 + 2 * j] = ks_hex(ctx->trace_id[j] >> 4);
    line[17 + 2 * j] = ks_hex(ctx->trace_id[j]);
  }
  line[48] = '-';
  for (int j = 0; j < 8; j++) {
    line[49 + 2 * j] = ks_hex(ctx->span_id[j] >> 4);
    line[50 + 2 * j] = ks_hex(ctx->span_id[j]);
  }
  line[65] = '-';
  line[66] = ks_hex((flags >> 4) & 15);
  line[67] = ks_hex(flags & 15);
  line[68] = '\r';
  line[69] = '\n';
  __u32 total = KSPAN_HDR_LINE;
  if (ts_len > 0 && ts_len <= KSPAN_HDR_TS_MAX) {
    const char prefix[KSPAN_HDR_TS_PREFIX] = "tracestate: ";
    __builtin_memcpy(line + KSPAN_HDR_LINE, prefix, KSPAN_HDR_TS_PREFIX);
    total = KSPAN_HDR_LINE + KSPAN_HDR_TS_PREFIX + ts_len;
    line[total & (KSPAN_HDR_SCAN - 1)] = '\r';
    line[(total + 1) & (KSPAN_HDR_SCAN - 1)] = '\n';
    total += 2;
  }
  if (bpf_msg_push_data(msg, at, total, 0) != 0) return 0;
  if (bpf_msg_pull_data(msg, at, at + total, 0) != 0) {
    bpf_msg_pop_data(msg, at, total, 0);
    return 0;
  }
  void *data = msg->data, *end = msg->data_end;
  if (data + KSPAN_HDR_LINE > end || (__u64)(end - data) < total) {
    bpf_msg_pop_data(msg, at, total, 0);
    return 0;
  }
  __builtin_memcpy(data, line, KSPAN_HDR_LINE);
  for (__u32 i = KSPAN_HDR_LINE; i < KS_INSERT_MAX; i++) {
    if (i >= total) break;
    __u8 *p = (__u8 *)data + i;
    if ((void *)(p + 1) > end) break; /* checked above: for the verifier */
    *p = line[i];
  }
  return total;
}

SEC("sk_msg")
int ks_hdr_msg(struct sk_msg_md *msg) {
  struct bpf_sock *sk = msg->sk;
  if (!sk) return SK_PASS;
  struct kspan_hdr_conn *c = bpf_sk_storage_get(&ks_hdr_store, sk, 0, 0);
  if (!c) return SK_PASS;
  const __u32 size = msg->size;
  const __u64 before = c->sent;
  c->sent += size;
  if (c->state == KSPAN_HDR_BODY) {
    if (size <= c->body_left) {
      c->body_left -= size;
      if (c->body_left == 0) c->state = KSPAN_HDR_HEAD;
    } else {
      ks_stop(c, KSPAN_HDR_SKIP_MID_STREAM); /* the body's end and more: not followed */
    }
    return SK_PASS;
  }
  if (c->state != KSPAN_HDR_HEAD || size == 0) return SK_PASS;
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  if (ks_hdr_self_tgid != 0 && (__u32)(pid_tgid >> 32) == ks_hdr_self_tgid) {
    c->state = KSPAN_HDR_STOP; /* the agent's own connections */
    return SK_PASS;
  }
  __u32 n = size < KSPAN_HDR_SCAN ? size : KSPAN_HDR_SCAN;
  if (bpf_msg_pull_data(msg, 0, n, 0) != 0) {
    ks_stop(c, KSPAN_HDR_PUSH_FAILED);
    return SK_PASS;
  }
  void *data = msg->data, *end = msg->data_end;
  __u32 slot = KS_SLOT_MSG;
  struct ks_hdr_buf *b = bpf_map_lookup_elem(&ks_hdr_scratch, &slot);
  if (!b) return SK_PASS;
  if (n == 0 || n > KSPAN_HDR_SCAN || data + n > end) {
    ks_stop(c, KSPAN_HDR_PUSH_FAILED);
    return SK_PASS;
  }
  if (bpf_probe_read_kernel(b->d, n, data) != 0) {
    ks_stop(c, KSPAN_HDR_PUSH_FAILED);
    return SK_PASS;
  }
  ks_scan_head(b, KS_SLOT_MSG, n);
  const struct ks_scan s = b->s; /* a copy: b->d becomes the line to insert */
  if (s.phase == KS_P_BAD) {
    /* Not a request line. On a connection's first bytes that names what they are. */
    ks_stop(c, c->requests == 0 ? ks_not_http_reason(b, n) : KSPAN_HDR_SKIP_NOT_HTTP);
    return SK_PASS;
  }
  c->requests++;
  if (s.phase != KS_P_DONE) {
    ks_stop(c, KSPAN_HDR_SKIP_SPLIT_HEAD); /* the head goes on past this send or the scan */
    return SK_PASS;
  }
  if (s.method_len == 7 && s.method0 == 'C' && b->d[1] == 'O' && b->d[2] == 'N' && b->d[3] == 'N') {
    ks_stop(c, KSPAN_HDR_SKIP_CONNECT);
    return SK_PASS;
  }
  /* Decide what follows this request before writing anything. */
  __u32 next_state = KSPAN_HDR_HEAD, next_reason = 0;
  __u64 total = s.head_end;
  if (s.te || s.cl_bad || s.cl_count > 1) {
    next_state = KSPAN_HDR_STOP;
    next_reason = KSPAN_HDR_SKIP_FRAMING;
  } else if (s.up) {
    next_state = KSPAN_HDR_STOP;
    next_reason = KSPAN_HDR_SKIP_UPGRADE;
  } else {
    total += s.cl;
    if (size > total) {
      next_state = KSPAN_HDR_STOP;
      next_reason = KSPAN_HDR_SKIP_PIPELINED;
    } else if (size < total) {
      next_state = KSPAN_HDR_BODY;
      c->body_left = total - size;
    }
  }
  c->state = next_state;
  if (next_reason) ks_hdr_count(next_reason);
  if (s.tp_count != 0) {
    ks_hdr_count(KSPAN_HDR_SKIP_HAS_TP); /* the application's own: left alone */
    return SK_PASS;
  }
  struct kspan_car_ctx ctx;
  __u32 *w = (__u32 *)&ctx;
#pragma unroll
  for (int i = 0; i < 6; i++) w[i] = bpf_get_prandom_u32();
  /* A new trace: sampled, and its id is (pseudo-)random, so the random flag (Level 2). */
  __u8 flags = 3;
  __u32 ts_len = 0;
  struct kspan_hdr_thread *serving = bpf_map_lookup_elem(&ks_hdr_threads, &pid_tgid);
  if (serving) {
    __builtin_memcpy(ctx.trace_id, serving->trace_id, sizeof(ctx.trace_id));
    /* sampled and random as they came (Level 2 requires the random flag kept); any other
     * flag is unknown to this version and is sent as 0 */
    flags = serving->flags & 3;
    if (serving->ts_len > 0) {
      if (s.ts_fields > 0) {
        ks_hdr_count(KSPAN_HDR_TS_APP_HAS); /* the application's own list: left alone */
      } else {
        struct kspan_hdr_tstate *ts = bpf_map_lookup_elem(&ks_hdr_tstate, &pid_tgid);
        const __u32 n_ts = ts ? ts->len : 0;
        if (ts && ts->tag == serving->ts_tag && n_ts == serving->ts_len && n_ts <= KSPAN_HDR_TS_MAX &&
            bpf_probe_read_kernel(b->d + KSPAN_HDR_LINE + KSPAN_HDR_TS_PREFIX, n_ts, ts->v) == 0)
          ts_len = n_ts;
        else
          ks_hdr_count(KSPAN_HDR_TS_LOST);
      }
    }
  }
  __u64 sp = 0;
  __builtin_memcpy(&sp, ctx.span_id, 8);
  if (sp == 0) return SK_PASS; /* 2^-64: no context rather than an invalid one */
  const __u32 added = ks_insert(msg, s.line_end, &ctx, flags, b->d, ts_len);
  if (added == 0) {
    ks_stop(c, KSPAN_HDR_PUSH_FAILED);
    return SK_PASS;
  }
  /* The head in one piece again: pushed data is a scatterlist element of its own, and
   * tcp_bpf sends each element with its own tcp_sendmsg_locked call, so the request line
   * would leave as a small segment of its own and the rest wait behind it (Nagle). */
  bpf_msg_pull_data(msg, 0, s.head_end + added, 0);
  ks_hdr_count(KSPAN_HDR_WRITTEN);
  if (added > KSPAN_HDR_LINE) ks_hdr_count(KSPAN_HDR_TS_WRITTEN);
  ks_report(c, &ctx, before);
  return SK_PASS;
}

/* ---- tracepoints: the thread's send fd, and the request a server thread serves --------- */

static __always_inline void ks_remember(__s32 fd, __u64 buf) {
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  if ((__u32)(pid_tgid >> 32) == ks_hdr_self_tgid) return;
  struct ks_hdr_io io = {.buf = buf, .ts_ns = bpf_ktime_get_boot_ns(), .fd = fd};
  bpf_map_update_elem(&ks_hdr_io, &pid_tgid, &io, BPF_ANY);
}

SEC("tracepoint/syscalls/sys_enter_write")
int ks_hdr_write_enter(struct trace_event_raw_sys_enter *ctx) {
  ks_remember((__s32)ctx->args[0], 0);
  return 0;
}
SEC("tracepoint/syscalls/sys_enter_writev")
int ks_hdr_writev_enter(struct trace_event_raw_sys_enter *ctx) {
  ks_remember((__s32)ctx->args[0], 0);
  return 0;
}
SEC("tracepoint/syscalls/sys_enter_sendto")
int ks_hdr_sendto_enter(struct trace_event_raw_sys_enter *ctx) {
  ks_remember((__s32)ctx->args[0], 0);
  return 0;
}
SEC("tracepoint/syscalls/sys_enter_sendmsg")
int ks_hdr_sendmsg_enter(struct trace_event_raw_sys_enter *ctx) {
  ks_remember((__s32)ctx->args[0], 0);
  return 0;
}
SEC("tracepoint/syscalls/sys_enter_sendfile64")
int ks_hdr_sendfile_enter(struct trace_event_raw_sys_enter *ctx) {
  ks_remember((__s32)ctx->args[0], 0);
  return 0;
}

static __always_inline struct sock *ks_hdr_fd_sock(int fd) {
  struct task_struct *task = (struct task_struct *)bpf_get_current_task();
  struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
  if (!fdt || fd < 0) return NULL;
  unsigned int max_fds = BPF_CORE_READ(fdt, max_fds);
  if ((unsigned int)fd >= max_fds) return NULL;
  struct file **fds = BPF_CORE_READ(fdt, fd);
  struct file *f = NULL;
  bpf_core_read(&f, sizeof(f), &fds[fd]);
  if (!f) return NULL;
  umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
  if ((mode & KS_S_IFMT) != KS_S_IFSOCK) return NULL;
  struct socket *sock = BPF_CORE_READ(f, private_data);
  if (!sock) return NULL;
  return BPF_CORE_READ(sock, sk);
}

/* The exit of a read: when its bytes start with a request line on a server connection in
 * scope, the thread now serves that request: with its valid traceparent, or without. */
static __always_inline void ks_read_exit(long ret) {
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  struct ks_hdr_io *io = bpf_map_lookup_elem(&ks_hdr_io, &pid_tgid);
  if (!io) return;
  const __u64 buf = io->buf;
  const __s32 fd = io->fd;
  bpf_map_delete_elem(&ks_hdr_io, &pid_tgid);
  if (ret < 16 || buf == 0) return;
  /* Cheap first: an uppercase method and a space within the first 8 bytes. */
  __u8 head[8];
  if (bpf_probe_read_user(head, sizeof(head), (const void *)buf) != 0) return;
  int sp = 0;
#pragma unroll
  for (int k = 0; k < 8; k++) {
    if (sp) break;
    if (head[k] == ' ' && k > 0)
      sp = 1;
    else if (head[k] < 'A' || head[k] > 'Z')
      return;
  }
  if (!sp) return;
  struct sock *sk = ks_hdr_fd_sock(fd);
  if (!sk || BPF_CORE_READ(sk, sk_protocol) != KS_IPPROTO_TCP) return;
  __u64 cookie = BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);
  if (cookie == 0 || !bpf_map_lookup_elem(&ks_hdr_servers, &cookie)) return;
  __u32 slot = KS_SLOT_READ;
  struct ks_hdr_buf *b = bpf_map_lookup_elem(&ks_hdr_scratch, &slot);
  if (!b) return;
  __u32 n = ret < KSPAN_HDR_SCAN ? (__u32)ret : KSPAN_HDR_SCAN;
  if (n == 0 || n > KSPAN_HDR_SCAN) return;
  if (bpf_probe_read_user(b->d, n, (const void *)buf) != 0) return;
  ks_scan_head(b, KS_SLOT_READ, n);
  if (b->s.line_end == 0) return; /* not a request line after all: nothing changes */
  struct kspan_hdr_thread t = {};
  const int r = b->s.phase == KS_P_DONE ? ks_tp_from_scan(b, KS_SLOT_READ, &t) : 0;
  if (r == 1) {
    ks_hdr_count(KSPAN_HDR_IN_VALID);
    const __u32 ts_outcome = ks_ts_from_scan(b, KS_SLOT_READ);
    if (ts_outcome) ks_hdr_count(ts_outcome);
    if (b->ts.len > 0 && b->ts.len <= KSPAN_HDR_TS_MAX) {
      b->ts.tag = bpf_get_prandom_u32() | 1;
      t.ts_len = b->ts.len;
      t.ts_tag = b->ts.tag;
      if (bpf_map_update_elem(&ks_hdr_tstate, &pid_tgid, &b->ts, BPF_ANY) != 0) t.ts_len = 0;
    } else {
      bpf_map_delete_elem(&ks_hdr_tstate, &pid_tgid);
    }
    bpf_map_update_elem(&ks_hdr_threads, &pid_tgid, &t, BPF_ANY);
  } else {
    if (r < 0) ks_hdr_count(KSPAN_HDR_IN_INVALID);
    /* a tracestate without a valid traceparent is discarded (processing model) */
    if (b->s.phase == KS_P_DONE && b->s.ts_fields > 0) ks_hdr_count(KSPAN_HDR_TS_IN_NO_TP);
    bpf_map_delete_elem(&ks_hdr_threads, &pid_tgid); /* a new request without context */
    bpf_map_delete_elem(&ks_hdr_tstate, &pid_tgid);
  }
}

SEC("tracepoint/syscalls/sys_enter_read")
int ks_hdr_read_enter(struct trace_event_raw_sys_enter *ctx) {
  ks_remember((__s32)ctx->args[0], ctx->args[1]);
  return 0;
}
SEC("tracepoint/syscalls/sys_exit_read")
int ks_hdr_read_exit(struct trace_event_raw_sys_exit *ctx) {
  ks_read_exit(ctx->ret);
  return 0;
}
SEC("tracepoint/syscalls/sys_enter_recvfrom")
int ks_hdr_recvfrom_enter(struct trace_event_raw_sys_enter *ctx) {
  ks_remember((__s32)ctx->args[0], ctx->args[1]);
  return 0;
}
SEC("tracepoint/syscalls/sys_exit_recvfrom")
int ks_hdr_recvfrom_exit(struct trace_event_raw_sys_exit *ctx) {
  ks_read_exit(ctx->ret);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
