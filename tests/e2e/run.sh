#!/usr/bin/env bash
# Runs the playground's browser tests (playground.test.js) against a tokenrelay binary it does
# not build: the path given, else $CARGO_TARGET_DIR (or target/)/debug/tokenrelay. It starts a
# fake OpenAI upstream (lib/fake_openai.js, replaying tests/fixtures/openai) and two servers on
# free loopback ports with temporary configs (memory store, built-in mock provider), one
# without keys, whose `openai` provider is the fake, and one with a key, runs the tests with
# node's test runner in headless Chromium, and stops the servers and the fake however the run
# ends.
#
#   tests/e2e/run.sh [path/to/tokenrelay] [--docs-screenshot]
#   E2E_GREP='cut mid-answer' tests/e2e/run.sh      # only the tests whose names match
#
# Needs the agent_publisher example built beside the binary, `npm ci` in tests/e2e and
# Debian's chromium (CHROMIUM overrides /usr/bin/chromium).
# Screenshots go to tests/e2e/output/; --docs-screenshot also rewrites docs/playground.png.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

bin=""
docs=""
for arg in "$@"; do
  case "$arg" in
    --docs-screenshot) docs="$repo/docs/playground.png" ;;
    *) bin="$arg" ;;
  esac
done
bin="${bin:-${CARGO_TARGET_DIR:-$repo/target}/debug/tokenrelay}"
if [ ! -x "$bin" ]; then
  echo "run.sh: no tokenrelay binary at $bin (run cargo build, or pass the binary's path)" >&2
  exit 2
fi
if [ ! -d "$here/node_modules/playwright-core" ]; then
  echo "run.sh: playwright-core is missing: run npm ci in $here" >&2
  exit 2
fi
# Absolute, since the tests run from tests/e2e.
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
# The agent test runs the real examples/agent_publisher.rs, built beside the binary.
AGENT_PUBLISHER="${AGENT_PUBLISHER:-$(dirname "$bin")/examples/agent_publisher}"
if [ ! -x "$AGENT_PUBLISHER" ]; then
  echo "run.sh: no agent_publisher example at $AGENT_PUBLISHER (cargo build --example agent_publisher)" >&2
  exit 2
fi
AGENT_PUBLISHER="$(cd "$(dirname "$AGENT_PUBLISHER")" && pwd)/$(basename "$AGENT_PUBLISHER")"
export AGENT_PUBLISHER
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then
  echo "run.sh: no Chromium at $CHROMIUM (apt-get install -y chromium)" >&2
  exit 2
fi

work="$(mktemp -d)"
pids=()
stop() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap stop EXIT

# wait_url LOG NAME PATTERN: waits for the last started process, NAME, to print its address
# (the sed pattern's \1) in $work/LOG.log and sets $url to it.
wait_url() {
  local log="$work/$1.log" name="$2" pattern="$3"
  url=""
  for _ in $(seq 100); do
    url="$(sed -n "s/$pattern/\1/p" "$log" | head -n 1)"
    [ -n "$url" ] && return 0
    if ! kill -0 "${pids[-1]}" 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "run.sh: $name did not start:" >&2
  cat "$log" >&2
  exit 1
}

# serve NAME [VAR=value...]: starts the binary with $work/NAME.toml on port 0, with the given
# environment, and sets $url to its address, read from the line it prints once it listens.
serve() {
  local name="$1"
  shift
  # Only the config file and the arguments speak: TOKENRELAY_* settings of the caller's shell
  # would override the file, and its upstream URLs and keys would reach real providers.
  local unset=()
  for var in $(compgen -e | grep -E '^(TOKENRELAY|OPENAI|ANTHROPIC|GEMINI)_' || true); do
    unset+=(-u "$var")
  done
  env "${unset[@]}" NO_COLOR=1 "$@" "$bin" --config "$work/$name.toml" >"$work/$name.log" 2>&1 &
  pids+=("$!")
  wait_url "$name" "tokenrelay ($name)" '^tokenrelay listening on \(http:[^ ]*\).*'
}

# Settings shared by both: short EventSource retry so reconnects are quick, real-time mock
# transcription, the repository's prompts.
common="listen = \"127.0.0.1:0\"
store = \"memory\"
retry_ms = 500
prompts_dir = \"$repo/prompts\"
"
printf '%s' "$common" >"$work/open.toml"
key="sk-e2e-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
printf '%s\n[[keys]]\nname = "e2e"\nkey = "%s"\n' "$common" "$key" >"$work/keyed.toml"

# The fake OpenAI upstream, first: the server without keys sends its `openai/<fixture>`
# models there, with a key of its own that the fake checks.
upstream_key="sk-fake-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
FAKE_OPENAI_KEY="$upstream_key" node "$here/lib/fake_openai.js" >"$work/fake-openai.log" 2>&1 &
pids+=("$!")
wait_url fake-openai "fake OpenAI upstream" '^fake-openai listening on \(http:[^ ]*\).*'
export FAKE_OPENAI_URL="$url"

serve open OPENAI_BASE_URL="$FAKE_OPENAI_URL" OPENAI_API_KEY="$upstream_key"
export TOKENRELAY_URL="$url"
serve keyed
export TOKENRELAY_KEYED_URL="$url"
export TOKENRELAY_E2E_KEY="$key"
export E2E_DOCS_SCREENSHOT="$docs"
export E2E_OUTPUT="$here/output"

echo "tokenrelay: $TOKENRELAY_URL (no keys, OpenAI upstream $FAKE_OPENAI_URL), $TOKENRELAY_KEYED_URL (keys); $("$CHROMIUM" --version 2>/dev/null)"
status=0
# E2E_GREP runs only the tests whose names match (node's --test-name-pattern).
filter=()
if [ -n "${E2E_GREP:-}" ]; then filter=(--test-name-pattern "$E2E_GREP"); fi
(cd "$here" && node --test --test-reporter=spec "${filter[@]}" playground.test.js) || status=$?
if [ "$status" -ne 0 ]; then
  for name in open keyed fake-openai; do
    echo "---- $name log, last lines" >&2
    tail -n 40 "$work/$name.log" >&2
  done
fi
exit "$status"
