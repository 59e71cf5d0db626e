#!/usr/bin/env bash
# kspan benchmark suite, one command: sudo bench/run.sh [--quick] [--only requests,kernel,...]
# Reliability runs instead (bench/reliability.py, docs/reliability.md):
#   sudo bench/run.sh reliability [--quick] [--only backend,storm,...] [--soak-minutes N]
# (KSPAN=/path/to/kspan sudo -E bench/run.sh measures an existing binary instead.)
# Installs the dependencies, builds kspan (build-bench/) and the bench helpers, runs every
# benchmark (under 15 minutes on 2 cores), prints the results and writes
# bench/results/latest.md (and latest.json). Prints figures; never asserts.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
if [ "$(id -u)" -ne 0 ]; then
  echo "bench/run.sh: run as root (sudo $0)" >&2
  exit 1
fi

"$root/scripts/install-deps.sh"
build="$root/build-bench"
if [ -n "${KSPAN:-}" ]; then
  # KSPAN=/path/to/kspan measures that binary instead of building this tree.
  kspan="$(realpath "$KSPAN")"
  mkdir -p "$build"
else
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKSPAN_BUILD_TESTS=OFF >/dev/null
  cmake --build "$build" -j"$(nproc)" --target kspan kspan-pipeline-bench kspan-carrier-probe kspan-store-bench >/dev/null
  kspan="$build/kspan"
fi

helpers="$build/bench-helpers"
mkdir -p "$helpers"
gcc -O2 -Wall -Wextra -o "$helpers/loadgen" "$root/bench/src/loadgen.c"
gcc -O2 -Wall -Wextra -pthread -o "$helpers/flood" "$root/bench/src/flood.c"
gcc -O2 -Wall -Wextra -o "$helpers/idleconns" "$root/bench/src/idleconns.c"
gcc -O2 -Wall -Wextra -o "$helpers/storm" "$root/bench/src/storm.c"
# the Go HTTPS server and client of the tls_go section (standard library only, no network)
GOCACHE="$helpers/gocache" GOPATH="$helpers/gopath" GOFLAGS= GOPROXY=off GO111MODULE=off \
  go build -o "$helpers/tlsapp" "$root/tests/apps/go/tlsapp.go"

# bench.py kills whatever it started and restores kernel.bpf_stats_enabled itself; this
# trap is the second line of defence if it is killed hard.
stats_before="$(cat /proc/sys/kernel/bpf_stats_enabled)"
trap 'echo "$stats_before" > /proc/sys/kernel/bpf_stats_enabled' EXIT
ulimit -n "$(ulimit -Hn)"

echo "bench: load before start: $(cut -d' ' -f1-3 /proc/loadavg) (other heavy processes skew every figure)"
if [ "${1:-}" = reliability ]; then
  shift
  exec /usr/bin/python3 "$root/bench/reliability.py" --kspan "$kspan" --helpers "$helpers" "$@"
fi
/usr/bin/python3 "$root/bench/bench.py" --kspan "$kspan" --helpers "$helpers" \
  --out "$root/bench/results/latest.md" "$@"
