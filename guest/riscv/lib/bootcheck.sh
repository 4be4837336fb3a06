# Boot check (sourced by build.sh): boots DIR/Image + DIR/initrd.cpio.gz on qemu-system-riscv64
# through Debian's OpenSBI and waits for init's marker. boot_check DIR prints manifest lines.

BOOT_MARKER=KITSET-INIT-OK
BOOT_TIMEOUT=120

boot_check() {
  local dir=$1 log=$1/boot-check.log start now marker_ms="" line status
  command -v qemu-system-riscv64 >/dev/null || die "qemu-system-riscv64 not found (apt-get install qemu-system-misc)"
  say "boot check: qemu-system-riscv64 -M virt -bios default (OpenSBI) -kernel Image -initrd initrd.cpio.gz" >&2
  start=$(date +%s%N)
  set +e
  timeout "$BOOT_TIMEOUT" qemu-system-riscv64 -M virt -m 256M -nographic -bios default \
    -kernel "$dir/Image" -initrd "$dir/initrd.cpio.gz" -append "console=ttyS0" </dev/null 2>&1 | {
    while IFS= read -r line; do
      printf '%s\n' "$line" >>"$log"
      if [ -z "$marker_ms" ] && [[ "$line" == *"$BOOT_MARKER"* ]]; then
        now=$(date +%s%N)
        marker_ms=$(((now - start) / 1000000))
        echo "$marker_ms" >"$log.marker-ms"
      fi
    done
  }
  status=${PIPESTATUS[0]}
  set -e
  if [ ! -f "$log.marker-ms" ]; then
    tail -n 30 "$log" >&2
    die "boot check: no $BOOT_MARKER from the guest (qemu exit $status); full log in $log"
  fi
  [ "$status" -eq 0 ] || die "boot check: marker seen but qemu did not power off cleanly (exit $status); see $log"
  marker_ms=$(cat "$log.marker-ms")
  rm -f "$log.marker-ms"
  local total_ms=$((($(date +%s%N) - start) / 1000000))
  say "boot check: $BOOT_MARKER after $((marker_ms / 1000)).$(printf '%03d' $((marker_ms % 1000))) s, powered off after ${total_ms} ms" >&2
  echo "qemu_boot_to_marker_ms=$marker_ms"
  echo "qemu_boot_total_ms=$total_ms"
}
