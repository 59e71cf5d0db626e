/* The LLM hint's global functions (llm.bpf.h): no programs. */
#include "llm.bpf.h"

#include <bpf/bpf_helpers.h>

/* bpf_loop callback over the request line: the verifier checks it once, where an inline
 * loop with an early exit would be explored once per exit point. */
static long ks_find_path_end(__u32 i, void *arg) {
  struct ks_scratch *s = ks_scratch_slot();
  if (!s) return 1;
  return kspan_llm_path_step(arg, s->ev.data, i);
}

__attribute__((noinline)) int ks_llm_request_line(__u32 captured) {
  if (ks_llm_capture_bytes <= ks_capture_bytes) return 0;
  /* The caller's slot: a program runs on one CPU from start to end. */
  struct ks_scratch *s = ks_scratch_slot();
  if (!s) return 0;
  const __u8 *d = s->ev.data;
  if (!kspan_llm_is_post(d, captured)) return 0;
  struct kspan_llm_path_scan scan = {.captured = captured};
  bpf_loop(KSPAN_LLM_PATH_SCAN, ks_find_path_end, &scan, 0);
  if (!scan.found || scan.end >= KSPAN_LLM_PATH_SCAN + 5) return 0;
  return kspan_llm_path_matches(d, scan.end);
}

__attribute__((noinline)) int ks_submit_data_chunked(struct ks_scratch *s, __u64 pid_tgid,
                                                     struct ks_data_meta *m, __u64 buf, int llm) {
  if (!s || !m) return 0;
  const __u32 chunk = ks_llm_capture_bytes;
  const __u32 total = m->total;
  if (!llm || chunk == 0 || total <= chunk) {
    ks_submit_data(s, pid_tgid, m);
    return 0;
  }
  const __u64 base = m->position;
#pragma unroll
  for (__u32 k = 0; k < KS_LLM_MAX_CHUNKS; k++) {
    const __u32 off = k * chunk;
    if (off >= total) break;
    const int last = k == KS_LLM_MAX_CHUNKS - 1 || total - off <= chunk;
    m->position = base + off;
    m->total = last ? total - off : chunk;
    if (k > 0) m->captured = ks_copy_flat(s, buf + off, m->total < chunk ? m->total : chunk);
    ks_submit_data(s, pid_tgid, m);
    if (last) break;
  }
  return 0;
}
