# ISA test step (sourced by build.sh): isa/NAME.{c,S} + isa/common/ -> NAME.elf, run on
# qemu-system-riscv64 to record NAME.expected (its UART output, the reference), and run again to
# check that the output is deterministic.
# build_isa OUT_DIR WORK_DIR.

# The CPU HyperKit implements: QEMU 7.2's rv64 reduced to RV64GC (no H, Sstc or bit-manipulation).
ISA_QEMU_CPU=rv64,h=false,sstc=false,zba=false,zbb=false,zbc=false,zbs=false
ISA_QEMU_TIMEOUT=30
# shellcheck disable=SC2054 # commas inside -Wl options, not separators
ISA_CFLAGS=(-march=rv64gc -mabi=lp64d -mcmodel=medany -static -nostdlib -nostartfiles -ffreestanding
  -fno-builtin -fno-stack-protector -fno-pie -no-pie -fno-asynchronous-unwind-tables -fno-ident -O2
  -Wall -Wextra -Werror -Wl,--build-id=none -Wl,--no-warn-rwx-segments)

build_isa() {
  local out=$1 work=$2 src name count=0 common=$KITSET_GUEST_DIR/isa/common
  mkdir -p "$out" "$work"
  command -v qemu-system-riscv64 >/dev/null || die "qemu-system-riscv64 not found (apt-get install qemu-system-misc)"
  # Objects get fixed names (not gcc's random temporary ones, which would end up in the symbol
  # table) so the ELFs are reproducible.
  local cflags=("${ISA_CFLAGS[@]}" -I"$common" -ffile-prefix-map="$KITSET_GUEST_DIR/=")
  "${CROSS_COMPILE}gcc" "${cflags[@]}" -c -o "$work/crt.o" "$common/crt.S"
  "${CROSS_COMPILE}gcc" "${cflags[@]}" -c -o "$work/runtime.o" "$common/runtime.c"
  for src in "$KITSET_GUEST_DIR"/isa/*.c "$KITSET_GUEST_DIR"/isa/*.S; do
    [ -e "$src" ] || continue
    name=$(basename "${src%.*}")
    if ! "${CROSS_COMPILE}gcc" "${cflags[@]}" -c -o "$work/$name.o" "$src" ||
      ! "${CROSS_COMPILE}gcc" "${ISA_CFLAGS[@]}" -T "$common/link.ld" -o "$out/$name.elf" \
        "$work/crt.o" "$work/runtime.o" "$work/$name.o"; then
      die "isa: $name does not build"
    fi
    local status=0
    timeout "$ISA_QEMU_TIMEOUT" qemu-system-riscv64 -M virt -cpu "$ISA_QEMU_CPU" -smp 1 -m 128M \
      -nographic -bios none -kernel "$out/$name.elf" </dev/null >"$out/$name.expected" 2>"$work/$name.stderr" ||
      status=$?
    if [ "$status" -ne 0 ] || [ "$(tail -n 1 "$out/$name.expected")" != END ] ||
      grep -q UNEXPECTED-TRAP "$out/$name.expected"; then
      tail -n 20 "$out/$name.expected" "$work/$name.stderr" >&2
      die "isa: $name did not run to its END line on QEMU (exit $status)"
    fi
    # A reference must not depend on timing: a second run must print the same.
    if ! timeout "$ISA_QEMU_TIMEOUT" qemu-system-riscv64 -M virt -cpu "$ISA_QEMU_CPU" -smp 1 -m 128M \
      -nographic -bios none -kernel "$out/$name.elf" </dev/null 2>/dev/null | cmp -s - "$out/$name.expected"; then
      die "isa: $name printed something else on a second QEMU run (its output must be deterministic)"
    fi
    count=$((count + 1))
    say "isa: $name.elf ($(wc -l <"$out/$name.expected") result lines on QEMU)"
  done
  [ "$count" -gt 0 ] || die "isa: no tests found in $KITSET_GUEST_DIR/isa"
  rm -rf "$work"
}
