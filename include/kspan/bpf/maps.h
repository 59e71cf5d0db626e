/* Keys and values of the BPF maps user space reads or writes directly (the ring buffer's
 * records are in events.h). Same rules as events.h: fixed-width fields, explicit padding,
 * explicit enum numbers; tests/unit/abi_layout_test.cc pins the layouts.
 *
 * The BPF side declares its own names for the ks_conns key and value (struct ks_fd_key,
 * struct ks_conn in bpf/maps.bpf.h, which every program uses) and checks with
 * _Static_assert that they are laid out exactly as the structs here. */
#ifndef KSPAN_BPF_MAPS_H
#define KSPAN_BPF_MAPS_H

#ifdef __BPF__
/* vmlinux.h provides __u8..__u64 */
#else
#include <linux/types.h>
#endif

/* ks_agent_tgids: tgid (__u32) -> flags (__u8), filled by user space
 * (BpfEventSource::MarkAgent): what kspan captures of that process besides TCP. */
enum kspan_agent_flags {
  KSPAN_AGENT_F_LOCAL = 1, /* its AF_UNIX stream sockets, pipes and FIFOs */
  KSPAN_AGENT_F_STDIO = 2, /* its writes to fd 1 and fd 2, whatever they are */
  /* Set by the kernel: marked at exec because its parent was marked (a tool server or
   * command an agent started; process.bpf.c). Such a process gets KSPAN_AGENT_F_LOCAL
   * only, and passes the mark on to its own children. */
  KSPAN_AGENT_F_CHILD = 4,
};

/* ks_select: tgid (__u32) -> enum kspan_select_value (__u8). How a tgid with no entry is
 * treated depends on the load-time mode (rodata ks_select_mode). */
enum kspan_select_value {
  KSPAN_SELECTED_SKIP = 0,              /* skipped: nothing of it is captured */
  KSPAN_SELECTED_TRACE = 1,             /* traced */
  KSPAN_SELECTED_SKIP_UNTIL_LISTEN = 2, /* skipped until it calls listen(): then traced
                                         * and the port reported (KSPAN_EV_LISTEN); user
                                         * space decides again (a port rule may select it)
                                         * and writes its verdict back */
};
#define KSPAN_PIDS_MAX 1024 /* --pid entries at most */
enum kspan_select_mode {
  KSPAN_SELECT_ALL = 0,   /* every process but kspan: the map is never read */
  KSPAN_SELECT_PIDS = 1,  /* --pid: only tgids whose entry is 1; the rest are skipped */
  KSPAN_SELECT_RULES = 2, /* include/exclude rules: a tgid with no entry is traced until
                           * user space decides and writes its entry; exec and exit drop
                           * the entry, so a new program or a reused pid is decided afresh */
};

/* ks_conns: what kspan knows about one (tgid, fd). */
enum kspan_fd_kind {
  KSPAN_FD_OTHER = 0, /* not tracked: remembered so the fd walk happens once per file */
  KSPAN_FD_TCP = 1,   /* a TCP socket */
  KSPAN_FD_LOCAL = 2, /* an agent's AF_UNIX stream socket, pipe or FIFO */
  KSPAN_FD_STDIO = 3, /* an agent's fd 1 or 2 that is none of the above: egress only */
};

struct kspan_fd_key {
  __u32 tgid;
  __s32 fd;
};

struct kspan_conn_state {
  __u64 file;       /* struct file * the entry was made for */
  __u64 generation; /* unique per tracked connection; 0 for KSPAN_FD_OTHER */
  __u64 pos_out;
  __u64 pos_in;
  __u8 kind; /* enum kspan_fd_kind */
  __u8 role;
  __u8 tls;
  __u8 llm;
  __u8 _pad[4];
  __u64 _reserved;
};

#endif /* KSPAN_BPF_MAPS_H */
