//! pack_manifest_framed: multi-frame zstd archives unpacked by GNU zstd + GNU cpio and busybox
//! cpio, determinism, frame-cache reuse, size against `zstd -3`.

use std::collections::HashMap;

use imagecore::archive::{
    CachedFrame, FrameCache, FramedStats, MIN_GROUP, NoFrameCache, pack_manifest_framed,
};
use imagecore::hash::Hash;
use imagecore::tree::manifest::{Kind, Manifest};

use crate::archive_common;
use crate::archive_pack::{compare_tree, fixture};
use archive_common::*;

/// Frames of earlier archives, by key.
#[derive(Default)]
struct MapCache(HashMap<Hash, Vec<u8>>);

impl MapCache {
    fn add(&mut self, archive: &[u8], st: &FramedStats) {
        for f in &st.frames {
            let r = f.offset as usize..(f.offset + f.len) as usize;
            self.0.insert(f.key, archive[r].to_vec());
        }
    }
}

impl FrameCache for MapCache {
    fn frame(&self, key: &Hash) -> Option<CachedFrame<'_>> {
        let f = self.0.get(key)?;
        Some((f.len() as u64, Box::new(&f[..])))
    }
}

/// Compressible but not trivially so: words from a small vocabulary, seeded.
fn text(seed: u64, len: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "node", "image", "kernel", "module", "firmware", "lib", "usr", "share", "locale", "the",
        "of", "and", "config", "daemon", "service", "0x1f", "error", "warning", "= yes\n", "\n",
    ];
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut v = Vec::with_capacity(len + 16);
    while v.len() < len {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        v.extend_from_slice(WORDS[(x >> 59) as usize % WORDS.len()].as_bytes());
        v.push(if x & 0x100 == 0 { b' ' } else { b'_' });
        if x & 0xff == 7 {
            v.extend_from_slice(&x.to_le_bytes());
        }
    }
    v.truncate(len);
    v
}

fn add_file(m: &mut Manifest, src: &mut MapSource, path: &str, content: Vec<u8>) {
    let h = Hash::of(&content);
    let size = content.len() as u64;
    src.0.insert(h, content);
    m.entries.retain(|e| e.path != path);
    m.entries.push(entry(
        path,
        Kind::File {
            blob: h,
            size,
            link: None,
        },
        0o644,
        1_600_000_000,
    ));
    m.sort();
}

/// The archive fixture plus ~40 MB of files in 8 directories and one 12 MB file (a group of its
/// own, streamed): several frames.
fn big_fixture() -> (Manifest, MapSource) {
    let (mut m, mut src) = fixture();
    for d in 0..8 {
        m.entries
            .push(entry(&format!("lots{d}"), Kind::Dir, 0o755, 1_500_000_000));
        for i in 0..40 {
            let n = d * 40 + i;
            add_file(
                &mut m,
                &mut src,
                &format!("lots{d}/file{i:03}"),
                text(n as u64, 20_000 + (n * 7919) % 200_000),
            );
        }
    }
    add_file(&mut m, &mut src, "lots3/huge", text(99, 12 << 20));
    m.sort();
    (m, src)
}

fn pack(m: &Manifest, src: &MapSource, cache: &dyn FrameCache) -> (Vec<u8>, FramedStats) {
    let mut out = Vec::new();
    let st = pack_manifest_framed(src, m, 3, Some(SDE), cache, &mut out).unwrap();
    assert_eq!(st.pack.bytes_out, out.len() as u64);
    assert_eq!(st.compressed + st.reused, st.frames.len() as u64);
    let mut at = 0;
    for f in &st.frames {
        assert_eq!(f.offset, at, "frames are contiguous");
        assert_eq!(
            &out[at as usize..at as usize + 4],
            &[0x28, 0xb5, 0x2f, 0xfd],
            "each frame starts with the zstd magic"
        );
        at += f.len;
    }
    assert_eq!(at, out.len() as u64);
    (out, st)
}

#[test]
fn gnu_zstd_with_gnu_and_busybox_cpio_unpack_multi_frame_archives() {
    require!(
        have("cpio") && have("zstd") && have("busybox"),
        "cpio/zstd/busybox not installed"
    );
    require!(
        is_root(),
        "needs root to create device nodes and keep owners"
    );
    let (m, src) = big_fixture();
    let (archive, st) = pack(&m, &src, &NoFrameCache);
    assert!(st.frames.len() >= 4, "{} frames", st.frames.len());
    assert_eq!(st.compressed, st.frames.len() as u64);
    let raw = sh(std::path::Path::new("."), "zstd -dc", &archive);
    assert_eq!(raw.len() as u64, st.pack.bytes_in);
    for cpio in [
        "cpio -idm --no-absolute-filenames --quiet",
        "busybox cpio -idm",
    ] {
        let dir = tempfile::tempdir().unwrap();
        sh(dir.path(), &format!("zstd -dc | {cpio}"), &archive);
        compare_tree(dir.path(), &m, &src);
    }
    // our own reader (the sniffing decompressor reads every frame) agrees
    let mut back = Vec::new();
    use std::io::Read;
    imagecore::archive::decompressor(std::io::Cursor::new(archive.clone()))
        .unwrap()
        .read_to_end(&mut back)
        .unwrap();
    assert_eq!(back, raw);
}

#[test]
fn output_is_deterministic_and_independent_of_the_cache() {
    let (m, src) = big_fixture();
    let (a, sa) = pack(&m, &src, &NoFrameCache);
    let (b, _) = pack(&m, &src, &NoFrameCache);
    assert!(a == b, "two packs with empty caches differ");
    let mut cache = MapCache::default();
    cache.add(&a, &sa);
    let (c, sc) = pack(&m, &src, &cache);
    assert!(a == c, "a pack from the cache differs from a fresh one");
    assert_eq!((sc.compressed, sc.reused), (0, sa.frames.len() as u64));
}

#[test]
fn an_edit_recompresses_only_the_frames_it_touches() {
    let (m, mut src) = big_fixture();
    let (a, sa) = pack(&m, &src, &NoFrameCache);
    let n = sa.frames.len() as u64;
    let mut cache = MapCache::default();
    cache.add(&a, &sa);

    // change one file's content
    let mut m2 = m.clone();
    add_file(
        &mut m2,
        &mut src,
        "lots5/file017",
        b"edited by postinstall\n".to_vec(),
    );
    let (b, sb) = pack(&m2, &src, &cache);
    // its frame, and the next one if the edit moved the cut between them (a group shorter than
    // MIN_GROUP runs on to the next cut point)
    assert!(
        (1..=2).contains(&sb.compressed),
        "one edited file: {} frames recompressed",
        sb.compressed
    );
    assert!(sb.reused >= n - 2, "{} of {n} frames reused", sb.reused);
    let (fresh, _) = pack(&m2, &src, &NoFrameCache);
    assert!(b == fresh, "reusing frames changed the output");
    cache.add(&b, &sb);

    // add a file (inode numbers of the others do not shift) and remove another
    let mut m3 = m2.clone();
    add_file(&mut m3, &mut src, "lots2/new-file", b"created\n".to_vec());
    m3.entries.retain(|e| e.path != "lots6/file030");
    let (c, sc) = pack(&m3, &src, &cache);
    assert!(
        sc.compressed <= 4,
        "an added and a removed file recompressed {} of {} frames",
        sc.compressed,
        sc.frames.len()
    );
    let (fresh, _) = pack(&m3, &src, &NoFrameCache);
    assert!(c == fresh, "reusing frames changed the output");
}

#[test]
fn size_is_within_one_percent_of_zstd_3() {
    require!(have("zstd"), "zstd not installed");
    let (m, src) = big_fixture();
    let (a, st) = pack(&m, &src, &NoFrameCache);
    let raw = sh(std::path::Path::new("."), "zstd -dc", &a);
    assert!(raw.len() as u64 > 8 * MIN_GROUP);
    let z = sh(std::path::Path::new("."), "zstd -3 -c", &raw);
    let ratio = a.len() as f64 / z.len() as f64;
    eprintln!(
        "{} frames: {} B vs zstd -3 {} B = {ratio:.4}",
        st.frames.len(),
        a.len(),
        z.len()
    );
    assert!(ratio <= 1.01, "framed archive is {ratio:.4} of zstd -3");
}

#[test]
fn bad_level_is_an_error() {
    let (m, src) = fixture();
    let err = pack_manifest_framed(&src, &m, 99, None, &NoFrameCache, Vec::new()).unwrap_err();
    assert!(err.to_string().contains("out of range"), "{err}");
}
