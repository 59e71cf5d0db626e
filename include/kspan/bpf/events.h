/* Structs shared by the BPF programs (bpf/) and the daemon (userspace/events/).
 *
 * Plain C with fixed-width fields and explicit padding: no bitfields, no bool, no
 * implicit holes. tests/unit/abi_layout_test.cc pins sizeof/offsetof of every struct.
 * Enum values carry explicit numbers; renumbering one breaks old daemons and kernels.
 *
 * Every record in the ring buffer starts with struct kspan_event_header; `type` tells
 * which struct follows:
 *
 *   type                  struct                    when
 *   KSPAN_EV_DATA         kspan_data_event          read/write/... moved bytes on a connection
 *   KSPAN_EV_CONN_OPEN    kspan_conn_event          connect/accept, or first sight of a socket
 *   KSPAN_EV_CONN_CLOSE   kspan_close_event         close() of a tracked connection
 *   KSPAN_EV_PROC_EXEC    kspan_exec_event          a process exec'd
 *   KSPAN_EV_PROC_EXIT    kspan_exit_event          a process (thread group) exited
 *   KSPAN_EV_TLS_BIND     kspan_tls_bind_event      a TLS object's socket became known
 *   KSPAN_EV_FILE_WRITE   kspan_file_write_event    an agent closed a file it wrote
 *   KSPAN_EV_LISTEN       kspan_listen_event        a process skipped until it listens
 *                                                   called listen() (kspan/bpf/maps.h)
 *   KSPAN_EV_PROC_FORK    kspan_fork_event          with selection rules, a process not
 *                                                   skipped forked a new process
 *
 * TLS: uprobes on the TLS library (bpf/tls.bpf.c) send the plaintext as ordinary data
 * events with KSPAN_DATA_F_TLS set and syscall KSPAN_SYS_SSL_READ/WRITE. Once a
 * connection is known to carry TLS, the kernel drops its ciphertext syscall events and
 * its stream positions count plaintext bytes from 0.
 *
 * Connections are TCP sockets of every watched process, and, of processes user space
 * marked as agents or MCP servers (ks_agent_tgids, kspan/bpf/maps.h), also
 * their AF_UNIX stream sockets, pipes and FIFOs, and their writes to fd 1 and 2:
 * kspan_conn_event.kind says which. Data and close events are the same for every kind. */
#ifndef KSPAN_BPF_EVENTS_H
#define KSPAN_BPF_EVENTS_H

#ifdef __BPF__
/* vmlinux.h provides __u8..__u64 */
#else
#include <linux/types.h>
#endif

/* Largest payload prefix one syscall event can carry. A power of two so BPF code can
 * mask offsets with (KSPAN_MAX_CAPTURE - 1). The per-run limit (--capture-bytes) is at
 * most this; 16 KiB keeps one event under a page-sized ring-buffer slot budget while
 * covering a typical HTTP head many times over. */
#define KSPAN_MAX_CAPTURE 16384
#define KSPAN_DEFAULT_CAPTURE 4096
#define KSPAN_COMM_LEN 16
#define KSPAN_PATH_LEN 256
#define KSPAN_ARGS_LEN 512
#define KSPAN_NAME_LEN 128
/* A cgroup path in an exec event (struct kspan_cgroup_path): its innermost parts, each cut
 * at KSPAN_CGROUP_PART_LEN - 1 bytes. 96 holds every runtime's container cgroup name
 * ("cri-containerd-<64 hex>.scope" is 85); 6 parts reach a Kubernetes pod's slice even
 * inside a node container (kind). */
#define KSPAN_CGROUP_PARTS 6
#define KSPAN_CGROUP_PART_LEN 96

enum kspan_event_type {
  KSPAN_EV_DATA = 1,
  KSPAN_EV_CONN_OPEN = 2,
  KSPAN_EV_CONN_CLOSE = 3,
  KSPAN_EV_PROC_EXEC = 4,
  KSPAN_EV_PROC_EXIT = 5,
  KSPAN_EV_TLS_BIND = 6,
  KSPAN_EV_FILE_WRITE = 7,
  KSPAN_EV_LISTEN = 8,
  KSPAN_EV_PROC_FORK = 9,
};

enum kspan_direction {
  KSPAN_DIR_EGRESS = 1,  /* the process sent these bytes */
  KSPAN_DIR_INGRESS = 2, /* the process received these bytes */
};

enum kspan_role {
  KSPAN_ROLE_UNKNOWN = 0, /* open before kspan started: user space infers it */
  KSPAN_ROLE_CLIENT = 1,  /* this process called connect() */
  KSPAN_ROLE_SERVER = 2,  /* this process got the socket from accept() */
};

enum kspan_syscall {
  KSPAN_SYS_READ = 1,
  KSPAN_SYS_WRITE = 2,
  KSPAN_SYS_READV = 3,
  KSPAN_SYS_WRITEV = 4,
  KSPAN_SYS_SENDTO = 5,
  KSPAN_SYS_RECVFROM = 6,
  KSPAN_SYS_SENDMSG = 7,
  KSPAN_SYS_RECVMSG = 8,
  KSPAN_SYS_SENDFILE = 9,
  KSPAN_SYS_CONNECT = 10,
  KSPAN_SYS_ACCEPT = 11,
  KSPAN_SYS_ACCEPT4 = 12,
  KSPAN_SYS_CLOSE = 13,
  KSPAN_SYS_SSL_READ = 14,  /* plaintext SSL_read/SSL_read_ex returned (not a syscall) */
  KSPAN_SYS_SSL_WRITE = 15, /* plaintext SSL_write/SSL_write_ex accepted (not a syscall) */
  KSPAN_SYS_OPENAT = 16,    /* an agent's openat() for writing (bpf/file_write.bpf.c) */
};

/* kspan_data_event.flags */
enum kspan_data_flags {
  KSPAN_DATA_F_TLS = 1,     /* plaintext taken from the TLS library, not the socket */
  KSPAN_DATA_F_UNBOUND = 2, /* the TLS object's socket is not known yet (a library that
                             * does its I/O through memory buffers, like node's): conn.fd
                             * is -1, conn.generation is the TLS object's address, and
                             * position counts from the first unbound byte. A
                             * KSPAN_EV_TLS_BIND event later names the connection. */
};

/* kspan_conn_event.flags */
enum kspan_conn_flags {
  KSPAN_CONN_F_MIDSTREAM = 1, /* first seen in a data syscall, not at connect/accept */
  KSPAN_CONN_F_BACKLOG = 2,   /* accepted: listen_queue/listen_queue_max are the listener's */
};

/* kspan_conn_event.kind: what the connection is. The field was padding, always zeroed,
 * before it existed, so a kernel side that predates it reports TCP, which is all it
 * tracked; a daemon that predates it rejects the other kinds by their family. Only
 * processes in ks_agent_tgids get kinds other than TCP.
 *
 *   kind      family    ports, addresses   directions   what
 *   TCP       INET/6    set                both         a TCP socket
 *   UNIX      AF_UNIX   0                  both         an AF_UNIX SOCK_STREAM socket
 *                                                       (node's child_process stdio)
 *   PIPE      0         0                  both         a pipe or FIFO (python's
 *                                                       subprocess stdio)
 *   STDOUT    0         0                  egress only  fd 1 when it is none of the above
 *   STDERR    0         0                  egress only  fd 2, likewise (tty, file, ...)
 *
 * An agent's fd 0/1/2 that is a pipe or a Unix socket is PIPE or UNIX (conn.fd tells it
 * is stdio). */
enum kspan_conn_kind {
  KSPAN_CONN_KIND_TCP = 0,
  KSPAN_CONN_KIND_UNIX = 1,
  KSPAN_CONN_KIND_PIPE = 2,
  KSPAN_CONN_KIND_STDOUT = 3,
  KSPAN_CONN_KIND_STDERR = 4,
};

/* Indexes of the per-CPU counter array ks_counters. */
enum kspan_counter {
  KSPAN_CNT_RB_FULL_DATA = 0,   /* data event lost: ring buffer full */
  KSPAN_CNT_RB_FULL_CONN = 1,   /* open/close event lost: ring buffer full */
  KSPAN_CNT_RB_FULL_PROC = 2,   /* exec/exit event lost: ring buffer full */
  KSPAN_CNT_COPY_FAILED = 3,    /* payload copy from user memory failed (bytes sent as a hole) */
  KSPAN_CNT_STASH_FULL = 4,     /* syscall entry not stashed: map full */
  KSPAN_CNT_CONN_FULL = 5,      /* socket not tracked: connection map update failed */
  KSPAN_CNT_EVENTS = 6,         /* records successfully written to the ring buffer */
  KSPAN_CNT_TLS_CIPHERTEXT = 7, /* syscall events of TLS connections not sent (intended) */
  KSPAN_CNT_TLS_UNBOUND = 8,    /* TLS plaintext lost: its socket could not be found */
  KSPAN_CNT_AGENT_FULL = 9,     /* an agent's child not marked at exec: ks_agent_tgids full */
  KSPAN_CNT_RB_FULL_FILE = 10,  /* file-write event lost: ring buffer full */
  KSPAN_CNT_FILE_FULL = 11,     /* an agent's file open for writing not followed: map full */
  KSPAN_CNT_TLS_CALL_FULL = 12, /* a TLS library call not followed: ks_ssl_calls full */
  KSPAN_CNT_MAX = 13,
};

struct kspan_event_header {
  __u32 type;  /* enum kspan_event_type */
  __u32 tgid;  /* process id */
  __u32 tid;   /* thread id */
  __u32 turn;  /* event-loop turn of the thread: how many waits (epoll_wait, poll, select
                * and their variants) it had returned from, mod 2^32; 0 = it never waited
                * since kspan started. Two events of one thread with the same non-zero
                * turn happened between the same two waits. */
  __u64 ts_ns; /* CLOCK_BOOTTIME ns; for syscalls, the exit */
};

/* Identity of one connection. `generation` is unique per socket kspan tracks, so a
 * reused fd number never merges two connections. */
struct kspan_conn_id {
  __u32 tgid;
  __s32 fd;
  __u64 generation;
};

struct kspan_data_event {
  struct kspan_event_header hdr;
  struct kspan_conn_id conn;
  __u64 enter_ns;     /* CLOCK_BOOTTIME ns at syscall entry */
  __u64 position;     /* stream offset of the first byte, per direction */
  __u32 total_len;    /* bytes the syscall moved */
  __u32 captured_len; /* bytes in data[], <= total_len and <= KSPAN_MAX_CAPTURE */
  __u8 direction;     /* enum kspan_direction */
  __u8 syscall;       /* enum kspan_syscall */
  __u8 role;          /* enum kspan_role at the time of the syscall */
  __u8 flags;         /* enum kspan_data_flags */
  __u8 _pad[4];
  __u8 data[KSPAN_MAX_CAPTURE]; /* only captured_len bytes are sent */
};

struct kspan_conn_event {
  struct kspan_event_header hdr;
  struct kspan_conn_id conn;
  __u16 family;      /* AF_INET or AF_INET6; AF_UNIX or 0 for other kinds (see kind) */
  __u16 local_port;  /* host byte order; 0 unless TCP */
  __u16 remote_port; /* host byte order; 0 unless TCP */
  __u8 role;         /* enum kspan_role */
  __u8 flags;        /* enum kspan_conn_flags */
  __u8 syscall;      /* enum kspan_syscall that revealed it */
  __u8 kind;         /* enum kspan_conn_kind */
  /* With KSPAN_CONN_F_BACKLOG (accept/accept4 exit): the listening socket's accept queue
   * as the accept left it (sk_ack_backlog: connections still waiting to be accepted) and
   * its bound (sk_max_ack_backlog), each capped at 65535. 0 otherwise. */
  __u16 listen_queue;
  __u16 listen_queue_max;
  __u8 _pad[2];
  /* TCP: network order, IPv4 in the first 4 bytes. UNIX and PIPE: the channel's identity,
   * host order, in the first 8 bytes: local_addr the file's inode number, remote_addr the
   * other end's (a pipe: the same inode; a Unix socket: its peer socket's, 0 when it has
   * none), so both ends of one channel name it alike. Zero for other kinds. */
  __u8 local_addr[16];
  __u8 remote_addr[16];
};

struct kspan_close_event {
  struct kspan_event_header hdr;
  struct kspan_conn_id conn;
  __u64 bytes_sent;     /* stream length, egress */
  __u64 bytes_received; /* stream length, ingress */
};

/* A cgroup's path, innermost part first: part[0] is the cgroup's own name, part[1] its
 * parent's, ... up to (not including) the hierarchy's root. `more`: the path goes on past
 * the parts kept. parts == 0: the root. */
struct kspan_cgroup_path {
  __u8 parts;
  __u8 more;
  char part[KSPAN_CGROUP_PARTS][KSPAN_CGROUP_PART_LEN];
};

struct kspan_exec_event {
  struct kspan_event_header hdr;
  __u32 ppid;
  __u32 args_len; /* bytes of args[] used: NUL-separated argv, maybe cut */
  char comm[KSPAN_COMM_LEN];
  char filename[KSPAN_PATH_LEN]; /* the path as passed to execve, symlinks unresolved */
  char args[KSPAN_ARGS_LEN];
  char exe_name[KSPAN_NAME_LEN]; /* basename of the file actually run (mm->exe_file), so a
                                  * process gone before user space reads /proc is still
                                  * named as /proc/PID/exe would name it */
  __u32 parent_tid;              /* the thread that forked it (real_parent->pid) */
  __u32 netns;                   /* its network namespace's inode (/proc/PID/ns/net), read at
                                  * exec, so a process gone before user space reads /proc is
                                  * still placed; 0 when unknown */
  /* Its cgroups at exec, what /proc/PID/cgroup would show, so a process gone before user
   * space reads /proc still names its container: the cgroup v2 path and the memory
   * controller's (cgroup v1 on a hybrid host, where runtimes put containers in v1 only;
   * on a unified host the same hierarchy). */
  struct kspan_cgroup_path cgroup_v2;
  struct kspan_cgroup_path cgroup_memory;
};

/* Unbound TLS writes (KSPAN_DATA_F_UNBOUND) of one TLS object found their socket: the
 * thread wrote to `conn` right after them. Their `bytes` bytes sit at egress positions
 * [position, position + bytes) of the connection, in the order they were sent. */
struct kspan_tls_bind_event {
  struct kspan_event_header hdr;
  struct kspan_conn_id conn;
  __u64 ssl;      /* the TLS object's address in the process */
  __u64 position; /* egress stream offset of the first unbound byte */
  __u64 bytes;    /* unbound bytes being placed */
};

struct kspan_exit_event {
  struct kspan_event_header hdr;
  __s32 exit_code; /* as wait(2) encodes it */
  __u32 _pad;
};

/* A regular file that a process in ks_agent_tgids (an agent or a tool server it started)
 * opened for writing with openat(), wrote to, and closed (bpf/file_write.bpf.c). Sent at
 * the close (hdr.ts_ns), once per open; a file opened but not written sends nothing. */
struct kspan_file_write_event {
  struct kspan_event_header hdr;
  __s32 fd;
  __u32 writes;   /* write, pwrite64, writev, pwritev calls that wrote > 0 bytes */
  __u64 bytes;    /* bytes those calls wrote (their return values) */
  __u64 first_ns; /* CLOCK_BOOTTIME ns at the first such call's return */
  __u64 last_ns;  /* ... and the last one's */
  __u32 path_len; /* bytes of path[] used, without the NUL (cut at KSPAN_PATH_LEN - 1) */
  __u32 _pad;
  char path[KSPAN_PATH_LEN]; /* as passed to openat: relative to its directory fd when not absolute */
};

/* listen() on a TCP socket by a process whose ks_select entry is
 * KSPAN_SELECTED_SKIP_UNTIL_LISTEN (bpf/sock_io.bpf.c), sent at the syscall's entry: the
 * socket is bound, so its port is known; user space decides the process again with it. */
struct kspan_listen_event {
  struct kspan_event_header hdr;
  __s32 fd;
  __u16 family; /* AF_INET or AF_INET6 */
  __u16 port;   /* local port, host order */
};

/* A new process (not a thread), sent only with selection rules (kspan/bpf/maps.h) and
 * only when its parent is not skipped: hdr.tgid and hdr.tid are the child's, hdr.turn 0.
 * A child runs its parent's program in its parent's namespaces until it execs, so user
 * space decides it as it decided the parent, without reading /proc, which a short-lived
 * child (a PostgreSQL backend) may have left by then. */
struct kspan_fork_event {
  struct kspan_event_header hdr;
  __u32 ppid; /* the parent's tgid */
  __u32 _pad;
};

#endif /* KSPAN_BPF_EVENTS_H */
