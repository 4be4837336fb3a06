#!/usr/bin/env bash
# Builds the device-test initramfs (guest/riscv-devtest/init.c as /init) into
# ${XDG_CACHE_HOME:-$HOME/.cache}/kitset/guest-riscv-devtest/<key>/initrd.cpio.gz, keyed by a hash of
# its inputs, and points current/ at it. Fast (hashing only) when already built.
# Usage: bash guest/riscv-devtest/build.sh [--print-dir]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache="${XDG_CACHE_HOME:-$HOME/.cache}/kitset/guest-riscv-devtest"
gcc=riscv64-linux-gnu-gcc
command -v "$gcc" >/dev/null || { echo "riscv-devtest: $gcc not found (apt-get install gcc-riscv64-linux-gnu)" >&2; exit 1; }
key=$( { sha256sum "$here/init.c" "$repo/guest/common/nolibc.h" "$here/build.sh" "$repo/guest/riscv/tools/mkinitramfs.mjs"; "$gcc" --version | head -1; node --version; } | sha256sum | cut -c1-16)
out="$cache/$key"
if [ ! -f "$out/initrd.cpio.gz" ]; then
  echo "[riscv-devtest] building initramfs $key" >&2
  mkdir -p "$cache"
  tmp=$(mktemp -d "$cache/.tmp-XXXXXX")
  chmod 755 "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  "$gcc" -Os -static -nostdlib -ffreestanding -fno-builtin -fno-stack-protector -fno-pie -no-pie \
    -fno-asynchronous-unwind-tables -fno-ident -Wall -Wextra -Werror -Wl,--build-id=none -Wl,--no-relax \
    -Wl,-e,_start -I "$repo/guest/common" -o "$tmp/init" "$here/init.c"
  riscv64-linux-gnu-strip "$tmp/init"
  cat >"$tmp/initramfs.list" <<LIST
dir /dev 0755 0 0
nod /dev/console 0600 0 0 c 5 1
dir /proc 0755 0 0
dir /sys 0755 0 0
dir /mnt 0755 0 0
file /init init 0755 0 0
LIST
  node "$repo/guest/riscv/tools/mkinitramfs.mjs" "$tmp/initramfs.list" "$tmp/initrd.cpio.gz"
  rm -rf "$out"
  mv -T "$tmp" "$out"
  trap - EXIT
  echo "[riscv-devtest] init $(stat -c %s "$out/init") bytes, initrd $(stat -c %s "$out/initrd.cpio.gz") bytes" >&2
fi
ln -sfn "$key" "$cache/current"
if [ "${1:-}" = "--print-dir" ]; then echo "$out"; fi
