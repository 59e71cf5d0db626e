/* Every map and every load-time setting of kspan's BPF side, declared once.
 *
 * maps.bpf.c defines them (KSPAN_DEFINE_MAPS); every other object sees `extern`
 * declarations that `bpftool gen object` resolves at link time.
 *
 * Sizes, with the arithmetic that bounds kernel memory (goal, issue 17: every kspan map
 * together <= 32 MiB with the default 8 MiB ring buffer, as bench/ measures with bpftool):
 *   ks_conns    65536 x (8 key + 48 value + ~64 LRU/htab overhead)  ~= 7.5 MiB
 *   ks_stash    16384 x (8 key + 40 value + ~56 overhead)           ~= 1.6 MiB
 *   ks_scratch  ncpu x (72 + 3 x 16 KiB)                            ~= 48 KiB/CPU
 *               (a plain array indexed by CPU: per-CPU map values are capped at 32 KiB,
 *               just under what one scratch slot needs)
 *   ks_select   16384 x (4 + 8 (a __u8 rounded up) + ~64 LRU/htab)  ~= 1.2 MiB
 *   ks_turns    16384 x (4 key + 4 value + ~72 LRU/htab overhead)   ~= 1.3 MiB
 *   ks_agent_tgids 4096 x (4 + 8 (a __u8 rounded up) + ~56)         ~= 0.3 MiB
 *   TLS (tls.bpf.c):
 *   ks_ssl_calls    8192 x (8 + 48 + ~64)                           ~= 1.0 MiB
 *   ks_ssl_fds     32768 x (16 + 4 + ~64)                           ~= 2.7 MiB
 *   ks_tls_pending  8192 x (8 + 32 + ~64)                           ~= 0.9 MiB
 *   ks_last_read   16384 x (8 + 8 + ~64)                            ~= 1.3 MiB
 *   ks_tls_tgids    8192 x (4 + 4 + ~64)                            ~= 0.6 MiB
 *   ks_ssl_retry    1024 x (16 + 8 + ~64)                           ~= 0.1 MiB
 *   Go crypto/tls (go_tls.bpf.c):
 *   ks_go_reads    16384 x (16 + 32 + ~64)                          ~= 1.8 MiB
 *   ks_go_scopes   16384 x (16 + 8 + ~64)                           ~= 1.4 MiB
 *   ks_go_loops     4096 x (16 + 8 + ~64)                           ~= 0.4 MiB
 *   ks_go_pconns    4096 x (16 + 8 + ~64)                           ~= 0.4 MiB
 *   ks_go_spawns    1024 x (8 + 8 + ~64)                            ~= 0.1 MiB
 *   Agents' file writes (file_write.bpf.c):
 *   ks_files        2048 x (8 + 296 + ~64 LRU/htab overhead)        ~= 0.7 MiB
 *   ks_file_calls   4096 x (8 + 16 + ~56)                           ~= 0.3 MiB
 * Total with the default 8 MiB ring buffer: ~31.5 MiB (bench/ measures it with bpftool;
 * 35.9 MiB before the thread-keyed maps were halved: 16,384 threads doing socket I/O, or
 * 8,192 inside a TLS call, at once is more than a node runs, and what does not fit is an
 * LRU eviction (a turn count restarts) or counted: tls_call_map_full, syscall_stash_full).
 */
#ifndef KSPAN_MAPS_BPF_H
#define KSPAN_MAPS_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "kspan/bpf/events.h"
#include "kspan/bpf/maps.h"

#define KSPAN_CONNS_MAX 65536  /* sockets and negative (non-socket) fd entries */
#define KSPAN_STASH_MAX 16384  /* threads inside a traced syscall at once */
#define KSPAN_SELECT_MAX 16384 /* processes decided by --pid or include/exclude rules */
#define KSPAN_TURNS_MAX 16384  /* threads whose event-loop turn is counted (LRU) */
#define KSPAN_AGENTS_MAX 4096  /* processes whose local IPC and stdio are captured */
/* iovecs copied from one readv/writev/sendmsg/recvmsg: gRPC (C-core) writes each HPACK
 * field and frame header as its own iovec, 26 for a first unary call seen here, up to 260 */
#define KSPAN_MAX_IOV 64
#define KSPAN_SSL_CALLS_MAX 8192  /* threads inside SSL_read/SSL_write at once */
#define KSPAN_SSL_FDS_MAX 32768   /* TLS objects whose socket is known (LRU: one evicted is found again) */
#define KSPAN_TLS_TGIDS_MAX 8192  /* processes that called the TLS library */
#define KSPAN_SSL_RETRY_MAX 1024  /* TLS objects with a write waiting for its retry at once */
#define KSPAN_GO_READS_MAX 16384  /* goroutines inside crypto/tls.(*Conn).Read at once */
#define KSPAN_FILES_MAX 2048      /* agents' files open for writing at once (LRU) */
#define KSPAN_FILE_CALLS_MAX 4096 /* agents' threads inside openat/write of such a file at once */
#define KSPAN_GO_SCOPES_MAX 16384 /* live goroutines of Go TLS processes with a request scope */
#define KSPAN_GO_LOOPS_MAX 4096   /* net/http client connections (their read/write loops) */
#define KSPAN_GO_SPAWNS_MAX 1024  /* threads inside runtime.newproc1 at once */

#ifdef KSPAN_DEFINE_MAPS
#define KSPAN_EXTERN
#else
#define KSPAN_EXTERN extern
#endif

/* What kspan knows about one (tgid, fd) (kspan/bpf/maps.h: user space reads these). */
enum ks_fd_kind {
  KS_FD_OTHER = KSPAN_FD_OTHER, /* not tracked: remembered so the walk happens once */
  KS_FD_TCP = KSPAN_FD_TCP,
  KS_FD_LOCAL = KSPAN_FD_LOCAL, /* an agent's Unix stream socket, pipe or FIFO */
  KS_FD_STDIO = KSPAN_FD_STDIO, /* an agent's fd 1/2 that is neither: egress only */
};

struct ks_fd_key {
  __u32 tgid;
  __s32 fd;
};

struct ks_conn {
  __u64 file;       /* struct file * the entry was made for: detects fd reuse */
  __u64 generation; /* unique per tracked socket */
  __u64 pos_out;    /* egress stream length so far */
  __u64 pos_in;     /* ingress stream length so far */
  __u8 kind;        /* enum ks_fd_kind */
  __u8 role;        /* enum kspan_role */
  __u8 tls;         /* 1: TLS plaintext is captured by uprobes; positions count plaintext,
                     * and the socket's own (ciphertext) events are not sent */
  __u8 llm;         /* 1: a request on it named an LLM API path (ks_llm_request); its
                     * events capture up to ks_llm_capture_bytes */
  __u8 _pad[4];
  __u64 _reserved;
};

/* User space walks ks_conns (BpfEventSource::MarkAgent) with kspan/bpf/maps.h's view. */
#define KS_SAME_FIELD(a, b, f)                                           \
  (__builtin_offsetof(struct a, f) == __builtin_offsetof(struct b, f) && \
   sizeof(((struct a *)0)->f) == sizeof(((struct b *)0)->f))
_Static_assert(sizeof(struct ks_fd_key) == sizeof(struct kspan_fd_key) &&
                   KS_SAME_FIELD(ks_fd_key, kspan_fd_key, tgid) && KS_SAME_FIELD(ks_fd_key, kspan_fd_key, fd),
               "ks_fd_key must match kspan_fd_key");
_Static_assert(sizeof(struct ks_conn) == sizeof(struct kspan_conn_state) &&
                   KS_SAME_FIELD(ks_conn, kspan_conn_state, file) &&
                   KS_SAME_FIELD(ks_conn, kspan_conn_state, generation) &&
                   KS_SAME_FIELD(ks_conn, kspan_conn_state, pos_out) &&
                   KS_SAME_FIELD(ks_conn, kspan_conn_state, pos_in) &&
                   KS_SAME_FIELD(ks_conn, kspan_conn_state, kind) &&
                   KS_SAME_FIELD(ks_conn, kspan_conn_state, role),
               "ks_conn must match kspan_conn_state");

/* Arguments of a syscall in flight, stashed by pid_tgid at entry. */
struct ks_stash {
  __u64 enter_ns;
  __u64 buf;   /* user buffer, iovec array or msghdr, by syscall */
  __u64 count; /* length or iovec count */
  __s32 fd;
  __u8 syscall; /* enum kspan_syscall */
  __u8 _pad[3];
  __u64 _reserved;
};

/* Lengths are masked with this before every variable-length copy: a length that is
 * logically <= KSPAN_MAX_CAPTURE stays unchanged, and the verifier can see the bound. */
#define KS_LEN_MASK (2 * KSPAN_MAX_CAPTURE - 1)

/* n & KS_LEN_MASK behind a compiler barrier: clang would otherwise drop the mask
 * (it knows n <= MAX) and hand the verifier an unbounded copy of the register. */
static __always_inline __u64 ks_bound_len(__u64 n) {
  asm volatile("" : "+r"(n));
  return n & KS_LEN_MASK;
}

/* The per-CPU buffer a data event is assembled in. After ev.data (MAX bytes) comes
 * 2 x MAX of slack, so a masked offset (< MAX) plus a masked length (<= 2 x MAX - 1)
 * always stays inside the slot: 72 + 16 KiB + 32 KiB = 49224 bytes per CPU. */
struct ks_scratch {
  struct kspan_data_event ev;
  __u8 overflow[2 * KSPAN_MAX_CAPTURE];
};
_Static_assert((KSPAN_MAX_CAPTURE & (KSPAN_MAX_CAPTURE - 1)) == 0, "capture size must be a power of two");

KSPAN_EXTERN struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 8 << 20); /* user space overrides before load */
} ks_events SEC(".maps");

KSPAN_EXTERN struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, KSPAN_CNT_MAX);
  __type(key, __u32);
  __type(value, __u64);
} ks_counters SEC(".maps");

KSPAN_EXTERN struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, KSPAN_CONNS_MAX);
  __type(key, struct ks_fd_key);
  __type(value, struct ks_conn);
} ks_conns SEC(".maps");

KSPAN_EXTERN struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, KSPAN_STASH_MAX);
  __type(key, __u64);
  __type(value, struct ks_stash);
} ks_stash SEC(".maps");

KSPAN_EXTERN struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1); /* the loader sets it to the number of possible CPUs */
  __type(key, __u32);
  __type(value, struct ks_scratch);
} ks_scratch SEC(".maps");

/* Event-loop turns: thread id -> waits returned from (see kspan_event_header.turn). LRU:
 * a thread that stopped waiting long ago loses its count, and its events say 0. */
KSPAN_EXTERN struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, KSPAN_TURNS_MAX);
  __type(key, __u32);
  __type(value, __u32);
} ks_turns SEC(".maps");

/* Which processes are traced (enum kspan_select_mode): tgid -> 1 traced, 0 skipped.
 * LRU: with rules, an evicted entry only means the process is traced again until user
 * space, which remembers its decision, writes it back; with --pid the map holds the
 * listed pids only (at most KSPAN_PIDS_MAX), far below the bound. */
KSPAN_EXTERN struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, KSPAN_SELECT_MAX);
  __type(key, __u32);
  __type(value, __u8);
} ks_select SEC(".maps");

/* Agents and MCP servers: tgid -> enum kspan_agent_flags. User space adds and removes
 * them (BpfEventSource::MarkAgent/UnmarkAgent); a process's entry goes when it exits
 * (process.bpf.c), so a reused pid is not an agent. A plain hash, not LRU: an agent must
 * never be dropped silently; when it is full, MarkAgent fails and says so. Only these
 * processes' Unix sockets, pipes and stdio are tracked (conn.bpf.h ks_track). */
KSPAN_EXTERN struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, KSPAN_AGENTS_MAX);
  __type(key, __u32);
  __type(value, __u8);
} ks_agent_tgids SEC(".maps");

/* Next connection generation; one shared slot, bumped atomically. */
KSPAN_EXTERN struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u64);
} ks_gen SEC(".maps");

/* ---- TLS (tls.bpf.c) ----------------------------------------------------------- */

/* One SSL_read/SSL_write in progress on a thread, keyed by pid_tgid. A write without a
 * return probe (deferred = 1, tls.bpf.h) stays here after its call returned, until the
 * thread's next TLS call replaces it. */
struct ks_ssl_call {
  __u64 ssl; /* the SSL object */
  __u64 buf; /* plaintext buffer */
  __u64 out; /* size_t * of the _ex forms (bytes done), 0 for SSL_read/SSL_write */
  __u64 enter_ns;
  __s32 fd;       /* socket the call's own syscalls used; -1 until one does */
  __u8 direction; /* enum kspan_direction */
  __u8 deferred;  /* 1: a write whose socket writes stand in for its return */
  __u8 _pad[2];
  __u64 len; /* deferred: the plaintext bytes the call was given */
};

/* A deferred write that returned WANT_WRITE (its socket write failed with EAGAIN): its
 * bytes were sent at its entry, and OpenSSL requires the retry to pass the same length. */
struct ks_ssl_retry {
  __u64 len;
};

struct ks_ssl_key {
  __u32 tgid;
  __u32 _pad;
  __u64 ssl;
};

/* Writes of a TLS object whose socket is unknown, waiting for the thread's next write
 * syscall in the same event-loop turn (node: SSL_write into a memory BIO, then the
 * ciphertext is written to the socket). */
struct ks_tls_pending {
  __u64 ssl;
  __u64 bytes; /* unbound plaintext bytes sent as events so far */
  __u32 turn;
  __u8 llm; /* the writes are an LLM API request: the bound connection is marked llm */
  __u8 _pad[3];
  __u64 _reserved;
};

/* The socket a thread last read, and in which turn (node: the ciphertext is read from the
 * socket, then SSL_read decrypts it from a memory BIO). */
struct ks_last_read {
  __s32 fd;
  __u32 turn;
};

KSPAN_EXTERN struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, KSPAN_SSL_CALLS_MAX);
  __type(key, __u64);
  __type(value, struct ks_ssl_call);
} ks_ssl_calls SEC(".maps");

KSPAN_EXTERN struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, KSPAN_SSL_FDS_MAX);
  __type(key, struct ks_ssl_key);
  __type(value, __s32);
} ks_ssl_fds SEC(".maps");

KSPAN_EXTERN struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, KSPAN_SSL_CALLS_MAX);
  __type(key, __u64);
  __type(value, struct ks_tls_pending);
} ks_tls_pending SEC(".maps");

KSPAN_EXTERN struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, KSPAN_TURNS_MAX);
  __type(key, __u64);
  __type(value, struct ks_last_read);
} ks_last_read SEC(".maps");

KSPAN_EXTERN struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, KSPAN_SSL_RETRY_MAX);
  __type(key, struct ks_ssl_key);
  __type(value, struct ks_ssl_retry);
} ks_ssl_retry SEC(".maps");

/* Processes that called a probed TLS function: only their syscalls pay for TLS checks. */
KSPAN_EXTERN struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, KSPAN_TLS_TGIDS_MAX);
  __type(key, __u32);
  __type(value, __u8);
} ks_tls_tgids SEC(".maps");

/* ---- Go crypto/tls (go_tls.bpf.c) ----------------------------------------------- */

/* One crypto/tls.(*Conn).Read in progress, keyed by (tgid, goroutine): a goroutine may
 * resume on another thread, so its RET probe may fire on a thread other than its entry. */
struct ks_go_read {
  __u64 conn; /* the *tls.Conn */
  __u64 buf;  /* b's data pointer */
  __u64 enter_ns;
  __s32 fd; /* the socket, found by walking the *tls.Conn at entry; -1 if not found */
  __u32 _pad;
};

KSPAN_EXTERN struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH); /* a goroutine that never returns is evicted */
  __uint(max_entries, KSPAN_GO_READS_MAX);
  __type(key, struct ks_ssl_key); /* .ssl is the goroutine (its g) */
  __type(value, struct ks_go_read);
} ks_go_reads SEC(".maps");

/* ---- Agents' file writes (file_write.bpf.c) -------------------------------------- */

/* A regular file a process in ks_agent_tgids opened for writing, by (tgid, fd), until its
 * close: what has been written to it. LRU: a process that exits with the file still open
 * (no close(2)) leaves its entry to be evicted by newer ones, unreported. */
struct ks_file {
  __u64 file; /* struct file * at the open: a write through a reused fd is not counted */
  __u64 bytes;
  __u64 first_ns;
  __u64 last_ns;
  __u32 writes;
  __u32 path_len;
  char path[KSPAN_PATH_LEN];
};

/* An openat() or a write to a followed file in progress on a thread (pid_tgid). */
struct ks_file_call {
  __u64 filename; /* openat: the user pointer to the path; 0 for a write */
  __s32 fd;       /* write: the fd */
  __u8 syscall;   /* KSPAN_SYS_OPENAT or KSPAN_SYS_WRITE */
  __u8 _pad[3];
};

KSPAN_EXTERN struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, KSPAN_FILES_MAX);
  __type(key, struct ks_fd_key);
  __type(value, struct ks_file);
} ks_files SEC(".maps");

KSPAN_EXTERN struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, KSPAN_FILE_CALLS_MAX);
  __type(key, __u64);
  __type(value, struct ks_file_call);
} ks_file_calls SEC(".maps");

/* The ks_files entry being made at an openat's exit: too big for the stack beside the
 * rest, so one per CPU. */
KSPAN_EXTERN struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct ks_file);
} ks_file_scratch SEC(".maps");
/* Goroutine ancestry (go_tls.bpf.c, "Which request a goroutine works for"): the request
 * scope of a goroutine, keyed by (tgid, g): the g of the goroutine whose work it does. */
KSPAN_EXTERN struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH); /* evicted: the goroutine is its own scope again */
  __uint(max_entries, KSPAN_GO_SCOPES_MAX);
  __type(key, struct ks_ssl_key); /* .ssl is the goroutine (its g) */
  __type(value, __u64);           /* the scope's g */
} ks_go_scopes SEC(".maps");

/* net/http's client: (tgid, g) of a persistConn's readLoop or writeLoop goroutine -> the
 * *persistConn it serves. */
KSPAN_EXTERN struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, KSPAN_GO_LOOPS_MAX);
  __type(key, struct ks_ssl_key); /* .ssl is the goroutine (its g) */
  __type(value, __u64);           /* the *persistConn */
} ks_go_loops SEC(".maps");

/* net/http's client: (tgid, *persistConn) -> the scope of the request it carries now (its
 * roundTrip's caller). */
KSPAN_EXTERN struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, KSPAN_GO_LOOPS_MAX);
  __type(key, struct ks_ssl_key); /* .ssl is the *persistConn */
  __type(value, __u64);           /* the scope's g */
} ks_go_pconns SEC(".maps");

/* runtime.newproc1 in progress on a thread (it runs on the system stack: no goroutine
 * switch between its entry and its RET): pid_tgid -> the spawning goroutine. */
KSPAN_EXTERN struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, KSPAN_GO_SPAWNS_MAX);
  __type(key, __u64);
  __type(value, __u64); /* callergp */
} ks_go_spawns SEC(".maps");

/* Load-time settings (rodata, set by the loader before load). */
KSPAN_EXTERN const volatile __u32 ks_self_tgid;         /* the agent: never traced */
KSPAN_EXTERN const volatile __u32 ks_select_mode;       /* enum kspan_select_mode */
KSPAN_EXTERN const volatile __u32 ks_capture_bytes;     /* <= KSPAN_MAX_CAPTURE */
KSPAN_EXTERN const volatile __u32 ks_llm_capture_bytes; /* on llm connections; 0: off */
KSPAN_EXTERN const volatile __u64 ks_wakeup_bytes;      /* wake the consumer past this fill */

#endif /* KSPAN_MAPS_BPF_H */
