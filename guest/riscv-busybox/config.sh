# busybox configuration on top of `make defconfig` (sourced by build.sh; part of its cache key).

# NAME=y to turn on, NAME=n to turn off.
BUSYBOX_CONFIG=(
  CONFIG_STATIC=y
  # tc needs the kernel's CBQ scheduler headers, which Linux 6.1's UAPI no longer has.
  CONFIG_TC=n
  # Not for a guest's initramfs, and they pull in glibc's NSS at run time (which static binaries lack).
  CONFIG_FEATURE_MOUNT_NFS=n
  CONFIG_FEATURE_INETD_RPC=n
)

apply_config() {
  local file=$1 entry name value
  for entry in "${BUSYBOX_CONFIG[@]}"; do
    name=${entry%%=*} value=${entry#*=}
    sed -i -e "/^$name=/d" -e "/^# $name is not set/d" "$file"
    if [ "$value" = n ]; then echo "# $name is not set" >>"$file"; else echo "$name=$value" >>"$file"; fi
  done
}

check_config() {
  local file=$1 entry name value bad=0
  for entry in "${BUSYBOX_CONFIG[@]}"; do
    name=${entry%%=*} value=${entry#*=}
    if [ "$value" = n ]; then
      if grep -q "^$name=" "$file"; then echo "still on: $name" >&2; bad=1; fi
    elif ! grep -q "^$name=$value\$" "$file"; then
      echo "not set: $entry" >&2; bad=1
    fi
  done
  return $bad
}
