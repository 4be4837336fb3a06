#!/usr/bin/env bash
# HyperKit device tests' guest initramfs (guest/riscv-devtest): a static /init that runs the
# device checks named on the kernel command line. Cached by input hash; about a second when warm.
set -euo pipefail
exec bash "$(dirname "$0")/../../guest/riscv-devtest/build.sh"
