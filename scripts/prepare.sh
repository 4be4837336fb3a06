#!/usr/bin/env bash
# Everything the tests and the main job need, idempotently: Debian packages, npm packages,
# the TypeScript build, then each component's own preparation step in scripts/prepare.d/
# (native addons, guest images), in name order. Each step prints its own progress.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
else
  npm install --no-audit --no-fund --loglevel=error
fi
echo "prepare: building TypeScript (tsc -b)"
npx tsc -b && npx tsc -b bench
node scripts/bundle.mjs
for step in scripts/prepare.d/*.sh; do
  [ -e "$step" ] || continue
  echo "prepare: $step"
  bash "$step"
done
echo "prepare: done"
