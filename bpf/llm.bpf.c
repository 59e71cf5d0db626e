/* The LLM hint's global function (llm.bpf.h): no programs. */
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
