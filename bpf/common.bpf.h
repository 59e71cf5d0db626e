/* Kernel-side helpers the programs (*.bpf.c) include, in layers; a header includes only
 * the layers below it (like Falco's driver/modern_bpf/helpers/):
 *
 *   0  base.bpf.h     constants, counters, the "is this process watched" filter
 *   1  sock_id.bpf.h  fd -> struct file -> socket/pipe -> struct sock (socket identity)
 *   2  emit.bpf.h     ring-buffer records: header, data (via the scratch slot), open/close
 *   3  conn.bpf.h     connection tracking: ks_conns, generations, fd reuse
 *   4  llm.bpf.h      the LLM hint: which client connections capture more
 *      tls.bpf.h      TLS objects to sockets (above conn, used by sock_io and tls programs)
 *
 * Each header starts with its contract. Maps and load-time settings: maps.bpf.h. */
#ifndef KSPAN_COMMON_BPF_H
#define KSPAN_COMMON_BPF_H

#include "base.bpf.h"
#include "conn.bpf.h"
#include "emit.bpf.h"
#include "llm.bpf.h"
#include "sock_id.bpf.h"

#endif /* KSPAN_COMMON_BPF_H */
