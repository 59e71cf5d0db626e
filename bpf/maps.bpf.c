/* Defines the maps and settings declared in maps.bpf.h; no programs. */
#define KSPAN_DEFINE_MAPS
#include "maps.bpf.h"

const volatile __u32 ks_self_tgid = 0;
const volatile __u32 ks_select_mode = KSPAN_SELECT_ALL;
const volatile __u32 ks_capture_bytes = KSPAN_DEFAULT_CAPTURE;
const volatile __u32 ks_llm_capture_bytes = KSPAN_MAX_CAPTURE;
const volatile __u64 ks_wakeup_bytes = 2 << 20;

char LICENSE[] SEC("license") = "GPL";
