#!/usr/bin/env bash
# Install the Debian packages the test suite compares against, when any is missing.
# Safe to run repeatedly; does nothing when everything is present.
set -euo pipefail
need=()
check() { # command package
  command -v "$1" >/dev/null 2>&1 || need+=("$2")
}
check rpm rpm
check rpmbuild rpm
check rpm2cpio rpm2cpio
check rpmsign rpm
check gpg gnupg
check gpg-agent gpg-agent
check createrepo_c createrepo-c
check dnf dnf
check testsolv libsolv-tools
check cpio cpio
check zstd zstd
check xz xz-utils
check pigz pigz
check xorriso xorriso
check genisoimage genisoimage
check qemu-system-x86_64 qemu-system-x86
check busybox busybox-static
check depmod kmod
check getcap libcap2-bin
check getfattr attr
check sqlite3 sqlite3
check file file
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing test tools: ${need[*]} — run this script as root to install them" >&2
    exit 1
  fi
  echo "installing: ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
