#!/usr/bin/env bash
# RISC-V guest artefacts for HyperKit's tests: the kernel Image, initrd.cpio.gz and the ISA test
# programs with their QEMU reference output, cached under ~/.cache/kitset/guest-riscv/ by a hash
# of their inputs (about a second when the cache is warm). See guest/riscv/README.md.
set -euo pipefail
exec bash "$(dirname "$0")/../../guest/riscv/build.sh"
