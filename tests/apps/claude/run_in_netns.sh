#!/bin/sh
# Run inside `unshare -n` (a network namespace with nothing but its own loopback, so no
# request can leave the machine), for tests/integration/tls_bun_test.cc:
#
#   run_in_netns.sh PORT CERT KEY HOME
#
# starts the LLM mock (tests/apps/llm_mock.js, node) on 127.0.0.1:PORT with CERT/KEY, then
# Claude Code's print mode once against it (ANTHROPIC_BASE_URL; the mock's certificate
# trusted through NODE_EXTRA_CA_CERTS, which Bun honours; HOME a scratch folder), prints
# Claude's answer, stops the mock and copies its request log to stderr. Bounded: the mock
# must be ready within 10 s, Claude must finish within 60 s.
set -u
port=$1 cert=$2 key=$3 home=$4
here=$(dirname "$0")
ip link set lo up || exit 3
node "$here/../llm_mock.js" "$port" "$cert" "$key" >"$home/mock.out" 2>"$home/mock.err" &
mock=$!
i=0
until grep -q '^ready' "$home/mock.out" 2>/dev/null; do
  i=$((i + 1))
  if [ "$i" -gt 100 ]; then kill "$mock"; exit 4; fi
  sleep 0.1
done
rc=0
HOME=$home ANTHROPIC_BASE_URL="https://localhost:$port" ANTHROPIC_API_KEY=sk-kspan-test \
  NODE_EXTRA_CA_CERTS=$cert DISABLE_TELEMETRY=1 DISABLE_ERROR_REPORTING=1 DISABLE_AUTOUPDATER=1 \
  CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 \
  timeout 60 "$here/node_modules/@anthropic-ai/claude-code-linux-x64/claude" -p "say hello" \
  --model claude-sonnet-4-5 || rc=$?
kill "$mock"
wait "$mock" 2>/dev/null
cat "$home/mock.err" >&2
exit "$rc"
