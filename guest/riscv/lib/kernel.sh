# Kernel step (sourced by build.sh): linux-source-6.1 -> tinyconfig + kernel.config -> Image.
# build_kernel OUT_DIR: writes OUT_DIR/{Image,config,build.log,build-seconds}.

KERNEL_TARBALL=/usr/src/linux-source-6.1.tar.xz

# Fixed build identity so the Image does not depend on who built it or when.
export KBUILD_BUILD_USER=kitset KBUILD_BUILD_HOST=kitset KBUILD_BUILD_VERSION=1
export KBUILD_BUILD_TIMESTAMP='Thu Jan  1 00:00:00 UTC 1970'

# Every `CONFIG_X=y` and `# CONFIG_X is not set` of the fragment must hold in the final .config.
verify_kernel_config() {
  local fragment=$1 config=$2 missing=0 sym
  while IFS= read -r sym; do
    if ! grep -qx "${sym}=y" "$config"; then
      say "kernel config: ${sym}=y was requested but is not set (a dependency is missing?)" >&2
      missing=$((missing + 1))
    fi
  done < <(sed -n 's/^\(CONFIG_[A-Za-z0-9_]*\)=y$/\1/p' "$fragment")
  while IFS= read -r sym; do
    if grep -q "^${sym}=" "$config"; then
      say "kernel config: ${sym} was requested off but is $(grep "^${sym}=" "$config")" >&2
      missing=$((missing + 1))
    fi
  done < <(sed -n 's/^# \(CONFIG_[A-Za-z0-9_]*\) is not set$/\1/p' "$fragment")
  [ "$missing" -eq 0 ] || die "kernel config: $missing option(s) not as requested in $fragment"
  say "kernel config: all $(grep -c '^CONFIG_\|^# CONFIG_' "$fragment") requested options verified"
}

build_kernel() {
  local out=$1 work=$2
  local src=$work/linux-src obj=$work/linux-obj t0=$SECONDS
  local make_args=(ARCH=riscv CROSS_COMPILE="$CROSS_COMPILE" -C "$src" O="$obj")
  [ -r "$KERNEL_TARBALL" ] || die "$KERNEL_TARBALL not found (apt-get install linux-source-6.1)"
  rm -rf "$work" && mkdir -p "$work" "$obj"
  say "kernel: extracting $KERNEL_TARBALL"
  mkdir -p "$src"
  nice tar -xJf "$KERNEL_TARBALL" -C "$src" --strip-components=1
  say "kernel: tinyconfig + guest/riscv/kernel.config, olddefconfig"
  run_quietly "$work/config.log" 1000 "kernel config" make "${make_args[@]}" tinyconfig
  run_quietly "$work/config.log" 1000 "kernel config" \
    "$src/scripts/kconfig/merge_config.sh" -m -O "$obj" "$obj/.config" "$KITSET_GUEST_DIR/kernel.config"
  run_quietly "$work/config.log" 1000 "kernel config" make "${make_args[@]}" olddefconfig
  verify_kernel_config "$KITSET_GUEST_DIR/kernel.config" "$obj/.config"
  say "kernel: compiling with $KITSET_JOBS jobs under nice (a few minutes on 2 cores; one line in 40 shown)"
  run_quietly "$work/build.log" 40 "kernel make" nice -n 10 make "${make_args[@]}" -j"$KITSET_JOBS" Image
  mkdir -p "$out"
  cp "$obj/arch/riscv/boot/Image" "$out/Image"
  cp "$obj/.config" "$out/config"
  cat "$work/config.log" "$work/build.log" >"$out/build.log"
  echo $((SECONDS - t0)) >"$out/build-seconds"
  say "kernel: Image $(stat -c %s "$out/Image") bytes, built in $((SECONDS - t0)) s"
  [ -n "${KITSET_KEEP_BUILD:-}" ] || rm -rf "$work"
}
