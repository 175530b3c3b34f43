#!/usr/bin/env bash
# Build the systemd "VM" base images used by molecule and `make up`.
#
# There is no container registry on the build machines, so the image is made
# from Debian's own mirror with debootstrap and imported with `docker import`.
# An image that already exists is kept (pass --force to rebuild it).
#
# usage: build-image.sh [--force] [SUITE ...]     (default suite: bookworm)
set -euo pipefail

force=0
suites=()
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    *) suites+=("$arg") ;;
  esac
done
[ "${#suites[@]}" -gt 0 ] || suites=(bookworm)

mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
repo="${VM_IMAGE_REPO:-airflow-vm}"
# What a minimal Debian cloud VM has, plus what Ansible needs on a target.
packages=systemd,systemd-sysv,dbus,python3,python3-apt,sudo,ca-certificates,iproute2,procps,curl

command -v debootstrap >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
}

for suite in "${suites[@]}"; do
  image="$repo:$suite"
  if [ "$force" -eq 0 ] && docker image inspect "$image" >/dev/null 2>&1; then
    echo "image $image present"
    continue
  fi
  rootfs=$(mktemp -d "/tmp/rootfs-$suite.XXXXXX")
  trap 'rm -rf "$rootfs"' EXIT
  echo "building $image from $mirror (debootstrap $suite)"
  debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
    tail -20 "$rootfs.log"; exit 1; }
  # A VM boots to multi-user with a machine id of its own; gettys have no tty here.
  : >"$rootfs/etc/machine-id"
  rm -f "$rootfs"/etc/systemd/system/getty.target.wants/* "$rootfs.log"
  tar -C "$rootfs" -c . | docker import \
    --change 'CMD ["/lib/systemd/systemd"]' \
    --change 'ENV container=docker' - "$image" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
  echo "built $image"
done
