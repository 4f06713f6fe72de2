#!/usr/bin/env bash
# Peak memory building a >= 2 GB image (issue 7, pair 7: target <= 300 MB peak RSS).
#
#   scripts/bench-big.sh        # results also in $BENCH_DIR/bench-big.json
#   BASE_BIN=/path/to/older/osimage scripts/bench-big.sh   # also a cold build with that binary,
#                                   # in the same run (before ours), for before/after figures
#   NODE_RSS=0 scripts/bench-big.sh # without the per-node memory trace
#
# Per-node peaks come from OSIMAGE_MEMTRACE (see imagecore::graph::memtrace): a sampler reads
# /proc/self/status every 5 ms and charges each sample to the nodes running then; the sampled
# timeline of the cold build is kept in $BENCH_DIR/cold.memtrace (ms, total/anon/file/shmem KiB,
# running nodes).
#
# Inputs, built here once and cached in target/osimage-fixtures/bigset-v1: 40 rpmbuild packages
# of pseudo-random (incompressible) and base64 text files, ~52 MB each, one of them also holding a
# single 300 MB file (an archive frame of its own), plus the mini distribution's filesystem
# package. Total installed: ~2.4 GB. Measures a cold `osimage build` with GNU time -v (wall time,
# peak RSS), then a rebuild after a postinstall change.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
. "$ROOT/scripts/bench-spec.sh"
WORK=${BENCH_DIR:-/tmp/osimage-bench-big}
FIXD=${OSIMAGE_FIXTURES:-$ROOT/target/osimage-fixtures}
SET=$FIXD/bigset-v1
NPKG=40
rm -rf "$WORK"; mkdir -p "$WORK"

echo "== building inputs"
cargo build --release -q -p imagecli
BIN=$ROOT/target/release/osimage
[ -d "$FIXD/minidistro-v1" ] || cargo test -q --release -p imagecli --test e2e boot_fixture >/dev/null
if [ ! -f "$SET/done" ]; then
  rm -rf "$SET"; mkdir -p "$SET/rpms" "$SET/src"
  # deterministic pseudo-random bytes: AES-CTR keystream of a seed
  rnd() { { openssl enc -aes-128-ctr -nosalt -pass "pass:$1" -pbkdf2 < /dev/zero 2>/dev/null || true; } | head -c "$2"; }
  for p in $(seq 0 $((NPKG - 1))); do
    d=$SET/src/big$p; mkdir -p "$d/bin" "$d/doc"
    for i in $(seq 0 7); do rnd "b$p-$i" $((4 << 20)) > "$d/bin/blob$i"; done
    for i in $(seq 0 49); do rnd "t$p-$i" 300000 | base64 > "$d/doc/text$i.txt"; done
    [ "$p" = 0 ] && rnd huge $((300 << 20)) > "$d/huge.bin"
    cat > "$SET/src/big$p.spec" <<SPEC
Name: big$p
Version: 1
Release: 1
Summary: generated bench package $p
License: MIT
BuildArch: noarch
AutoReqProv: no
%define __os_install_post %{nil}
%define debug_package %{nil}
%description
generated bench package $p
%install
mkdir -p %{buildroot}/opt/big$p
cp -a $d/. %{buildroot}/opt/big$p/
%files
/opt/big$p
SPEC
    SOURCE_DATE_EPOCH=1700000000 rpmbuild --quiet -bb \
      --define "_topdir $SET/build" --define "_rpmdir $SET/rpms" \
      --define "_rpmfilename %{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}.rpm" \
      --define "_binary_payload w1.zstdio" "$SET/src/big$p.spec"
    rm -rf "$d" "$SET/build"
  done
  touch "$SET/done"
fi
mkdir -p "$WORK/repo"
ln "$SET"/rpms/*.rpm "$WORK/repo/" 2>/dev/null || cp "$SET"/rpms/*.rpm "$WORK/repo/"
cp "$FIXD"/minidistro-v1/rpms/filesystem-*.rpm "$WORK/repo/"
createrepo_c -q "$WORK/repo"
{ echo filesystem; for p in $(seq 0 $((NPKG - 1))); do echo "big$p"; done; } > "$WORK/big.pkglist"
printf '#!/bin/sh\necho "big node" > "$1/etc/motd"\n' > "$WORK/big.postinstall"
chmod 755 "$WORK/big.postinstall"
bench_spec "$WORK" big

measure() { # name cache-dir binary: osimage build under GNU time -v; prints wall seconds, peak RSS KiB
  local trace=
  [ "${NODE_RSS:-1}" = 1 ] && trace=$WORK/$1.memtrace
  /usr/bin/time -v -o "$WORK/$1.time" env OSIMAGE_MEMTRACE="$trace" \
    bash -c "cd '$WORK' && '$3' build big.toml --cache-dir '$2'" > "$WORK/$1.log" 2>&1 \
    || { cat "$WORK/$1.log" >&2; exit 1; }
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s}' "$WORK/$1.time")
  rss=$(awk -F: '/Maximum resident/ {gsub(/ /,"",$2); print $2}' "$WORK/$1.time")
  echo "$wall $rss"
}
cold_drop() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }
BW=; BR=
if [ -n "${BASE_BIN:-}" ]; then
  cold_drop
  set -- $(measure base "$WORK/cache-base" "$BASE_BIN"); BW=$1; BR=$2
  rm -rf "$WORK/cache-base"
fi
cold_drop
set -- $(measure cold cache "$BIN"); CW=$1; CR=$2
echo "# changed" >> "$WORK/big.postinstall"
set -- $(measure postinstall cache "$BIN"); PW=$1; PR=$2
INST=$(du -sm --apparent-size "$WORK/cache/packs" | cut -f1)
SO=$(stat -c %s "$WORK/out/rootimg.cpio.zst")
echo
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); cache ${INST} MB after the builds"
printf '| case | wall | peak RSS |\n|---|---|---|\n'
printf '| cold build, %d packages, archive %d B | %.2f s | %d KiB |\n' "$((NPKG + 1))" "$SO" "$CW" "$CR"
printf '| postinstall changed | %.2f s | %d KiB |\n' "$PW" "$PR"
[ -n "$BW" ] && printf '| cold build, BASE_BIN (same run, before ours) | %.2f s | %d KiB |\n' "$BW" "$BR"
if [ "${NODE_RSS:-1}" = 1 ]; then
  echo; echo "per node, cold build (MiB; OSIMAGE_MEMTRACE):"
  grep -h '^memtrace' "$WORK/cold.log" | sed 's/^memtrace /  /' || true
fi
grep -h "frames" "$WORK/postinstall.log" || true
cat > "$WORK/bench-big.json" <<JSON
{"cold_s": $CW, "cold_peak_rss_kib": $CR, "postinstall_s": $PW, "postinstall_peak_rss_kib": $PR,
 "base_cold_s": ${BW:-null}, "base_cold_peak_rss_kib": ${BR:-null},
 "archive_bytes": $SO, "cache_mb": $INST, "packages": $((NPKG + 1)), "nproc": $(nproc)}
JSON
echo "json: $WORK/bench-big.json"
