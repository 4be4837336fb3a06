# Boot check (sourced by build.sh): boots DIR/Image + DIR/initrd.cpio.gz on qemu-system-riscv64
# through OpenSBI and waits for init's marker: with QEMU's default rv64 CPU and firmware, with the
# RV64GC CPU the ISA references use (what HyperKit implements), and with that CPU and the opensbi
# package's fw_jump (HyperKit's firmware fidelity path). boot_check DIR prints manifest lines.

BOOT_MARKER=KITSET-INIT-OK
BOOT_TIMEOUT=120
BOOT_RV64GC_CPU=rv64,h=false,sstc=false,zba=false,zbb=false,zbc=false,zbs=false
BOOT_FW_JUMP=/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.bin

# boot_once DIR NAME [qemu args...]: one boot; prints "qemu_NAME_boot_to_marker_ms=..." lines.
boot_once() {
  local dir=$1 name=$2 log=$1/boot-$2.log start marker_ms="" line status
  shift 2
  start=$(date +%s%N)
  set +e
  timeout "$BOOT_TIMEOUT" qemu-system-riscv64 -M virt -m 256M -nographic "$@" \
    -kernel "$dir/Image" -initrd "$dir/initrd.cpio.gz" -append "console=ttyS0" </dev/null 2>&1 | {
    while IFS= read -r line; do
      printf '%s\n' "$line" >>"$log"
      if [ -z "$marker_ms" ] && [[ "$line" == *"$BOOT_MARKER"* ]]; then
        marker_ms=$((($(date +%s%N) - start) / 1000000))
        echo "$marker_ms" >"$log.marker-ms"
      fi
    done
  }
  status=${PIPESTATUS[0]}
  set -e
  if [ ! -f "$log.marker-ms" ]; then
    tail -n 30 "$log" >&2
    die "boot check ($name): no $BOOT_MARKER from the guest (qemu exit $status); full log in $log"
  fi
  [ "$status" -eq 0 ] || die "boot check ($name): marker seen but qemu did not power off cleanly (exit $status); see $log"
  marker_ms=$(cat "$log.marker-ms")
  rm -f "$log.marker-ms"
  local total_ms=$((($(date +%s%N) - start) / 1000000))
  say "boot check ($name): $BOOT_MARKER after $((marker_ms / 1000)).$(printf '%03d' $((marker_ms % 1000))) s, powered off after ${total_ms} ms"
  echo "qemu_${name}_boot_to_marker_ms=$marker_ms"
  echo "qemu_${name}_boot_total_ms=$total_ms"
}

boot_check() {
  local dir=$1
  command -v qemu-system-riscv64 >/dev/null || die "qemu-system-riscv64 not found (apt-get install qemu-system-misc)"
  [ -r "$BOOT_FW_JUMP" ] || die "$BOOT_FW_JUMP not found (apt-get install opensbi)"
  say "boot check: qemu-system-riscv64 -M virt -m 256M -kernel Image -initrd initrd.cpio.gz"
  boot_once "$dir" default -bios default
  boot_once "$dir" rv64gc -bios default -cpu "$BOOT_RV64GC_CPU"
  boot_once "$dir" rv64gc_fw_jump -bios "$BOOT_FW_JUMP" -cpu "$BOOT_RV64GC_CPU"
}
