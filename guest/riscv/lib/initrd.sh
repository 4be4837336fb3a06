# Initramfs step (sourced by build.sh): init.c -> static /init -> initrd.cpio.gz.
# build_initrd OUT_DIR WORK_DIR: writes OUT_DIR/{init,initrd.cpio.gz,initramfs.list}.

build_initrd() {
  local out=$1 work=$2
  mkdir -p "$out" "$work"
  say "initrd: compiling init.c (static, no libc)"
  "${CROSS_COMPILE}gcc" -Os -static -nostdlib -ffreestanding -fno-builtin -fno-stack-protector \
    -fno-pie -no-pie -fno-asynchronous-unwind-tables -fno-ident -Wall -Wextra -Werror \
    -Wl,--build-id=none -Wl,--no-relax -Wl,-e,_start -o "$out/init" "$KITSET_GUEST_DIR/init.c"
  "${CROSS_COMPILE}strip" "$out/init"
  # gen_init_cpio's list format; /dev/console must exist before devtmpfs is mounted so the
  # kernel can give init its stdin/stdout.
  cat >"$out/initramfs.list" <<LIST
dir /dev 0755 0 0
nod /dev/console 0600 0 0 c 5 1
dir /proc 0755 0 0
dir /sys 0755 0 0
dir /tmp 01777 0 0
file /init init 0755 0 0
LIST
  node "$KITSET_GUEST_DIR/tools/mkinitramfs.mjs" "$out/initramfs.list" "$out/initrd.cpio.gz"
  say "initrd: init $(stat -c %s "$out/init") bytes, initrd.cpio.gz $(stat -c %s "$out/initrd.cpio.gz") bytes"
  rm -rf "$work"
}
