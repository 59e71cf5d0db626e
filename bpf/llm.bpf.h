/* Layer 4, the LLM hint: a cheap kernel-side guess that a client connection carries LLM
 * API calls, so its events capture more (ks_llm_capture_bytes) and a large request goes
 * out in chunks. User space decides what is an LLM call (userspace/genai/); this guess
 * only has to cover it (tests/unit/llm_paths_test.cc checks so).
 *
 * Contract: reads the first bytes of a request already in the scratch slot; writes no
 * map (the caller sets ks_conn.llm). A false match only costs bigger events on that one
 * connection; a miss costs the fields past ks_capture_bytes. */
#ifndef KSPAN_LLM_BPF_H
#define KSPAN_LLM_BPF_H

#include "base.bpf.h"
#include "emit.bpf.h"
#include "kspan/bpf/llm_paths.h"

#include <bpf/bpf_helpers.h>

/* On a connection marked llm, a flat buffer larger than ks_llm_capture_bytes goes out as
 * up to KS_LLM_MAX_CHUNKS events of that size at consecutive stream positions, the last
 * one carrying the rest of the length (a hole past its captured bytes): LLM requests put
 * parameters after prompts of tens of KiB. The first chunk is already in s->ev.data (m as
 * for one event); buf is the user buffer. Anything else is one event. A global function,
 * defined once in llm.bpf.c: its unrolled chunks are verified on their own, once per
 * program, not again for every state of each caller (ks_ex_data and the TLS uprobes). */
#define KS_LLM_MAX_CHUNKS 4
int ks_submit_data_chunked(struct ks_scratch *s, __u64 pid_tgid, struct ks_data_meta *m, __u64 buf, int llm);

/* LLM API calls carry the fields kspan reads (model, usage, finish reasons) anywhere in
 * JSON bodies of many KiB, so their connections capture more (docs/genai.md). Which
 * client requests mark their connection (a POST to a path with an LLM API's ending) is
 * defined once, with the kernel and the test, in kspan/bpf/llm_paths.h. */

/* True when the `captured` bytes in this CPU's scratch slot (ks_scratch_slot) start an LLM
 * API request (see above). A global function, defined once in llm.bpf.c: the verifier
 * checks it on its own, once per program, instead of walking its branches (the request
 * line scan and seven suffix compares) again for every state of the caller. */
int ks_llm_request_line(__u32 captured);

/* ks_llm_request_line for the bytes in s->ev.data (s: this CPU's scratch slot). */
static __always_inline int ks_llm_request(const struct ks_scratch *s, __u32 captured) {
  return ks_llm_request_line(captured);
}

/* Bytes to capture of a `total`-byte event on a connection (llm: see ks_llm_request). */
static __always_inline __u32 ks_capture_limit(int llm, __u32 total) {
  const __u32 cap = llm && ks_llm_capture_bytes > ks_capture_bytes ? ks_llm_capture_bytes : ks_capture_bytes;
  return total < cap ? total : cap;
}

#endif /* KSPAN_LLM_BPF_H */
