#!/usr/bin/env bash
# The README's first command: set up what is missing, then run the daemon in the foreground with its defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec "$(bash scripts/node.sh)" bin/silo daemon "$@"
