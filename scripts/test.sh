#!/usr/bin/env bash
# The README's test command: set everything up, lint, then run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/prepare.sh
echo "test: lint (biome check)"
npx biome check .
node scripts/run-tests.mjs "$@"
