#!/usr/bin/env bash
# Builds Kitset's RISC-V guest artefacts from Debian packages, cached by a hash of the inputs:
#   kernel  Image           linux-source-6.1, tinyconfig + kernel.config, gcc-riscv64-linux-gnu
#   initrd  initrd.cpio.gz  init.c (static, no libc) packed by tools/mkinitramfs.mjs
#   isa     isa/NAME.elf    bare-metal M-mode test programs, plus isa/NAME.expected (their
#                           UART output on qemu-system-riscv64, the reference)
# Each part is cached on its own (editing an ISA test does not rebuild the kernel) under
#   ${XDG_CACHE_HOME:-$HOME/.cache}/kitset/guest-riscv/parts/<part>-<key>/
# and the whole set is assembled in guest-riscv/<key>/ with guest-riscv/current -> <key>.
# Idempotent; a warm cache takes a fraction of a second. See guest/riscv/README.md.
#
# Options: --no-boot-check (skip booting the result on QEMU)   --print-dir (print the result dir)
# Environment: KITSET_JOBS (make -j, default nproc), KITSET_KEEP_BUILD=1 (keep the kernel tree).
set -euo pipefail
shopt -s inherit_errexit

KITSET_GUEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KITSET_T0=$SECONDS
KITSET_JOBS=${KITSET_JOBS:-$(nproc)}
CACHE_ROOT=${XDG_CACHE_HOME:-$HOME/.cache}/kitset/guest-riscv
BOOT_CHECK=1
PRINT_DIR=0
for arg in "$@"; do
  case $arg in
    --no-boot-check) BOOT_CHECK=0 ;;
    --print-dir) PRINT_DIR=1 ;;
    *) echo "usage: $0 [--no-boot-check] [--print-dir]" >&2; exit 2 ;;
  esac
done

# shellcheck source=lib/common.sh
. "$KITSET_GUEST_DIR/lib/common.sh"
# shellcheck source=lib/kernel.sh
. "$KITSET_GUEST_DIR/lib/kernel.sh"
# shellcheck source=lib/initrd.sh
. "$KITSET_GUEST_DIR/lib/initrd.sh"
# shellcheck source=lib/isa.sh
. "$KITSET_GUEST_DIR/lib/isa.sh"
# shellcheck source=lib/bootcheck.sh
. "$KITSET_GUEST_DIR/lib/bootcheck.sh"

G=$KITSET_GUEST_DIR
TOOLCHAIN=$(pkg_versions gcc-riscv64-linux-gnu gcc-12-riscv64-linux-gnu binutils-riscv64-linux-gnu \
  libc6-dev-riscv64-cross)
KERNEL_KEY=$(hash_inputs "$G/lib/common.sh" "$G/lib/kernel.sh" "$G/kernel.config" -- \
  "$(pkg_versions linux-source-6.1)" "$TOOLCHAIN")
INITRD_KEY=$(hash_inputs "$G/lib/common.sh" "$G/lib/initrd.sh" "$G/init.c" "$G/tools/mkinitramfs.mjs" -- \
  "$TOOLCHAIN" "node=$(node --version)")
mapfile -t ISA_FILES < <(find "$G/isa" -type f \( -name '*.S' -o -name '*.c' -o -name '*.h' -o -name '*.ld' \) | LC_ALL=C sort)
ISA_KEY=$(hash_inputs "$G/lib/common.sh" "$G/lib/isa.sh" "${ISA_FILES[@]}" -- \
  "$TOOLCHAIN" "$(pkg_versions qemu-system-misc)")
KEY=$(hash_inputs "$G/build.sh" "$G/lib/bootcheck.sh" -- "kernel=$KERNEL_KEY" "initrd=$INITRD_KEY" \
  "isa=$ISA_KEY" "$(pkg_versions opensbi qemu-system-misc)")
RESULT=$CACHE_ROOT/$KEY

point_current() {
  ln -sfn "$KEY" "$CACHE_ROOT/.current.$$"
  mv -T "$CACHE_ROOT/.current.$$" "$CACHE_ROOT/current"
}

finish() {
  point_current
  say "up to date: $CACHE_ROOT/current -> $KEY (Image, initrd.cpio.gz, isa/*.elf, isa/*.expected)"
  [ "$PRINT_DIR" -eq 0 ] || echo "$RESULT"
  exit 0
}

# Warm cache: nothing to take a lock for.
[ -f "$RESULT/.complete" ] && finish

mkdir -p "$CACHE_ROOT/parts"
exec 9>"$CACHE_ROOT/.lock"
if ! flock -n 9; then
  say "another build holds $CACHE_ROOT/.lock; waiting for it"
  flock 9
fi
[ -f "$RESULT/.complete" ] && finish   # the other build may have made it
# Leftovers of an interrupted build (we hold the lock, so nobody else is using them).
rm -rf "$CACHE_ROOT"/.tmp-* "$CACHE_ROOT"/parts/.tmp-* "$CACHE_ROOT/build"

# part NAME KEY FUNCTION: builds a part unless its directory is already complete.
part() {
  local name=$1 key=$2 fn=$3
  local dir=$CACHE_ROOT/parts/$name-$key
  if [ -f "$dir/.complete" ]; then
    say "$name: cached ($name-$key)" >&2
  else
    say "$name: building ($name-$key)" >&2
    local tmp=$CACHE_ROOT/parts/.tmp-$name-$$
    rm -rf "$tmp"
    "$fn" "$tmp" "$CACHE_ROOT/build/$name-$$" >&2
    touch "$tmp/.complete"
    publish_dir "$tmp" "$dir"
  fi
  echo "$dir"
}

KERNEL_DIR=$(part kernel "$KERNEL_KEY" build_kernel)
INITRD_DIR=$(part initrd "$INITRD_KEY" build_initrd)
ISA_DIR=$(part isa "$ISA_KEY" build_isa)

say "assembling $RESULT"
TMP=$CACHE_ROOT/.tmp-result-$$
rm -rf "$TMP" && mkdir -p "$TMP/isa"
ln "$KERNEL_DIR/Image" "$TMP/Image"
ln "$KERNEL_DIR/config" "$TMP/kernel.config"
ln "$INITRD_DIR/initrd.cpio.gz" "$TMP/initrd.cpio.gz"
ln "$INITRD_DIR/init" "$TMP/init"
for f in "$ISA_DIR"/*.elf "$ISA_DIR"/*.expected; do ln "$f" "$TMP/isa/"; done
{
  echo "key=$KEY"
  echo "kernel_key=$KERNEL_KEY"
  echo "initrd_key=$INITRD_KEY"
  echo "isa_key=$ISA_KEY"
  echo "kernel_build_seconds=$(cat "$KERNEL_DIR/build-seconds")"
  echo "$TOOLCHAIN"
  pkg_versions linux-source-6.1 qemu-system-misc opensbi
} >"$TMP/manifest.txt"
if [ "$BOOT_CHECK" -eq 1 ]; then
  boot_check "$TMP" >>"$TMP/manifest.txt"
else
  echo "qemu_boot_check=skipped" >>"$TMP/manifest.txt"
fi
touch "$TMP/.complete"
publish_dir "$TMP" "$RESULT"
finish
