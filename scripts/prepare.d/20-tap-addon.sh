#!/usr/bin/env bash
# Builds @kitset/tap's native addon (packages/tap/native, plain N-API C) with node-gyp; vpnkit and hyperkit use it.
# Idempotent: skipped when the built addon is newer than its sources.
set -euo pipefail
cd "$(dirname "$0")/../../packages/tap/native"
out=build/Release/kitset_tap.node
if [ -f "$out" ] && [ "$out" -nt tap.c ] && [ "$out" -nt binding.gyp ]; then
  echo "tap-addon: up to date ($out)"
  exit 0
fi
gyp="$(npm prefix -g)/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"
[ -f "$gyp" ] || gyp="$(dirname "$(command -v node)")/../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"
args=(rebuild --loglevel=warn)
# Use the installed Node's headers when present, so no download from nodejs.org is needed.
node_prefix="$(dirname "$(dirname "$(command -v node)")")"
if [ -f "$node_prefix/include/node/node_api.h" ]; then args+=(--nodedir="$node_prefix"); fi
echo "tap-addon: building with node-gyp ${args[*]}"
node "$gyp" "${args[@]}"
echo "tap-addon: built $out"
