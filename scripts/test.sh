#!/usr/bin/env bash
# The README's second command (npm test): set up what is missing, then run every test. End-to-end tests start their
# own daemons with state under /var/lib/silo-test-*, so a daemon the user runs is never touched.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
shopt -s nullglob
files=(dist/test/unit/*.test.js dist/test/e2e/*.test.js)
exec "$(bash scripts/node.sh)" --test --test-concurrency=1 --test-reporter=spec "${files[@]}"
