#!/usr/bin/env bash
# A static riscv64 busybox for Kitset's guest, built from Debian 12's busybox source package (Debian
# ships no riscv64 busybox binary). Cached under ${XDG_CACHE_HOME:-~/.cache}/kitset/guest-riscv-busybox/
# by a hash of its inputs; `current` points at the last result. See guest/riscv-busybox/README.md.
#
#   bash guest/riscv-busybox/build.sh [--print-dir] [--no-boot-check]
set -euo pipefail

SOURCE_PACKAGE=busybox
SOURCE_VERSION=1.35.0-4+deb12u1
CROSS_COMPILE=riscv64-linux-gnu-
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/kitset/guest-riscv-busybox
T0=$SECONDS
PRINT_DIR=0
BOOT_CHECK=1
for arg in "$@"; do
  case $arg in
    --print-dir) PRINT_DIR=1 ;;
    --no-boot-check) BOOT_CHECK=0 ;;
    *) echo "usage: $0 [--print-dir] [--no-boot-check]" >&2; exit 2 ;;
  esac
done

say() {
  local t=$((SECONDS - T0))
  printf '[guest-riscv-busybox +%02d:%02d] %s\n' $((t / 60)) $((t % 60)) "$*" >&2
}
die() { say "ERROR: $*"; exit 1; }

versions() {
  local p
  for p in gcc-riscv64-linux-gnu binutils-riscv64-linux-gnu libc6-dev-riscv64-cross; do
    printf '%s=%s\n' "$p" "$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || echo none)"
  done
}

KEY=$( { sha256sum <"$HERE/build.sh"; sha256sum <"$HERE/config.sh"; echo "$SOURCE_PACKAGE=$SOURCE_VERSION"; versions; } | sha256sum | cut -c1-16)
OUT=$CACHE/$KEY

finish() {
  ln -sfn "$KEY" "$CACHE/current.tmp" && mv -T "$CACHE/current.tmp" "$CACHE/current"
  if [ "$PRINT_DIR" = 1 ]; then echo "$OUT"; fi
  exit 0
}

# Warm cache: no lock, no work.
if [ -x "$OUT/busybox" ]; then finish; fi

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
say "waiting for the lock $CACHE/.lock"
flock 9
if [ -x "$OUT/busybox" ]; then finish; fi
rm -rf "$CACHE"/.tmp-*

for tool in "${CROSS_COMPILE}gcc" dpkg-source apt-get make; do
  command -v "$tool" >/dev/null || die "$tool not found (bash scripts/install-deps.sh)"
done
[ -f /usr/riscv64-linux-gnu/lib/libc.a ] || die "no static glibc for riscv64: apt-get install libc6-dev-riscv64-cross"

# Debian's source package, fetched once per version with a private deb-src list (the system's apt
# configuration is left alone); apt checks it against the signed Release file.
SRC=$CACHE/source-$SOURCE_VERSION
if [ ! -f "$SRC/.complete" ]; then
  say "fetching Debian's $SOURCE_PACKAGE $SOURCE_VERSION source package"
  rm -rf "$SRC" && mkdir -p "$SRC/apt/lists/partial" "$SRC/download"
  cat >"$SRC/apt/deb-src.sources" <<SOURCES
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
  apt_opts=(-o "Dir::Etc::SourceList=$SRC/apt/deb-src.sources" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$SRC/apt/lists" -o APT::Sandbox::User=root)
  apt-get "${apt_opts[@]}" -qq update >&2 || die "apt-get update of the deb-src list failed"
  (cd "$SRC/download" && apt-get "${apt_opts[@]}" -qq source --download-only "$SOURCE_PACKAGE" && test -f "${SOURCE_PACKAGE}_${SOURCE_VERSION}.dsc") >&2 ||
    die "cannot download $SOURCE_PACKAGE=$SOURCE_VERSION's source package"
  touch "$SRC/.complete"
fi

TMP=$(mktemp -d "$CACHE/.tmp-XXXXXX")
trap 'rm -rf "$TMP"' EXIT
say "unpacking (with Debian's patches)"
dpkg-source --no-check -x "$SRC/download/${SOURCE_PACKAGE}_${SOURCE_VERSION}.dsc" "$TMP/src" >"$TMP/unpack.log" 2>&1 ||
  { tail -20 "$TMP/unpack.log" >&2; die "dpkg-source -x failed"; }

cd "$TMP/src"
say "configuring: defconfig, static, minus what a static riscv64 build cannot have"
make -s CROSS_COMPILE=$CROSS_COMPILE defconfig >"$TMP/build.log" 2>&1
# shellcheck source=guest/riscv-busybox/config.sh
source "$HERE/config.sh"
apply_config .config
make -s CROSS_COMPILE=$CROSS_COMPILE oldconfig </dev/null >>"$TMP/build.log" 2>&1
check_config .config || die "the configuration did not take (see above)"

JOBS=${KITSET_JOBS:-$(nproc)}
say "compiling with make -j$JOBS under nice (a minute or two); log: $OUT/build.log"
n=0
set +e
nice make CROSS_COMPILE=$CROSS_COMPILE -j"$JOBS" 2>&1 | while IFS= read -r line; do
  printf '%s\n' "$line" >>"$TMP/build.log"
  n=$((n + 1))
  if [ $((n % 100)) -eq 0 ]; then say "make [$n lines] ${line:0:90}"; fi
done
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then tail -40 "$TMP/build.log" >&2; die "make failed (exit $status)"; fi
file busybox | grep -q 'statically linked' || die "busybox is not statically linked"

mkdir "$TMP/out"
cp busybox "$TMP/out/busybox"
cp .config "$TMP/out/busybox.config"
make -s CROSS_COMPILE=$CROSS_COMPILE busybox.links >>"$TMP/build.log" 2>&1
cp busybox.links "$TMP/out/busybox.links" # where each applet goes: /bin/sh, /sbin/udhcpc, /usr/bin/wget, ...
grep -o "^CONFIG_[A-Z0-9_]*=y" .config >"$TMP/out/enabled.txt"
mv "$TMP/build.log" "$TMP/out/build.log"
{ echo "source $SOURCE_PACKAGE=$SOURCE_VERSION"; versions; echo "build_seconds=$((SECONDS - T0))"; } >"$TMP/out/manifest.txt"

if [ "$BOOT_CHECK" = 1 ]; then
  say "boot check: busybox sh on qemu-system-riscv64 with guest/riscv's kernel"
  KERNEL_DIR=$(bash "$ROOT/guest/riscv/build.sh" --print-dir)
  printf '%s\n' 'dir /dev 0755 0 0' 'nod /dev/console 0600 0 0 c 5 1' 'dir /bin 0755 0 0' \
    "file /bin/busybox $TMP/out/busybox 0755 0 0" 'slink /bin/sh busybox 0777 0 0' >"$TMP/boot.list"
  node "$ROOT/guest/riscv/tools/mkinitramfs.mjs" "$TMP/boot.list" "$TMP/boot.cpio.gz"
  timeout 120 qemu-system-riscv64 -M virt -m 256M -nographic -bios default -no-reboot \
    -kernel "$KERNEL_DIR/Image" -initrd "$TMP/boot.cpio.gz" \
    -append 'console=ttyS0 quiet panic=-1 rdinit=/bin/sh -- -c "echo busybox-says-$((6*7)); /bin/busybox poweroff -f"' \
    </dev/null >"$TMP/out/boot.log" 2>&1 || true
  grep -q 'busybox-says-42' "$TMP/out/boot.log" || { tail -20 "$TMP/out/boot.log" >&2; die "busybox sh did not run on QEMU"; }
  say "boot check ok: busybox sh -c printed busybox-says-42"
fi

cd /
rm -rf "$OUT"
mv -T "$TMP/out" "$OUT"
say "built $OUT/busybox ($(stat -c %s "$OUT/busybox") bytes)"
finish
