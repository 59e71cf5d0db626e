#!/usr/bin/env bash
# Installs everything kspan needs to build, run and test on Debian 12, as root.
# Idempotent: when every package is already there it only checks, and returns at once.
#
#   scripts/install-deps.sh             build, run and test (apt and npm)
#   scripts/install-deps.sh --runtime   build and run only: Debian packages, and the web UI's
#                                       graph layout library (npm ci in userspace/ui/vendor)
set -euo pipefail

runtime_only=0
case "${1:-}" in
  --runtime) runtime_only=1 ;;
  "") ;;
  *) echo "install-deps.sh: unknown argument '$1' (--runtime, or nothing)" >&2; exit 2 ;;
esac

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: run as root (sudo $0)" >&2
  exit 1
fi

# What building and running kspan needs (scripts/run.sh, a release build).
runtime_packages=(
  build-essential cmake pkg-config clang llvm git
  libbpf-dev bpftool libelf-dev zlib1g-dev libbrotli-dev libjemalloc-dev
  libyaml-cpp-dev nlohmann-json3-dev
  # HPACK (HTTP/2 and gRPC header compression): nghttp2's inflater
  libnghttp2-dev
  # x86-64 decoding of Go's crypto/tls functions (RET probes: userspace/tls/go_binary.h)
  libcapstone-dev
  # the embedded trace store behind the web UI and the Jaeger query API (userspace/store/)
  libsqlite3-dev
  # --redact patterns: linear-time regular expressions (userspace/processors/span_attributes.h)
  libre2-dev
  # network exporters: OTLP protobuf messages, OTLP/gRPC, OTLP/HTTP and Zipkin, gzip
  libprotobuf-dev protobuf-compiler libgrpc++-dev protobuf-compiler-grpc libcurl4-openssl-dev
  # node, for npm: the web UI's graph layout library is installed from its lock file at
  # build time and embedded in the binary (userspace/ui/vendor, docs/ui.md)
  nodejs
)
packages=(
  "${runtime_packages[@]}"
  clang-format-14
  # the systemd unit's checks (tests/unit/deploy_test.cc: systemd-analyze)
  systemd
  # the Helm chart's renderer (deploy/helm/render: Helm's engine, Go text/template + sprig)
  golang-go golang-github-masterminds-sprig-dev golang-gopkg-yaml.v3-dev
  # (golang-go also builds the Go HTTPS server and client of tests/integration/tls_go_test.cc)
  # a Rust HTTPS client on rustls (tests/apps/rustls), built offline by
  # tests/integration/tls_rustls_test.cc with Debian's cargo and crates
  cargo librust-rustls-dev binutils
  # tests and benchmarks
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  # libFuzzer and the sanitizers' runtimes for the fuzz build (scripts/fuzz.sh)
  clang-14 libclang-rt-14-dev
  # real programs the integration tests drive
  curl python3 nodejs nginx-light iproute2 procps openssl
  # a Prometheus text parser we did not write, to read /metrics back (docs/metrics.md)
  python3-prometheus-client
  # promtool (Debian's prometheus): `promtool check metrics` on /metrics (tests/integration/metrics_test.cc)
  prometheus
  # a real memcached and a real client library for its integration test (docs/databases.md)
  memcached python3-pymemcache
  # a real Redis server, redis-cli and redis-benchmark (redis-tools) for its integration test
  redis-server redis-tools
  # a real PostgreSQL server, psql and psycopg2 for its integration test
  postgresql postgresql-client python3-psycopg2
  # a real MariaDB server, the mariadb client, pymysql, and DBD::MariaDB (libmariadb) for
  # server-side prepared statements (tests/integration/mysql_test.cc)
  mariadb-server mariadb-client python3-pymysql libdbd-mariadb-perl
  # redis-py for the three-store web service (tests/apps/db_service.py)
  python3-redis
  # aiohttp: the W3C Trace Context test suite's harness (w3c/trace-context test/test.py), run by
  # hand against tests/apps/w3c_service.py with --carrier http-header (docs/tracing.md)
  python3-aiohttp
  # ab: HTTP/1.0 keep-alive bursts on one connection (tests/integration/reliability_test.cc)
  apache2-utils
  # HTTP/2 and gRPC integration tests: Debian's gRPC for Python; h2load for bench/run.sh;
  # httpx with h2 as an LLM client over HTTP/2 (tests/apps/llm_h2_client.py)
  python3-grpcio nghttp2-client python3-httpx python3-h2
  # h2c by Upgrade: Apache's mod_http2 answers it (nginx does not), nghttp -u asks for it
  apache2
  # load generators for bench/run.sh
  wrk
  # containers for the container-identity test (tests/integration/container_test.cc;
  # runc: podman's default crun refuses hybrid cgroup hierarchies), and debootstrap for
  # the image test's debian:12 base where no registry is reachable
  # (tests/integration/image_test.cc, deploy/container/base-image.sh)
  podman runc debootstrap
  # a real browser for the web UI's end-to-end test (tests/integration/ui_test.cc)
  chromium
)

if [ "$runtime_only" = 1 ]; then packages=("${runtime_packages[@]}"); fi
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Packages like nginx start their service on install; the tests run their own instances,
  # so keep the package scripts from starting anything while we install.
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod +x "$policy"
    created_policy=1
  fi
  trap '[ "$created_policy" = 1 ] && rm -f "$policy"' EXIT
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm ships with the node build these machines carry; Debian's own npm package is a
# fallback for a machine that has Debian's nodejs.
if ! command -v npm >/dev/null; then
  echo "install-deps.sh: installing npm"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null
fi
# npm_ci_once DIR (relative to the repo root): `npm ci` runs only when node_modules was not
# installed from this very lock file: the stamp is a copy of the lock file inside
# node_modules, so a changed lock or a wiped node_modules means a fresh `npm ci`.
npm_ci_once() {
  local dir stamp
  dir="$(cd "$(dirname "$0")/../$1" && pwd)"
  stamp="$dir/node_modules/.kspan-installed-lock.json"
  if ! cmp -s "$dir/package-lock.json" "$stamp"; then
    echo "install-deps.sh: npm ci in $1"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    cp "$dir/package-lock.json" "$stamp"
  fi
}
# The web UI's graph layout (@dagrejs/dagre), pinned by its lock file: the build embeds its
# script in the binary (cmake/EmbedAssets.cmake), so the UI needs no network at run time.
npm_ci_once userspace/ui/vendor

if [ "$runtime_only" = 1 ]; then
  echo "install-deps.sh: build and run dependencies present (--runtime: no test dependencies)"
  exit 0
fi

# The export tests' receivers (tests/receivers): OpenTelemetry's own JS decoder, a gRPC
# server, genkit's telemetry server and the Zipkin exporter, pinned by package-lock.json.
npm_ci_once tests/receivers
# The gen_ai tests' clients (tests/apps/llm_*_client.js): the real openai and
# @anthropic-ai/sdk packages, sending to tests/apps/llm_mock.js.
npm_ci_once tests/apps/llm
# The uninstrumented multi-agent app (tests/apps/agents): openai and @modelcontextprotocol/sdk.
npm_ci_once tests/apps/agents
# The gRPC tests' node client (tests/apps/grpc/grpc_client.js): the real @grpc/grpc-js.
npm_ci_once tests/apps/grpc
# Bun from npm (tests/apps/bun): its single stripped binary with BoringSSL inside, for
# tests/integration/tls_bun_test.cc.
npm_ci_once tests/apps/bun
# Claude Code from npm (tests/apps/claude: its Linux x64 package, a Bun 1.4.6 single-file
# binary), run against the LLM mock in a network namespace by tests/integration/tls_bun_test.cc.
npm_ci_once tests/apps/claude
# The deployment checks (tests/deploy): the Kubernetes API's JSON schemas and a YAML reader.
npm_ci_once tests/deploy
# The web UI's end-to-end test (tests/apps/ui/drive.mjs): playwright-core drives Debian's
# chromium (below); it never downloads a browser.
npm_ci_once tests/apps/ui

# tracefs: libbpf resolves tracepoints through it; kspan mounts it itself when missing,
# but mounting here too keeps `bpftool`-based checks working.
if [ ! -d /sys/kernel/tracing/events ] && [ -d /sys/kernel/tracing ]; then
  mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
fi
echo "install-deps.sh: all dependencies present"
