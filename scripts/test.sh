#!/usr/bin/env bash
# Installs dependencies, builds kspan and its tests, and runs every test (unit, bpf,
# integration, fuzz replay). Privileged tests need root and a kernel that loads eBPF:
# where it cannot, they fail and say why.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKSPAN_BUILD_TESTS=ON >/dev/null
cmake --build build -j"$(nproc)"
cd build
ctest --output-on-failure -j"$(nproc)" --timeout 600 "$@"
