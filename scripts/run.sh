#!/usr/bin/env bash
# Installs what building and running needs (Debian packages, and npm for the web UI's graph layout library only: no test tools),
# builds kspan without its tests and runs it on its embedded default outputs (console,
# plus OTLP/JSON lines in ./kspan-spans.jsonl). Extra arguments go to kspan.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --runtime
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKSPAN_BUILD_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" --target kspan
# The web UI (docs/ui.md): on by default, this host only. kspan logs {"msg":"web UI","url":...}
# with the address it really serves (--listen moves it; a taken port costs the UI, with a warning).
echo "kspan: web UI at http://127.0.0.1:9464/ once it is ready (see the \"web UI\" log line)" >&2
exec ./build/kspan "$@"
