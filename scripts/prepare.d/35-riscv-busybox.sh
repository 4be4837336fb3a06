#!/usr/bin/env bash
# A static riscv64 busybox for kitset's guest, built from Debian 12's busybox source package and cached
# under ~/.cache/kitset/guest-riscv-busybox/ (about a minute cold, instant warm). See guest/riscv-busybox/README.md.
set -euo pipefail
exec bash "$(dirname "$0")/../../guest/riscv-busybox/build.sh"
