#!/usr/bin/env bash
# A fuzzing campaign: builds every libFuzzer harness of tests/fuzz/ with clang, ASan and
# UBSan (the `fuzz` target of a -DKSPAN_LIBFUZZER=ON build), runs each in turn for a number
# of executions, one process at a time, and prints a table of what each did. Inputs that
# found new coverage go to a working corpus under the build directory, which the next
# campaign starts from; they join the seed corpora in tests/fuzz/corpus/ only with --merge.
# tests/fuzz/README.md says more.
#
#   scripts/fuzz.sh                       every harness, 10M executions each
#   scripts/fuzz.sh --only elf_fuzz,sse_fuzz --runs 1000000 --max-time 600
#   scripts/fuzz.sh --merge               then add what is new to the seed corpora
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

runs=10000000
max_time=0 # seconds a harness may run; 0: no cap
only=""
merge=0
merge_cap=32       # new files a harness may add to its seed corpus per merge
merge_max_len=4096 # larger inputs never join a seed corpus
build_dir=build-fuzz
build=1
jobs=2
max_len="" # overrides every harness's -max_len below
timeout=10 # seconds one input may take before libFuzzer calls it a hang

usage() {
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
  cat <<EOF
options:
  --runs N          executions per harness (default $runs)
  --max-time S      stop a harness after S seconds even if short of N (default: no cap)
  --only A,B        these harnesses only (names as in tests/fuzz/, e.g. http1_fuzz)
  --max-len N       the longest input libFuzzer makes, for every harness (default: per harness)
  --timeout S       seconds one input may run before it counts as a hang (default $timeout).
                    The clock is wall time: on a busy machine a fuzzer run at low priority
                    can be starved that long on an input that takes milliseconds, so raise it
                    there (replay any timeout artifact alone to tell a hang from starvation)
  --merge           after the runs, add each working corpus's new coverage to its seed
                    corpus: at most --merge-cap files (default $merge_cap), each at most
                    --merge-max-len bytes (default $merge_max_len)
  --build-dir DIR   the fuzz build (default $build_dir); --no-build uses it as it is
  --jobs N          build parallelism (default $jobs)
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --max-time) max_time=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --max-len) max_len=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    --merge) merge=1; shift ;;
    --merge-cap) merge_cap=$2; shift 2 ;;
    --merge-max-len) merge_max_len=$2; shift 2 ;;
    --build-dir) build_dir=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --jobs) jobs=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "fuzz.sh: unknown argument '$1' (--help lists them)" >&2; exit 2 ;;
  esac
done

# The longest input each harness gets. libFuzzer's default (the largest seed, at least 4 KiB)
# would do for most; these follow what the harness reads (a request head of at most 8 KiB
# and its small-limit twin; ELF headers and tables in a small file).
default_max_len() {
  case "$1" in
    http_server_fuzz) echo 12288 ;;
    elf_fuzz) echo 16384 ;;
    *) echo 8192 ;;
  esac
}

if [ "$build" = 1 ]; then
  cc=$(command -v clang-14 || command -v clang || true)
  cxx=$(command -v clang++-14 || command -v clang++ || true)
  if [ -z "$cxx" ]; then
    echo "fuzz.sh: clang++-14 not found (scripts/install-deps.sh installs clang-14 and libclang-rt-14-dev)" >&2
    exit 1
  fi
  launcher=()
  if command -v ccache >/dev/null; then
    launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
  fi
  if [ ! -f "$build_dir/CMakeCache.txt" ]; then
    CC=$cc CXX=$cxx cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKSPAN_BUILD_TESTS=ON \
      -DKSPAN_LIBFUZZER=ON "${launcher[@]}" >/dev/null
  fi
  cmake --build "$build_dir" --target fuzz -j "$jobs" >/dev/null
fi

harnesses=()
for src in tests/fuzz/*_fuzz.cc; do
  name=$(basename "$src" .cc)
  if [ -n "$only" ] && [[ ",$only," != *",$name,"* ]]; then continue; fi
  if [ ! -x "$build_dir/fuzz/$name" ]; then
    echo "fuzz.sh: $build_dir/fuzz/$name is missing (build with --target fuzz)" >&2
    exit 1
  fi
  harnesses+=("$name")
done
if [ "${#harnesses[@]}" = 0 ]; then
  echo "fuzz.sh: no harness matches --only '$only'" >&2
  exit 2
fi

# ASan holds freed memory back (its quarantine, 256 MiB by default) to catch late uses;
# allocation-heavy harnesses then touch fresh pages all the time, which on this project's
# 2-core VMs roughly halved their speed. 64 MiB is still hundreds of inputs' worth.
export ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=64}

work="$build_dir/fuzz-work"
mkdir -p "$work"
# The value of libFuzzer's last "name: value" line for `key` in a log, or "-".
stat() { grep -o "^stat::$2: *[0-9]*" "$1" | tail -1 | awk '{print $2}' || true; }
# The last coverage report line's `key` value (cov, ft), or "-".
cov() { grep -oE "(cov|ft): [0-9]+" "$1" | grep "^$2:" | tail -1 | awk '{print $2}' || true; }

rows=()
status=0
for name in "${harnesses[@]}"; do
  bin="$build_dir/fuzz/$name"
  corpus="$work/$name/corpus"
  artifacts="$work/$name/artifacts"
  log="$work/$name/last.log"
  mkdir -p "$corpus" "$artifacts"
  before=$(find "$artifacts" -type f | wc -l)
  len=${max_len:-$(default_max_len "$name")}
  args=(-runs="$runs" -max_len="$len" -print_final_stats=1 -timeout="$timeout" -rss_limit_mb=2048
    -artifact_prefix="$artifacts/" -close_fd_mask=1)
  if [ "$max_time" != 0 ]; then args+=(-max_total_time="$max_time"); fi
  echo "fuzz.sh: $name (${runs} runs, max_len $len, log $log)" >&2
  start=$(date +%s)
  rc=0
  # New inputs go to the first directory (the working corpus); the seeds are read only.
  "$bin" "${args[@]}" "$corpus" "$root/tests/fuzz/corpus/$name" >"$log" 2>&1 || rc=$?
  secs=$(($(date +%s) - start))
  crashes=$(($(find "$artifacts" -type f | wc -l) - before))
  execs=$(stat "$log" number_of_executed_units)
  rate=$(stat "$log" average_exec_per_sec)
  rows+=("$(printf '%-18s %12s %9s %7s %8s %7s %8s %6s' "$name" "${execs:--}" "${rate:--}" \
    "$(cov "$log" cov)" "$(cov "$log" ft)" "$(find "$corpus" -type f | wc -l)" "$crashes" "$secs")")
  if [ "$rc" != 0 ] || [ "$crashes" != 0 ]; then
    status=1
    echo "fuzz.sh: $name exited $rc; artifacts in $artifacts, log $log" >&2
  fi

  if [ "$merge" = 1 ]; then
    # libFuzzer merges into a copy of the seeds only the working corpus's inputs that add
    # coverage the seeds lack (smallest first); the smallest of those join the seeds.
    seeds="$root/tests/fuzz/corpus/$name"
    scratch=$(mktemp -d)
    cp "$seeds"/* "$scratch"/
    "$bin" -merge=1 -max_len="$merge_max_len" "$scratch" "$corpus" >"$work/$name/merge.log" 2>&1
    added=0
    while read -r size file; do
      [ "$added" -lt "$merge_cap" ] || break
      [ "$size" -le "$merge_max_len" ] || continue
      [ -e "$seeds/$(basename "$file")" ] && continue
      cp "$file" "$seeds/"
      added=$((added + 1))
    done < <(find "$scratch" -type f -printf '%s %p\n' | sort -n)
    rm -rf "$scratch"
    echo "fuzz.sh: $name: $added new seed(s) in tests/fuzz/corpus/$name" >&2
  fi
done

printf '%-18s %12s %9s %7s %8s %7s %8s %6s\n' harness execs execs/s cov ft corpus crashes secs
printf '%s\n' "${rows[@]}"
exit "$status"
