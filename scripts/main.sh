#!/usr/bin/env bash
# The README's main command: sets everything up (Debian packages, npm packages, the build, the riscv64
# guest image), then boots a Linux VM on HyperKit whose network is VPNKit and whose /datakit is DataKit's
# tree, all in one process (`kitset run`). Arguments go to `kitset run`, e.g.
#   bash scripts/main.sh --share DIR --publish 8080:80 -- 'serve 80'
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/prepare.sh
exec node packages/kitset/dist/src/cli.js run "$@"
