#!/usr/bin/env bash
# Installs the Debian packages Kitset's tests and benchmarks need. Idempotent:
# packages already present are skipped, and apt is only consulted when something is missing.
set -euo pipefail

PACKAGES=(
  # 9P peers and the Linux guest used as a real 9P/TCP client
  diod qemu-system-x86 busybox-static cpio
  # VPNKit peers: Linux's own stack in a namespace, and the anchors
  iproute2 iputils-ping curl dnsutils dnsmasq-base iperf3 tshark slirp4netns passt
  # HyperKit: RISC-V reference emulator, firmware and cross compiler
  qemu-system-misc qemu-utils opensbi device-tree-compiler gcc-riscv64-linux-gnu binutils-riscv64-linux-gnu
  linux-source-6.1 bc flex bison libelf-dev libssl-dev
  # riscv64 busybox for the guest: static glibc and dpkg-source (Debian source package)
  libc6-dev-riscv64-cross dpkg-dev
  # DataKit peers
  git
  # native addon build
  make g++ python3
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} Debian packages present"
  exit 0
fi

echo "install-deps: installing ${#missing[@]} Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: must run as root to apt-get install (missing: ${missing[*]})" >&2
  exit 1
fi
# tshark asks whether non-root users may capture; answer once, non-interactively.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: done"
