#!/usr/bin/env bash
# The README's main command. For now: a 9P server exporting a directory (default ./export) on
# tcp://127.0.0.1:5640. Mount it from Linux with:
#   mount -t 9p -o trans=tcp,port=5640,version=9p2000.L 127.0.0.1 /mnt
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/prepare.sh
exec node packages/ninep/dist/src/cli.js serve "${@:-./export}"
