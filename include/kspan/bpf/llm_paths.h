/* The kernel's LLM hint, defined once for the BPF side (bpf/llm.bpf.h ks_llm_request) and
 * for the unit test that checks it covers what user space calls an LLM request
 * (tests/unit/llm_paths_test.cc against userspace/genai/ RecognizeRequest).
 *
 * A client's request marks its connection as carrying LLM API calls when its first bytes
 * are a request line
 *
 *   POST <path>[?query | #fragment] HTTP/1.x
 *        └─ within the first KSPAN_LLM_PATH_SCAN bytes after "POST "
 *
 * and <path>, without trailing '/', ends with one of KSPAN_LLM_PATH_SUFFIXES:
 * OpenAI-compatible APIs (…/chat/completions, …/completions, …/responses, …/embeddings),
 * Anthropic (…/messages) and Ollama (/api/chat, /api/generate, /api/embed, and
 * /api/embeddings through …/embeddings). User space makes the exact call; the hint must
 * only never miss one (a false match costs bigger events on that one connection).
 *
 * Plain C for both compilers: the buffer is indexed through KSPAN_MAX_CAPTURE - 1 masks,
 * as the verifier needs, so `d` must hold KSPAN_MAX_CAPTURE bytes (the scratch slot). */
#ifndef KSPAN_BPF_LLM_PATHS_H
#define KSPAN_BPF_LLM_PATHS_H

#include "kspan/bpf/events.h"

#define KSPAN_LLM_PATH_SCAN 256 /* request-line bytes searched for the end of the path */

/* X(suffix) for each path ending that marks a connection. */
#define KSPAN_LLM_PATH_SUFFIXES(X) \
  X("/completions")                \
  X("/responses")                  \
  X("/embeddings")                 \
  X("/messages")                   \
  X("/api/chat")                   \
  X("/api/generate")               \
  X("/api/embed")

#ifdef __BPF__
#define KSPAN_LLM_INLINE static __always_inline
#define KSPAN_LLM_UNROLL _Pragma("unroll")
#else
#define KSPAN_LLM_INLINE static inline
#define KSPAN_LLM_UNROLL
#endif

#define KSPAN_LLM_MASK (KSPAN_MAX_CAPTURE - 1)

/* True when the `captured` bytes at d can start a marking request: "POST " and enough
 * bytes for a path and a version. */
KSPAN_LLM_INLINE int kspan_llm_is_post(const __u8* d, __u32 captured) {
  return captured >= 16 && d[0] == 'P' && d[1] == 'O' && d[2] == 'S' && d[3] == 'T' && d[4] == ' ';
}

struct kspan_llm_path_scan {
  __u32 captured; /* bytes at d */
  __u32 end;      /* out: index one past the path's last byte that is not a '/' */
  __u32 found;    /* out: 1 once the byte that ends the path (' ', '?', '#') was seen */
};

/* Step i (0 <= i < KSPAN_LLM_PATH_SCAN) of the scan for the end of the path: looks at
 * d[5 + i]. Returns 1 when the scan is over (the path ended, or the bytes did). The BPF
 * side runs it from a bpf_loop callback, so the verifier checks it once. */
KSPAN_LLM_INLINE int kspan_llm_path_step(struct kspan_llm_path_scan* scan, const __u8* d, __u32 i) {
  const __u32 at = i + 5; /* after "POST " */
  if (at >= scan->captured) return 1;
  const __u8 ch = d[at & KSPAN_LLM_MASK];
  if (ch == ' ' || ch == '?' || ch == '#') {
    scan->found = 1;
    return 1;
  }
  if (ch != '/') scan->end = at + 1;
  return 0;
}

KSPAN_LLM_INLINE int kspan_llm_ends_with(const __u8* d, __u32 end, const char* lit, __u32 n) {
  if (end < n) return 0;
  KSPAN_LLM_UNROLL
  for (__u32 i = 0; i < n; i++) {
    if (d[(end - n + i) & KSPAN_LLM_MASK] != (__u8)lit[i]) return 0;
  }
  return 1;
}

#define KSPAN_LLM_ENDS_WITH_OR(lit) kspan_llm_ends_with(d, end, lit, sizeof(lit) - 1) ||

/* True when the path that ends (without trailing '/') at index `end` of d ends with one
 * of KSPAN_LLM_PATH_SUFFIXES. */
KSPAN_LLM_INLINE int kspan_llm_path_matches(const __u8* d, __u32 end) {
  return KSPAN_LLM_PATH_SUFFIXES(KSPAN_LLM_ENDS_WITH_OR) 0;
}

#endif /* KSPAN_BPF_LLM_PATHS_H */
