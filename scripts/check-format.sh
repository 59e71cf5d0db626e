#!/usr/bin/env bash
# Fails when a tracked C/C++ file drifts from .clang-format (clang-format 14, pinned by
# Debian 12). Prints each drifting file and how to fix it. Run by CTest (hygiene.format).
set -euo pipefail
cd "$(dirname "$0")/.."
cf=$(command -v clang-format-14 || command -v clang-format || true)
if [ -z "$cf" ]; then
  echo "check-format.sh: clang-format-14 not found (scripts/install-deps.sh installs it)" >&2
  exit 1
fi
mapfile -t files < <(git ls-files '*.cc' '*.h' '*.c' 2>/dev/null || find userspace bpf include tests bench -name '*.cc' -o -name '*.h' -o -name '*.c')
drift=()
# One clang-format run over every file (fast); only when it finds drift, one run per file
# to name them.
if ! printf '%s\0' "${files[@]}" | xargs -0 -n 64 "$cf" --dry-run --Werror >/dev/null 2>&1; then
  for f in "${files[@]}"; do
    [ -f "$f" ] || continue
    "$cf" --dry-run --Werror "$f" >/dev/null 2>&1 || drift+=("$f")
  done
fi
if [ "${#drift[@]}" -gt 0 ]; then
  printf 'check-format.sh: %d file(s) drift from .clang-format:\n' "${#drift[@]}" >&2
  printf '  %s\n' "${drift[@]}" >&2
  echo "fix: $cf -i <file>   (or: git ls-files '*.cc' '*.h' '*.c' | xargs $cf -i)" >&2
  exit 1
fi
echo "check-format.sh: ${#files[@]} files match .clang-format"
