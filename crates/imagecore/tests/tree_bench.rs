//! Measurement, not a timed test (ignored by default): scan+put of a ~400 MB / 5000-file tree,
//! materialise onto /dev/shm against `cp -a` of the same tree in the same run.
//!
//! Run: `cargo test --release -p imagecore --test integration -- tree_bench --ignored --nocapture`
//! (`OSIMAGE_BENCH_DIR` picks the disk directory; `OSIMAGE_STORE_COMPRESS=1` compresses blobs.)

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use common::*;
use imagecore::graph::Output;
use imagecore::store::Store;
use imagecore::tree;

/// ~400 MB in 5000 files under 100 directories: 60 % compressible (16-letter alphabet), 40 %
/// random; sizes 2-40 kB (4000 files), 100-400 kB (950), 1-3 MB (50).
fn generate(dir: &Path) -> u64 {
    let mut total = 0u64;
    let n: u64 = std::env::var("OSIMAGE_BENCH_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    for i in 0..n {
        let d = dir.join(format!("d{:02}/s{}", i % 50, i % 2));
        std::fs::create_dir_all(&d).unwrap();
        let r = random_bytes(&format!("size{i}"), 8);
        let x = u64::from_le_bytes(r.try_into().unwrap());
        let size = match i % 100 {
            0 => 1_000_000 + x % 2_000_000,
            1..=19 => 100_000 + x % 300_000,
            _ => 2_000 + x % 38_000,
        } as usize;
        let mut data = random_bytes(&format!("data{i}"), size);
        if i % 5 < 3 {
            for b in data.iter_mut() {
                *b = b'a' + (*b & 0x0f);
            }
        }
        std::fs::write(d.join(format!("f{i}")), &data).unwrap();
        total += size as u64;
    }
    total
}

/// CPU seconds (user + system) this process and its waited-for children used so far.
fn cpu_secs() -> f64 {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let stat = read("/proc/self/stat");
    let after = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<f64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // fields 14-17 of stat (utime stime cutime cstime) are 12..16 after the comm
    f.get(11..15).map(|v| v.iter().sum::<f64>()).unwrap_or(0.0) / 100.0
}

fn time<T>(label: &str, f: impl FnOnce() -> T) -> (T, f64) {
    let c = cpu_secs();
    let t = Instant::now();
    let v = f();
    let s = t.elapsed().as_secs_f64();
    eprintln!("{label:<48} {s:8.3} s wall {:8.3} s cpu", cpu_secs() - c);
    (v, s)
}

fn cp_a(src: &Path, dst: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(src)
        .arg(dst)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
#[ignore = "measurement; run with --ignored --nocapture"]
fn bench_scan_put_and_materialize_vs_cp() {
    let base = std::env::var_os("OSIMAGE_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let work = tempfile::tempdir_in(&base).unwrap();
    let src = work.path().join("tree");
    let bytes = generate(&src);
    sh(work.path(), "sync");
    eprintln!(
        "tree: {} files, {:.1} MB, store on {} (compression {})",
        walkdir::WalkDir::new(&src)
            .into_iter()
            .filter(|e| e.as_ref().is_ok_and(|e| e.file_type().is_file()))
            .count(),
        bytes as f64 / 1e6,
        work.path().display(),
        std::env::var("OSIMAGE_STORE_COMPRESS").unwrap_or_default() == "1"
    );
    let store = Store::open(&work.path().join("store")).unwrap();
    let _lock = store.lock().unwrap(); // as a build holds it
    let (m, t_scan) = time("scan + put (fresh store, parallel)", || {
        tree::scan(&store, &src, None).unwrap()
    });
    let (_, t_pub) = time("put_manifest + publish (fsync packs)", || {
        let id = store.put_manifest(&m).unwrap();
        let out = Output {
            tree: Some(id),
            ..Default::default()
        };
        store.publish(&imagecore::Hash::of(b"bench"), &out).unwrap();
    });
    time(
        "Store::open + 13 get_output (no-op rebuild lookups)",
        || {
            let s = Store::open(&work.path().join("store")).unwrap();
            for _ in 0..13 {
                assert!(
                    s.get_output(&imagecore::Hash::of(b"bench"))
                        .unwrap()
                        .is_some()
                );
            }
        },
    );
    let packs = dir_size(&work.path().join("store/packs"));
    eprintln!(
        "store size {:.1} MB = {:.2} of content ({:.0} MB/s scan+put)",
        packs as f64 / 1e6,
        packs as f64 / bytes as f64,
        bytes as f64 / 1e6 / (t_scan + t_pub)
    );
    let (m2, _) = time("re-scan, all blobs already stored (hash only)", || {
        tree::scan(&store, &src, None).unwrap()
    });
    assert_eq!(m, m2);
    let cache = work.path().join("statcache.json");
    time("hash_tree (cold stat cache)", || {
        tree::hash_tree_cached(&src, Some(&cache), None).unwrap()
    });
    time("hash_tree (warm stat cache)", || {
        tree::hash_tree_cached(&src, Some(&cache), None).unwrap()
    });

    let shm = tempfile::tempdir_in("/dev/shm").unwrap();
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    let mut stat = None;
    for round in 0..2 {
        let (_, t) = time(&format!("cp -a tree /dev/shm (round {round})"), || {
            cp_a(&src, &shm.path().join(format!("cp{round}")))
        });
        theirs.push(t);
        let dst = shm.path().join(format!("ours{round}"));
        let (c, t) = time(
            &format!("materialize onto /dev/shm (round {round})"),
            || tree::materialize(&store, &m, &dst).unwrap(),
        );
        ours.push(t);
        stat = Some((dst, c));
    }
    let best = |v: &[f64]| v.iter().cloned().fold(f64::MAX, f64::min);
    eprintln!(
        "materialize / cp -a (best of 2): {:.3} s / {:.3} s = {:.2}",
        best(&ours),
        best(&theirs),
        best(&ours) / best(&theirs)
    );
    let (dst, c) = stat.unwrap();
    let ((_, st), _) = time("scan of materialised tree with prev (no rehash)", || {
        tree::scan_with_stats(&store, &dst, Some(&c)).unwrap()
    });
    assert_eq!(st.hashed, 0);
    sh(
        shm.path(),
        "diff -r --no-dereference ours0 cp0 >/dev/null && echo same",
    );
}

#[test]
#[ignore = "measurement; run with --ignored --nocapture"]
fn bench_hash_tree_warm_cache_many_small_files() {
    let n: usize = std::env::var("OSIMAGE_BENCH_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("tree");
    for i in 0..n {
        let d = src.join(format!("d{}/e{}", i % 100, i % 7));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(format!("f{i}")), format!("file {i}\n")).unwrap();
    }
    let cache = work.path().join("statcache.json");
    let (h1, _) = time(&format!("hash_tree {n} files (cold stat cache)"), || {
        tree::hash_tree_cached(&src, Some(&cache), None).unwrap()
    });
    for round in 0..3 {
        let (h2, _) = time(
            &format!("hash_tree {n} files (warm, round {round})"),
            || tree::hash_tree_cached(&src, Some(&cache), None).unwrap(),
        );
        assert_eq!(h1, h2);
    }
}
