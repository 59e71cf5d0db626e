/* Kernel-side helpers the programs (*.bpf.c) include, in layers; a header includes only
 * the layers below it (like Falco's driver/modern_bpf/helpers/):
 *
 *   0  base.bpf.h     constants, counters, the "is this process watched" filter
 *   1  sock_id.bpf.h  fd -> struct file -> socket/pipe -> struct sock (socket identity)
 *   2  emit.bpf.h     ring-buffer records: header, data (via the scratch slot), open/close
 *   3  conn.bpf.h     connection tracking: ks_conns, generations, fd reuse
 *   4  llm.bpf.h      the LLM hint: which client connections capture more (its global
 *                     function is defined in llm.bpf.c, an object without programs)
 *      tls.bpf.h      TLS objects to sockets (above conn, used by sock_io and tls programs)
 *
 * Each header starts with its contract. Maps and load-time settings: maps.bpf.h.
 *
 * Verifier cost: a static helper is checked again for every state of every caller that
 * reaches it. A large helper with many branches that needs no pointer into the caller's
 * state is better a global function (ks_llm_request_line, sock_io.bpf.c ks_tls_syscall):
 * checked once per program, on its own. Measure with a log-level-4 load (processed insns,
 * verification time) before and after. */
#ifndef KSPAN_COMMON_BPF_H
#define KSPAN_COMMON_BPF_H

#include "base.bpf.h"
#include "conn.bpf.h"
#include "emit.bpf.h"
#include "llm.bpf.h"
#include "sock_id.bpf.h"

#endif /* KSPAN_COMMON_BPF_H */
