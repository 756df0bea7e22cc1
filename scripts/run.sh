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

services() {
  # Prints `export KAFKA_BROKERS=…` and `export REDIS_URL=…`; starts the broker if needed.
  eval "$(node scripts/broker.mjs env)"
}

case "$task" in
  test)
    "$PNPM" exec tsc -b
    services
    "$PNPM" exec vitest run "$@"
    ;;
  unit)
    "$PNPM" exec vitest run --project unit "$@"
    ;;
  demo)
    "$PNPM" exec tsc -b
    services
    "$PNPM" --filter @idctx/example-demo run demo "$@"
    ;;
  bench)
    "$PNPM" exec tsc -b
    services
    "$PNPM" --filter @idctx/bench run bench "$@"
    ;;
  *)
    echo "usage: scripts/run.sh test|unit|demo|bench" >&2
    exit 2
    ;;
esac
