#!/bin/sh
# osimage stateless initrd /init (busybox sh). Written for osimage; packed into every initrd.
#
# What it does, in order (each step prints an "osimage-initrd:" line on the console):
#  1. mounts /proc, /sys, /dev (devtmpfs, or a tmpfs with console/null nodes), /run;
#     installs the busybox applet links (busybox --install -s);
#  2. reads /etc/initrd.conf (build-time defaults) and the kernel command line:
#       imgurl=http(s)://SERVER/PATH/rootimg.cpio.{zst,gz,xz}   fetch the root image (xCAT's key)
#       rootimg=/dev/vdX        raw disk holding the archive (default /dev/vda when no imgurl)
#       rootlimit=SIZE          tmpfs size for / (e.g. 2G or 80%; default from the build)
#       ip=dhcp | ip=CLIENT::GW:NETMASK:HOST:DEV[:none]   network for imgurl (default dhcp)
#       rd.retries=N            download attempts (default 8; backoff 1,2,4,..,30 s)
#       rd.break[=pre-unpack|pre-switch]   stop in a shell at that point (default pre-unpack)
#       rd.shell                on failure open a rescue shell instead of powering off
#       rd.faildelay=S          seconds before power-off on failure (default 10)
#       init=/PATH              the init of the root image (default /sbin/init)
#  3. loads the modules listed in /etc/initrd-modules with insmod, in that (dependency) order;
#  4. brings up the network (imgurl only), downloads and unpacks the archive into a tmpfs at
#     /newroot, picking the decompressor by magic (zstd, gzip, xz, or a plain cpio);
#  5. checks the new root's init and switch_roots into it.
# A failure prints "INITRD-FAIL: <why>" and then opens a shell (rd.shell / rd.break) or powers
# the machine off after rd.faildelay seconds: never a silent hang.
# If /osimage/test-init exists (added by `osimage test`), it is copied into the new root and run
# as its init, to print a test marker.

export PATH=/usr/sbin:/usr/bin:/sbin:/bin
BB=/bin/busybox
$BB mkdir -p /proc /sys /dev /run /tmp /newroot
$BB mount -t proc proc /proc
$BB mount -t sysfs sysfs /sys
if ! $BB mount -t devtmpfs devtmpfs /dev 2>/dev/null; then
  $BB mount -t tmpfs -o mode=0755 tmpfs /dev
  $BB mknod -m 600 /dev/console c 5 1
  $BB mknod -m 666 /dev/null c 1 3
fi
$BB mount -t tmpfs -o mode=0755 tmpfs /run
$BB --install -s 2>/dev/null
exec </dev/console >/dev/console 2>&1

up() { cut -d' ' -f1 /proc/uptime; }
say() { echo "osimage-initrd: $*"; }

rootlimit=80%
faildelay=10
retries=8
rescue=
brk=
imgurl=
rootimg=
ipconf=
rootinit=/sbin/init
[ -f /etc/initrd.conf ] && . /etc/initrd.conf

fail() {
  echo "INITRD-FAIL: $*"
  if [ -n "$rescue" ] || [ -n "$brk" ]; then
    echo "osimage-initrd: rescue shell (exit to power off)"
    setsid cttyhack sh 2>/dev/null || sh
  else
    echo "osimage-initrd: powering off in ${faildelay}s (boot with rd.shell for a rescue shell)"
    sleep "$faildelay"
  fi
  poweroff -f
  exit 1
}

breakpoint() {
  if [ "$brk" = "$1" ]; then
    say "rd.break=$1: shell (exit to continue)"
    setsid cttyhack sh 2>/dev/null || sh
  fi
}

for arg in $(cat /proc/cmdline); do
  case "$arg" in
    imgurl=*)       imgurl=${arg#imgurl=} ;;
    rootimg=*)      rootimg=${arg#rootimg=} ;;
    rootlimit=*)    rootlimit=${arg#rootlimit=} ;;
    ip=*)           ipconf=${arg#ip=} ;;
    rd.retries=*)   retries=${arg#rd.retries=} ;;
    rd.faildelay=*) faildelay=${arg#rd.faildelay=} ;;
    rd.shell)       rescue=1 ;;
    rd.break)       brk=pre-unpack ;;
    rd.break=*)     brk=${arg#rd.break=} ;;
    init=*)         rootinit=${arg#init=} ;;
  esac
done
[ -z "$imgurl" ] && [ -z "$rootimg" ] && rootimg=/dev/vda

say "start at $(up)s, kernel $(uname -r)"
[ -x /bin/sh ] || fail "no /bin/sh in the initrd"

# ---------------------------------------------------------------- modules
kver=$(uname -r)
if [ -f /etc/initrd-modules ]; then
  built=$(sed -n 's/^# kernel //p' /etc/initrd-modules)
  [ -n "$built" ] && [ "$built" != "$kver" ] && say "WARNING: initrd built for kernel $built, running $kver"
  loaded=
  while read -r m; do
    case "$m" in ''|'#'*) continue ;; esac
    name=${m##*/}; name=${name%.ko}
    if grep -q "^$(echo "$name" | tr - _) " /proc/modules; then continue; fi
    if insmod "/lib/modules/$kver/$m" 2>/tmp/insmod.err; then
      loaded="$loaded $name"
    else
      say "insmod $name failed: $(head -c 200 /tmp/insmod.err)"
    fi
  done < /etc/initrd-modules
  say "modules loaded at $(up)s:$loaded"
fi

# ---------------------------------------------------------------- helpers
# pick_decomp HEX: sets $dc, the decompressor for data starting with these bytes
pick_decomp() {
  case "$1" in
    28b52ffd*)
      command -v zstd >/dev/null 2>&1 || fail "root image is zstd but this initrd has no zstd (install zstd in the image)"
      dc="zstd -dcq" ;;
    1f8b*) dc="gzip -dc" ;;
    fd377a585a00*) dc="xz -dc" ;;
    303730373031*|303730373032*) dc="cat" ;;
    *) fail "unknown root image format (magic '$1'): expected a cpio archive, zstd, gzip or xz" ;;
  esac
}
magic_of() { head -c 6 "$1" 2>/dev/null | od -An -tx1 | tr -d ' \n'; }

unpack() { # unpack FILE-OR-DEVICE into /newroot; sets crc (cpio status), drc (decompressor status)
  pick_decomp "$(magic_of "$1")"
  say "unpacking $1 ($dc) into a tmpfs of size $rootlimit"
  ( $dc < "$1" 2>/tmp/decomp.err; echo $? > /tmp/decomp.rc ) | (cd /newroot && cpio -idmu 2>/tmp/cpio.err)
  crc=$?
  drc=$(cat /tmp/decomp.rc)
}

net_up() {
  ip link set lo up 2>/dev/null
  case "$ipconf" in
    *:*)
      IFS=: read -r cip sip gw mask host dev rest <<EOT
$ipconf
EOT
      [ -n "$dev" ] || dev=$(ls /sys/class/net | grep -v '^lo$' | head -n1)
      [ -n "$dev" ] || fail "ip=$ipconf: no network interface (missing driver?)"
      ip link set "$dev" up
      ifconfig "$dev" "$cip" netmask "${mask:-255.255.255.0}" up || fail "ip=$ipconf: cannot configure $dev"
      [ -n "$gw" ] && ip route add default via "$gw"
      say "network: $dev $cip (static)"
      ;;
    *)
      i=0
      while [ $i -lt 50 ] && [ -z "$(ls /sys/class/net | grep -v '^lo$')" ]; do sleep 0.1; i=$((i + 1)); done
      for dev in $(ls /sys/class/net | grep -v '^lo$'); do
        ip link set "$dev" up
        if udhcpc -i "$dev" -n -q -t 5 -T 2 -s /etc/udhcpc.script >/tmp/udhcpc.log 2>&1; then
          say "network: $dev configured by DHCP at $(up)s"
          return 0
        fi
      done
      fail "DHCP failed on every interface ($(ls /sys/class/net | tr '\n' ' ')): check netdrivers and the DHCP server"
      ;;
  esac
}

# ---------------------------------------------------------------- root image
mount -t tmpfs -o "mode=0755,size=$rootlimit" newroot /newroot || fail "cannot mount a tmpfs of size $rootlimit at /newroot"
breakpoint pre-unpack

if [ -n "$imgurl" ]; then
  case "$imgurl" in
    http://*|https://*) ;;
    *) fail "imgurl=$imgurl: only http:// and https:// are supported" ;;
  esac
  net_up
  n=1; delay=1
  while :; do
    say "downloading $imgurl (attempt $n of $retries)"
    if wget -q -O /newroot/.rootimg "$imgurl" 2>/tmp/wget.err; then
      unpack /newroot/.rootimg
      rm -f /newroot/.rootimg
      [ "$crc" = 0 ] && break
      say "unpack failed: cpio rc=$crc $(head -c 200 /tmp/cpio.err)"
    else
      say "download failed: $(head -c 200 /tmp/wget.err)"
    fi
    [ $n -ge "$retries" ] && fail "could not fetch and unpack $imgurl after $n attempts"
    say "retrying in ${delay}s"
    sleep $delay
    n=$((n + 1)); delay=$((delay * 2)); [ $delay -gt 30 ] && delay=30
  done
else
  i=0
  while [ ! -b "$rootimg" ]; do
    i=$((i + 1))
    [ $i -gt 100 ] && fail "no block device $rootimg after 10s (is virtio_blk/virtio_pci in the initrd? boot with rootimg=/dev/...)"
    sleep 0.1
  done
  say "$rootimg present at $(up)s ($(cat /sys/class/block/${rootimg#/dev/}/size 2>/dev/null) sectors)"
  unpack "$rootimg"
fi
# A raw disk is padded with zeros to whole sectors: a decompressor may complain after the
# archive (osimage pads with a zstd skippable frame, so zstd does not); cpio's status and the
# presence of the init decide.
say "root image unpacked at $(up)s: cpio rc=$crc, decompressor rc=$drc $(head -c 200 /tmp/decomp.err)"
[ "$crc" = 0 ] || fail "cpio: $(head -c 300 /tmp/cpio.err)"
say "$(df -k /newroot | tail -n1 | awk '{print $3 " KiB used in the tmpfs"}')"

if [ -f /osimage/test-init ]; then
  cp /osimage/test-init /newroot/osimage-test-init && chmod 0755 /newroot/osimage-test-init
  rootinit=/osimage-test-init
  say "osimage test: running /osimage-test-init instead of the image's init"
fi
if [ ! -e "/newroot$rootinit" ] && [ ! -L "/newroot$rootinit" ]; then
  fail "no $rootinit in the root image"
fi
breakpoint pre-switch

[ -f /etc/resolv.conf ] && [ -d /newroot/etc ] && cp /etc/resolv.conf /newroot/etc/resolv.conf 2>/dev/null
say "switching root to $rootinit at $(up)s"
mount --move /dev /newroot/dev 2>/dev/null || umount -l /dev
mount --move /run /newroot/run 2>/dev/null || umount -l /run
umount /sys
umount /proc
exec switch_root /newroot "$rootinit"
echo "INITRD-FAIL: switch_root to $rootinit failed"
sleep "$faildelay"
poweroff -f
