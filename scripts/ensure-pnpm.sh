#!/usr/bin/env bash
# Prints the path of a pnpm matching package.json's packageManager, installing it into .tools/
# on first use (no global install, no corepack signature issues, works as any user).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
want="$(node -p "require('$root/package.json').packageManager.split('@')[1]")"
local_bin="$root/.tools/node_modules/.bin/pnpm"
if [ -x "$local_bin" ] && [ "$("$local_bin" --version 2>/dev/null)" = "$want" ]; then
  echo "$local_bin"; exit 0
fi
if command -v pnpm >/dev/null 2>&1 && [ "$(pnpm --version 2>/dev/null)" = "$want" ]; then
  command -v pnpm; exit 0
fi
echo "idctx: installing pnpm@$want into .tools/ (first run only)" >&2
mkdir -p "$root/.tools"
npm install --prefix "$root/.tools" --no-audit --no-fund --loglevel=error "pnpm@$want" >&2
echo "$local_bin"
