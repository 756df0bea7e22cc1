#!/usr/bin/env bash
# Best effort: builds the native part of the optional @confluentinc/kafka-javascript against the
# system's OpenSSL and zlib (its own installer downloads binaries or sources from hosts that may be
# unreachable). On failure the Confluent test suite is skipped, and says why; nothing else depends
# on it.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pkg="$(ls -d "$root"/node_modules/.pnpm/@confluentinc+kafka-javascript@*/node_modules/@confluentinc/kafka-javascript 2>/dev/null | head -1)"
[ -n "$pkg" ] || exit 0
[ -f "$pkg/build/Release/confluent-kafka-javascript.node" ] && exit 0
nodedir=""
for d in /usr "$(dirname "$(dirname "$(command -v node)")")"; do
  if [ -f "$d/include/node/node.h" ]; then nodedir="$d"; break; fi
done
if [ -z "$nodedir" ]; then
  echo "idctx: Node headers not found; @confluentinc/kafka-javascript tests will be skipped" >&2
  exit 0
fi
echo "idctx: building @confluentinc/kafka-javascript's native part (first run only, ~1-2 min)" >&2
log="$(mktemp -t idctx-ckjs-XXXXXX.log)"
pregyp="$(ls -d "$root"/node_modules/.pnpm/@mapbox+node-pre-gyp@*/node_modules/@mapbox/node-pre-gyp/bin/node-pre-gyp 2>/dev/null | head -1)"
if ( cd "$pkg" && CKJS_LINKING=dynamic npm_config_nodedir="$nodedir" timeout 600 node "$pregyp" install --fallback-to-build --nodedir="$nodedir" ) >"$log" 2>&1; then
  echo "idctx: @confluentinc/kafka-javascript built" >&2
else
  echo "idctx: could not build @confluentinc/kafka-javascript (log: $log); its tests will be skipped" >&2
fi
exit 0
