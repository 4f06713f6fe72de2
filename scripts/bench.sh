#!/usr/bin/env bash
# Whole-build benchmark: osimage against the xCAT pipeline (dnf --installroot, then
# find . | cpio -H newc -o | pigz) on the same packages, in the same run, alternating.
#
#   scripts/bench.sh            # RUNS=3 by default; results also in $BENCH_DIR/bench.json
#
# Inputs are built here: the mini distribution of real RPMs (Debian's kernel and busybox
# repackaged with rpmbuild; built once by the test fixture into target/osimage-fixtures),
# indexed with createrepo_c. Pairs measured:
#   1 cold full build            osimage build (empty cache)   vs dnf --installroot + find|cpio|pigz
#   2 no-op rebuild              osimage build (warm)          vs the same peer (xCAT redoes all)
#   3 one postinstall line changed, rebuild                    (ratio to our cold build)
#   6 install alone              osimage build --target install vs dnf --installroot
#   7 peak RSS of the cold build (GNU time -v)
# Pack alone (4) is scripts/bench-pack.sh; resolve on 10k packages (5) is
# `cargo test --release -p imagecli --test e2e solve_bench -- --ignored --nocapture`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
. "$ROOT/scripts/bench-spec.sh"
WORK=${BENCH_DIR:-/tmp/osimage-bench}
RUNS=${RUNS:-3}
rm -rf "$WORK"; mkdir -p "$WORK"
command -v pigz >/dev/null || { echo "needs pigz (scripts/test-deps.sh)"; exit 1; }

echo "== building inputs"
cargo build --release -q -p imagecli
BIN=$ROOT/target/release/osimage
cargo test -q --release -p imagecli --test e2e boot_fixture >/dev/null 2>&1 || \
  cargo test -q --release -p imagecli --test e2e boot_fixture
FIX=${OSIMAGE_FIXTURES:-$ROOT/target/osimage-fixtures}/minidistro-v1
mkdir -p "$WORK/repo"
cp "$FIX"/rpms/*.rpm "$FIX"/rpms-kernel/plain/*.rpm "$WORK/repo/"
createrepo_c -q "$WORK/repo"
PKGS="filesystem busybox kernel zstd stateless-init"
printf '%s\n' $PKGS > "$WORK/bench.pkglist"
printf '#!/bin/sh\necho "bench node" > "$1/etc/motd"\n' > "$WORK/bench.postinstall"
chmod 755 "$WORK/bench.postinstall"
bench_spec "$WORK" bench

mkdir -p "$WORK/home"; echo '%_dbpath /var/lib/rpm' > "$WORK/home/.rpmmacros"
mkdir -p "$WORK/repos.d"
printf '[main]\ngpgcheck=0\ninstall_weak_deps=False\nkeepcache=False\nreposdir=%s\n' "$WORK/repos.d" > "$WORK/dnf.conf"
# Note: the fixture's filesystem package is not required by the others, so rpm unpacks it last
# inside dnf's transaction and fails on the usrmerge symlinks (dnf exits 1 after installing the
# rest: the same work minus a dozen directories). osimage orders it first and succeeds.
xcat() { # the xCAT genimage + packimage pipeline
  local r=$WORK/xcat-root; rm -rf "$r" "$WORK/xcat.cpio.gz"
  HOME=$WORK/home dnf -q -y --config="$WORK/dnf.conf" --installroot="$r" --releasever=9 \
    --repofrompath="bench,file://$WORK/repo" --repo=bench install $PKGS >/dev/null 2>&1 || true
  echo "bench node" > "$r/etc/motd"
  (cd "$r" && find . | cpio -H newc -o --quiet | pigz > "$WORK/xcat.cpio.gz")
}
xcat_install() {
  local r=$WORK/xcat-root; rm -rf "$r"
  HOME=$WORK/home dnf -q -y --config="$WORK/dnf.conf" --installroot="$r" --releasever=9 \
    --repofrompath="bench,file://$WORK/repo" --repo=bench install $PKGS >/dev/null 2>&1 || true
}
secs() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null 2>&1; t1=$(date +%s.%N); echo "$t1 - $t0" | bc -l; }
ours_cold() { rm -rf "$WORK/cache" "$WORK/out" "$WORK/osimage.lock"; (cd "$WORK" && "$BIN" build bench.toml --cache-dir cache); }
ours_warm() { (cd "$WORK" && "$BIN" build bench.toml --cache-dir cache); }
ours_install() { rm -rf "$WORK/cache" "$WORK/osimage.lock"; (cd "$WORK" && "$BIN" build bench.toml --cache-dir cache --target install); }
median() { printf '%s\n' "$@" | sort -g | sed -n "$((($# + 1) / 2))p"; }

C=(); X=(); N=(); P=(); I=(); XI=()
for i in $(seq 1 "$RUNS"); do
  c=$(secs ours_cold); x=$(secs xcat)
  n=$(secs ours_warm)
  echo "# run $i" >> "$WORK/bench.postinstall"; p=$(secs ours_warm)
  inst=$(secs ours_install); xi=$(secs xcat_install)
  printf 'run %d: cold %.2f s | xcat %.2f s | no-op %.3f s | postinstall changed %.2f s | install %.2f s vs dnf %.2f s\n' \
    "$i" "$c" "$x" "$n" "$p" "$inst" "$xi"
  C+=("$c"); X+=("$x"); N+=("$n"); P+=("$p"); I+=("$inst"); XI+=("$xi")
done
ours_cold >/dev/null 2>&1; xcat
/usr/bin/time -v -o "$WORK/rss.txt" bash -c "rm -rf '$WORK/cache'; cd '$WORK' && '$BIN' build bench.toml --cache-dir cache" >/dev/null 2>&1
RSS=$(awk -F: '/Maximum resident/ {gsub(/ /,"",$2); print $2}' "$WORK/rss.txt")
MC=$(median "${C[@]}"); MX=$(median "${X[@]}"); MN=$(median "${N[@]}"); MP=$(median "${P[@]}")
MI=$(median "${I[@]}"); MXI=$(median "${XI[@]}")
SO=$(stat -c %s "$WORK/out/rootimg.cpio.zst"); SX=$(stat -c %s "$WORK/xcat.cpio.gz")
INST=$(du -sm "$WORK/xcat-root" | cut -f1)
# the framed archive against one zstd -3 stream of the same newc bytes (target: within 1 %)
SZ=$(zstd -dcq "$WORK/out/rootimg.cpio.zst" | zstd -q -3 -T0 -c | wc -c)
r() { echo "$1 / $2" | bc -l; }
echo
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); image ${INST} MB installed"
printf '| pair | ours | peer | ratio ours/peer |\n|---|---|---|---|\n'
printf '| 1 cold full build | %.2f s | %.2f s | %.2f (%.1fx faster) |\n' "$MC" "$MX" "$(r "$MC" "$MX")" "$(r "$MX" "$MC")"
printf '| 1 output size | %d B | %d B | %.3f |\n' "$SO" "$SX" "$(r "$SO" "$SX")"
printf '| 1 archive vs one zstd -3 stream of the same cpio | %d B | %d B | %.4f |\n' "$SO" "$SZ" "$(r "$SO" "$SZ")"
printf '| 2 no-op rebuild | %.3f s | %.2f s | %.4f |\n' "$MN" "$MX" "$(r "$MN" "$MX")"
printf '| 3 postinstall changed | %.2f s | — | %.2f of our cold build |\n' "$MP" "$(r "$MP" "$MC")"
printf '| 6 install alone | %.2f s | %.2f s | %.2f (%.1fx faster) |\n' "$MI" "$MXI" "$(r "$MI" "$MXI")" "$(r "$MXI" "$MI")"
printf '| 7 peak RSS, cold build | %s KiB | — | — |\n' "$RSS"
cat > "$WORK/bench.json" <<JSON
{"cold_s": $MC, "xcat_s": $MX, "noop_s": $MN, "postinstall_s": $MP, "install_s": $MI, "dnf_install_s": $MXI,
 "size_ours": $SO, "size_xcat": $SX, "size_zstd3_same_cpio": $SZ, "peak_rss_kib": $RSS, "runs": $RUNS, "nproc": $(nproc)}
JSON
echo "json: $WORK/bench.json"
