#!/bin/sh
# Benchmark: our pack_dir (zstd -3, all cores) and the framed packer of the pack step against
#   find . | sort | cpio -H newc -o | zstd -T0 -3
# on the same tree, in the same run, alternating RUNS (default 3) times. Prints the median time ratio and the
# size ratio (ours / GNU). Usage: scripts/bench-pack.sh [TREE]
# Without TREE, a tree of >= 400 MB and >= 5000 files is made from copies of /usr/share and
# /usr/bin in $BENCH_DIR (default /tmp/osimage-bench-pack).
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
WORK=${BENCH_DIR:-/tmp/osimage-bench-pack}
mkdir -p "$WORK"
TREE=${1:-}
if [ -z "$TREE" ]; then
    TREE=$WORK/tree
    if [ ! -d "$TREE" ]; then
        mkdir -p "$TREE.tmp"
        cp -a /usr/share "$TREE.tmp/share"
        cp -a /usr/bin "$TREE.tmp/bin"
        mv "$TREE.tmp" "$TREE"
    fi
fi
SIZE_MB=$(du -sm "$TREE" | cut -f1)
FILES=$(find "$TREE" -type f | wc -l)
echo "tree: $TREE ($SIZE_MB MB, $FILES files)"
[ "$SIZE_MB" -ge 400 ] && [ "$FILES" -ge 5000 ] || echo "warning: tree is smaller than 400 MB / 5000 files"

# PROFILE=dev for a quick look without a release build of all dependencies (they are built at
# opt-level 2 in dev too); the reported figures use the default, release.
PROFILE=${PROFILE:-release}
cargo build --profile "$PROFILE" -q -p imagecore --example pack_bench
DIR=$PROFILE; [ "$PROFILE" = dev ] && DIR=debug
BIN=$ROOT/target/$DIR/examples/pack_bench

# warm the page cache so both sides read from memory
tar -cf - -C "$TREE" . > /dev/null

# wall and CPU (user+sys) seconds of a command, via GNU time
timed() { /usr/bin/time -f '%e %U %S' -o "$WORK/time.txt" "$@" > /dev/null; awk '{printf "%s %.2f\n", $1, $2 + $3}' "$WORK/time.txt"; }
OURS=""; GNU=""; OCPU=""; GCPU=""
for i in $(seq 1 "${RUNS:-3}"); do
    set -- $(timed "$BIN" "$TREE" "$WORK/ours.cpio.zst" 3 0)
    set -- "$@" $(timed sh -c "'$BIN' '$TREE' /dev/stdout 0 2>/dev/null | zstd -q -T0 -3 > '$WORK/ours-cli.cpio.zst'")
    o=$1; oc=$2; x=$3
    set -- $(timed "$BIN" "$TREE" "$WORK/ours-framed.cpio.zst" 3 0 framed)
    f=$1; FR="${FR:-} $f"
    set -- $(timed sh -c "cd '$TREE' && find . | LC_ALL=C sort | cpio -H newc -o --quiet | zstd -q -T0 -3 > '$WORK/gnu.cpio.zst'")
    g=$1; gc=$2
    printf 'run %d: ours %.2f s (cpu %.2f s), framed %.2f s, gnu %.2f s (cpu %.2f s), our newc | zstd CLI %.2f s\n' "$i" "$o" "$oc" "$f" "$g" "$gc" "$x"
    OURS="$OURS $o"; GNU="$GNU $g"; OCPU="$OCPU $oc"; GCPU="$GCPU $gc"; XC="${XC:-} $x"
done
median() { printf '%s\n' "$@" | sort -g | sed -n "$((($# + 1) / 2))p"; }
MO=$(median $OURS); MG=$(median $GNU); CO=$(median $OCPU); CG=$(median $GCPU)
SO=$(stat -c %s "$WORK/ours.cpio.zst"); SG=$(stat -c %s "$WORK/gnu.cpio.zst")
printf 'median wall: ours %.2f s, gnu %.2f s, time ratio %.3f\n' "$MO" "$MG" "$(echo "$MO / $MG" | bc -l)"
SF=$(stat -c %s "$WORK/ours-framed.cpio.zst")
printf 'median wall, framed (what the pack step writes): %.2f s, time ratio %.3f, size ratio %.4f\n' "$(median $FR)" "$(echo "$(median $FR) / $MG" | bc -l)" "$(echo "$SF / $SG" | bc -l)"
printf 'median wall of our newc writer piped into the zstd CLI: %.2f s (ratio %.3f)\n' "$(median $XC)" "$(echo "$(median $XC) / $MG" | bc -l)"
printf 'median cpu:  ours %.2f s, gnu %.2f s, cpu ratio %.3f\n' "$CO" "$CG" "$(echo "$CO / $CG" | bc -l)"
printf 'size: ours %d B, gnu %d B, size ratio %.4f\n' "$SO" "$SG" "$(echo "$SO / $SG" | bc -l)"
printf 'load average during the run: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
zstd -q -t "$WORK/ours.cpio.zst" && zstd -q -t "$WORK/ours-framed.cpio.zst" && echo "zstd -t: ok"
