#!/usr/bin/env bash
# Builds Kitset's x86-64 Linux test guest from Debian packages, idempotently:
#   vmlinuz            the kernel of Debian's linux-image-amd64 (downloaded, unpacked, never installed)
#   initramfs.cpio.gz  busybox-static + the modules for 9P over TCP/fd, e1000/virtio-net, fw_cfg, and our /init
#   manifest.json      what went in (kernel release, package versions, modules, cache key)
# Output goes to ${XDG_CACHE_HOME:-$HOME/.cache}/kitset/guest-x86/<key>/, where <key> hashes every input
# (package versions and the files of this folder); `current` points at the last good build.
# The test helper (@kitset/testkit runX86Guest) boots it; see guest/x86/README.md for the guest's contract.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/kitset/guest-x86"
mkdir -p "$cache_root"
log() { echo "guest-x86: $*"; }

# Modules the guest loads, in insmod order (dependencies first). Debian 6.1 builds all of these as modules:
# 9p needs netfs and fscache; virtio_net needs the virtio core (virtio needs virtio_ring), virtio-pci and
# (net_)failover; qemu_fw_cfg carries the test script in.
MODULES=(
  fs/netfs/netfs fs/fscache/fscache net/9p/9pnet net/9p/9pnet_fd fs/9p/9p
  drivers/net/ethernet/intel/e1000/e1000
  drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_modern_dev
  drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci net/core/failover drivers/net/net_failover
  drivers/net/virtio_net drivers/firmware/qemu_fw_cfg
)

# --- resolve input versions ------------------------------------------------------------------------------
candidate_of() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2 }'; }
kernel_pkg="$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')"
if [ -z "$kernel_pkg" ]; then
  log "apt lists do not know linux-image-amd64; running apt-get update"
  apt-get update -qq
  kernel_pkg="$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')"
fi
kernel_ver="$(candidate_of "$kernel_pkg")"
[ -n "$kernel_pkg" ] && [ -n "$kernel_ver" ] && [ "$kernel_ver" != "(none)" ] || {
  echo "guest-x86: cannot resolve linux-image-amd64 in apt (is Debian's archive reachable?)" >&2
  exit 1
}
busybox_bin=/bin/busybox
busybox_ver="$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null || true)"
if [ -z "$busybox_ver" ] || [ ! -x "$busybox_bin" ]; then
  echo "guest-x86: busybox-static is not installed (run scripts/install-deps.sh)" >&2
  exit 1
fi
command -v cpio >/dev/null || { echo "guest-x86: cpio is not installed (run scripts/install-deps.sh)" >&2; exit 1; }

key="$(
  {
    echo "kernel $kernel_pkg $kernel_ver"
    echo "busybox $busybox_ver"
    echo "modules ${MODULES[*]}"
    (cd "$here" && find . -type f ! -path './out/*' | LC_ALL=C sort | xargs sha256sum)
  } | sha256sum | cut -c1-16
)"
out="$cache_root/$key"
if [ -f "$out/manifest.json" ] && [ -f "$out/vmlinuz" ] && [ -f "$out/initramfs.cpio.gz" ]; then
  ln -sfn "$key" "$cache_root/current.tmp" && mv -T "$cache_root/current.tmp" "$cache_root/current"
  log "up to date ($kernel_pkg $kernel_ver, busybox $busybox_ver) at $out"
  exit 0
fi

log "building $key: kernel $kernel_pkg $kernel_ver, busybox-static $busybox_ver"
work="$(mktemp -d "$cache_root/build.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# --- kernel package: download (cached by version), unpack ------------------------------------------------
debs="$cache_root/debs"
mkdir -p "$debs"
deb="$(ls "$debs/${kernel_pkg}_${kernel_ver//:/%3a}_amd64.deb" 2>/dev/null || true)"
if [ -z "$deb" ]; then
  log "downloading $kernel_pkg=$kernel_ver"
  # apt's sandbox user cannot write root's cache; download in a folder it may write, then move.
  dl="$(mktemp -d)"
  chmod 777 "$dl"
  (cd "$dl" && apt-get download -q "$kernel_pkg=$kernel_ver" 2>&1 | grep -v 'unsandboxed' || true)
  mv "$dl"/"${kernel_pkg}"_*.deb "$debs/"
  rm -rf "$dl"
  deb="$(ls "$debs/${kernel_pkg}_${kernel_ver//:/%3a}_amd64.deb")"
fi
log "unpacking $(basename "$deb")"
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work" --wildcards './boot/vmlinuz-*' './lib/modules/*' 2>/dev/null ||
  dpkg-deb -x "$deb" "$work"
release="$(ls "$work/lib/modules" | head -n1)"
[ -f "$work/boot/vmlinuz-$release" ] || { echo "guest-x86: no vmlinuz-$release in $deb" >&2; exit 1; }

# --- initramfs tree ---------------------------------------------------------------------------------------
root="$work/initramfs"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,mnt,etc,root,run,var/run,usr/share/udhcpc}
mkdir -p "$root/lib/modules/$release"
cp "$busybox_bin" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
install -m 0755 "$here/init" "$root/init"
install -m 0755 "$here/udhcpc.script" "$root/usr/share/udhcpc/default.script"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
printf '127.0.0.1 localhost\n' >"$root/etc/hosts"
echo kitset-guest >"$root/etc/hostname"

load_list=()
for m in "${MODULES[@]}"; do
  src="$work/lib/modules/$release/kernel/$m.ko"
  if [ ! -f "$src" ]; then
    # Some kernels compress modules; take .ko.xz too, insmod (busybox) handles it.
    src="$(ls "$src".* 2>/dev/null | head -n1 || true)"
  fi
  if [ -z "$src" ] || [ ! -f "$src" ]; then
    if grep -q "kernel/$m.ko" "$work/lib/modules/$release/modules.builtin" 2>/dev/null; then
      log "module $m is built in"
      continue
    fi
    echo "guest-x86: module $m not found in $kernel_pkg" >&2
    exit 1
  fi
  cp "$src" "$root/lib/modules/$release/"
  load_list+=("$(basename "$src")")
done
printf '%s\n' "${load_list[@]}" >"$root/lib/modules/$release/load-order"

log "packing initramfs (${#load_list[@]} modules)"
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --owner 0:0 --quiet) | gzip -9n >"$work/initramfs.cpio.gz"

mkdir -p "$work/out"
mv "$work/initramfs.cpio.gz" "$work/out/"
cp "$work/boot/vmlinuz-$release" "$work/out/vmlinuz"
cat >"$work/out/manifest.json" <<JSON
{
  "key": "$key",
  "kernelPackage": "$kernel_pkg",
  "kernelVersion": "$kernel_ver",
  "kernelRelease": "$release",
  "busyboxVersion": "$busybox_ver",
  "modules": [$(printf '"%s",' "${load_list[@]}" | sed 's/,$//')]
}
JSON
rm -rf "$out"
mv "$work/out" "$out"
ln -sfn "$key" "$cache_root/current.tmp" && mv -T "$cache_root/current.tmp" "$cache_root/current"

# Keep the cache small: older builds are only kept while something might still boot them.
for old in "$cache_root"/*; do
  [ -L "$old" ] && continue
  case "$(basename "$old")" in "$key" | debs | build.*) continue ;; esac
  [ -d "$old" ] && rm -rf "$old"
done
for oldDeb in "$debs"/*.deb; do
  [ "$oldDeb" = "$deb" ] || rm -f "$oldDeb"
done
log "built $out ($(du -h "$out/vmlinuz" | cut -f1) kernel, $(du -h "$out/initramfs.cpio.gz" | cut -f1) initramfs)"
