# Shared helpers for guest/riscv/build.sh and its lib/*.sh steps (sourced, not run).
# Changing this file changes every part's cache key, so keep it small and stable.

CROSS_COMPILE=riscv64-linux-gnu-

# One progress line: "[guest-riscv +MM:SS] message".
say() {
  local t=$((SECONDS - KITSET_T0))
  printf '[guest-riscv +%02d:%02d] %s\n' $((t / 60)) $((t % 60)) "$*" >&2
}

die() {
  say "ERROR: $*" >&2
  exit 1
}

# Hash of the named files' contents plus extra strings (package versions): a part's cache key.
hash_inputs() {
  local files=() extras=()
  while [ $# -gt 0 ]; do
    if [ "$1" = "--" ]; then shift; extras=("$@"); break; fi
    files+=("$1"); shift
  done
  {
    for f in "${files[@]}"; do
      printf 'file %s\n' "${f#"$KITSET_GUEST_DIR"/}"
      sha256sum <"$f"
    done
    for e in "${extras[@]}"; do printf 'extra %s\n' "$e"; done
  } | sha256sum | cut -c1-16
}

# Installed version of each Debian package named, "pkg=version" (or "pkg=none").
pkg_versions() {
  local p v
  for p in "$@"; do
    v=$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || true)
    printf '%s=%s\n' "$p" "${v:-none}"
  done
}

# Runs a noisy command with its full output in LOG, showing one line in EVERY (and at
# least one line each 20 s) so a long build shows progress without flooding the terminal.
run_quietly() {
  local log=$1 every=$2 label=$3
  shift 3
  local n=0 last=$SECONDS line status
  set +e
  "$@" 2>&1 | {
    while IFS= read -r line; do
      printf '%s\n' "$line" >>"$log"
      n=$((n + 1))
      if [ $((n % every)) -eq 0 ] || [ $((SECONDS - last)) -ge 20 ] || [[ "$line" == *"rror"* ]]; then
        say "$label [$n lines] ${line:0:100}"
        last=$SECONDS
      fi
    done
  }
  status=${PIPESTATUS[0]}
  set -e
  if [ "$status" -ne 0 ]; then
    say "$label failed (exit $status); last lines of $log:" >&2
    tail -n 40 "$log" >&2
    return "$status"
  fi
}

# Atomically publishes directory TMP as DEST (a part or a build result in the cache).
publish_dir() {
  local tmp=$1 dest=$2
  rm -rf "$dest"
  mv -T "$tmp" "$dest"
}
