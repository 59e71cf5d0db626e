#!/usr/bin/env bash
# Installs dependencies, builds kspan and runs it on its embedded default outputs
# (console, plus OTLP/JSON lines in ./kspan-spans.jsonl). Extra arguments go to kspan.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target kspan
exec ./build/kspan "$@"
