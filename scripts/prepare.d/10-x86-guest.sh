#!/usr/bin/env bash
# Builds (or finds cached) the x86-64 Linux test guest that boots under QEMU for real-client tests.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec bash guest/x86/build.sh
