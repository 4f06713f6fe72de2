//! pack_manifest / pack_dir against GNU cpio, zstd, gzip and xz.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use imagecore::archive::{Compress, PackOptions, decompressor, pack_manifest};
use imagecore::hash::Hash;
use imagecore::tree::manifest::{Kind, Manifest};

use crate::archive_common;
use archive_common::*;

/// A tree with every kind of entry: returns the manifest and its blobs.
pub(crate) fn fixture() -> (Manifest, MapSource) {
    let mut blobs = HashMap::new();
    let mut file = |path: &str, content: Vec<u8>, mode: u32, mtime: i64, link: Option<u32>| {
        let h = Hash::of(&content);
        let size = content.len() as u64;
        blobs.insert(h, content);
        entry(
            path,
            Kind::File {
                blob: h,
                size,
                link,
            },
            mode,
            mtime,
        )
    };
    let mut e = vec![
        file(
            "bin/sh",
            b"#!/bin/sh\necho hi\n".to_vec(),
            0o755,
            1_600_000_000,
            None,
        ),
        file(
            "bin/su",
            b"setuid binary".to_vec(),
            0o4755,
            1_600_000_001,
            None,
        ),
        file(
            "bin/sg",
            b"setgid binary".to_vec(),
            0o2711,
            1_600_000_002,
            None,
        ),
        file(
            "data/a",
            b"shared content of the group".to_vec(),
            0o640,
            1_600_000_003,
            Some(1),
        ),
        file(
            "data/b",
            b"shared content of the group".to_vec(),
            0o640,
            1_600_000_003,
            Some(1),
        ),
        file(
            "data/c",
            b"shared content of the group".to_vec(),
            0o640,
            1_600_000_003,
            Some(1),
        ),
        file(
            "data/future",
            b"mtime after SOURCE_DATE_EPOCH".to_vec(),
            0o600,
            SDE + 1_000_000,
            None,
        ),
        file("data/empty", Vec::new(), 0o644, 1_600_000_004, None),
        file(
            "data/big",
            (0..6_000_000u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 21) as u8)
                .collect(),
            0o644,
            1_600_000_005,
            None,
        ),
        file(
            "other/x",
            b"second group, other dir".to_vec(),
            0o644,
            1_600_000_006,
            Some(2),
        ),
        file(
            "data/y",
            b"second group, other dir".to_vec(),
            0o644,
            1_600_000_006,
            Some(2),
        ),
        entry("bin", Kind::Dir, 0o755, 1_500_000_000),
        entry("data", Kind::Dir, 0o750, 1_500_000_001),
        entry("other", Kind::Dir, 0o755, 1_500_000_002),
        entry("tmp", Kind::Dir, 0o1777, 1_500_000_003),
        entry("usr", Kind::Dir, 0o755, 1_500_000_004),
        entry("usr/lib", Kind::Dir, 0o755, 1_500_000_005),
        entry(
            "usr/lib/sh",
            Kind::Symlink {
                target: "../../bin/sh".into(),
            },
            0o777,
            1_600_000_007,
        ),
        entry(
            "usr/lib/dangling",
            Kind::Symlink {
                target: "/nonexistent/x".into(),
            },
            0o777,
            1_600_000_008,
        ),
        entry("dev", Kind::Dir, 0o755, 1_500_000_006),
        entry(
            "dev/null",
            Kind::Char { major: 1, minor: 3 },
            0o666,
            1_600_000_009,
        ),
        entry(
            "dev/vda",
            Kind::Block {
                major: 252,
                minor: 0,
            },
            0o660,
            1_600_000_010,
        ),
        entry("dev/initctl", Kind::Fifo, 0o600, 1_600_000_011),
        entry("dev/log", Kind::Socket, 0o666, 1_600_000_012),
        entry("many", Kind::Dir, 0o755, 1_500_000_007),
    ];
    for i in 0..700 {
        e.push(file(
            &format!("many/f{i:04}"),
            format!("small file number {i}\n")
                .repeat(i % 7 + 1)
                .into_bytes(),
            0o644,
            1_600_000_100 + i as i64,
            None,
        ));
    }
    for x in e.iter_mut() {
        if x.path.starts_with("data") || x.path == "other/x" {
            x.uid = 1234;
            x.gid = 5678;
        }
    }
    let mut m = Manifest { entries: e };
    m.sort();
    (m, MapSource(blobs))
}

fn opts(compress: Compress) -> PackOptions {
    PackOptions {
        source_date_epoch: Some(SDE),
        compress,
        pad_to: None,
    }
}

fn pack(m: &Manifest, src: &MapSource, o: &PackOptions) -> Vec<u8> {
    let mut out = Vec::new();
    let st = pack_manifest(src, m, &mut out, o).unwrap();
    assert_eq!(st.bytes_out, out.len() as u64);
    assert_eq!(
        st.entries,
        m.entries.len() as u64 - 1,
        "the socket is skipped"
    );
    out
}

/// Compare an unpacked tree with the manifest (owners only as root).
pub(crate) fn compare_tree(root: &Path, m: &Manifest, src: &MapSource) {
    let root_user = is_root();
    let mut found: Vec<String> = walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .map(|e| {
            e.unwrap()
                .path()
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    found.sort();
    let mut want: Vec<String> = m
        .entries
        .iter()
        .filter(|e| !matches!(e.kind, Kind::Socket))
        .map(|e| e.path.clone())
        .collect();
    want.sort();
    assert_eq!(found, want, "unpacked paths differ from the manifest");
    let mut group_ino: HashMap<u32, u64> = HashMap::new();
    let mut inos: HashMap<u64, String> = HashMap::new();
    for e in &m.entries {
        if matches!(e.kind, Kind::Socket) {
            continue;
        }
        let p = root.join(&e.path);
        let md = std::fs::symlink_metadata(&p).unwrap();
        let ft = md.file_type();
        let what = &e.path;
        match &e.kind {
            Kind::Dir => assert!(ft.is_dir(), "{what}"),
            Kind::File { blob, link, .. } => {
                assert!(ft.is_file(), "{what}");
                assert_eq!(std::fs::read(&p).unwrap(), src.0[blob], "{what} content");
                match link {
                    Some(g) => {
                        let ino = *group_ino.entry(*g).or_insert(md.ino());
                        assert_eq!(md.ino(), ino, "{what}: hardlink group {g} split");
                        let n = m
                            .entries
                            .iter()
                            .filter(
                                |x| matches!(x.kind, Kind::File { link: Some(l), .. } if l == *g),
                            )
                            .count() as u64;
                        assert_eq!(md.nlink(), n, "{what} nlink");
                    }
                    None => assert_eq!(md.nlink(), 1, "{what} nlink"),
                }
                if let Some(other) = inos.insert(md.ino(), what.clone()) {
                    assert!(link.is_some(), "{what} shares an inode with {other}");
                }
            }
            Kind::Symlink { target } => {
                assert!(ft.is_symlink(), "{what}");
                assert_eq!(std::fs::read_link(&p).unwrap().to_str().unwrap(), target);
            }
            Kind::Fifo => assert!(ft.is_fifo(), "{what}"),
            Kind::Char { major, minor } | Kind::Block { major, minor } => {
                if matches!(e.kind, Kind::Char { .. }) {
                    assert!(ft.is_char_device(), "{what}");
                } else {
                    assert!(ft.is_block_device(), "{what}");
                }
                assert_eq!(rustix::fs::major(md.rdev()), *major, "{what}");
                assert_eq!(rustix::fs::minor(md.rdev()), *minor, "{what}");
            }
            Kind::Socket => unreachable!(),
        }
        if !ft.is_symlink() {
            assert_eq!(md.mode() & 0o7777, e.mode, "{what} mode");
        }
        if root_user {
            assert_eq!((md.uid(), md.gid()), (e.uid, e.gid), "{what} owner");
        }
        // GNU cpio 2.13 -m leaves directory mtimes at unpack time (children change them after).
        if !ft.is_symlink() && !ft.is_dir() {
            assert_eq!(md.mtime(), e.mtime.min(SDE), "{what} mtime (clamped)");
        }
    }
}

#[test]
fn gnu_cpio_unpacks_every_codec_into_the_manifest_tree() {
    require!(
        have("cpio") && have("zstd") && have("gzip") && have("xz"),
        "cpio/zstd/gzip/xz not installed"
    );
    require!(
        is_root(),
        "needs root to create device nodes and keep owners with cpio -idm"
    );
    let (m, src) = fixture();
    for (c, cat) in [
        (
            Compress::Zstd {
                level: 3,
                threads: 2,
            },
            "zstd -dc",
        ),
        (Compress::Gzip { level: 6 }, "gzip -dc"),
        (Compress::Xz { level: 1 }, "xz -dc"),
        (Compress::None, "cat"),
    ] {
        let archive = pack(&m, &src, &opts(c.clone()));
        let dir = tempfile::tempdir().unwrap();
        sh(
            dir.path(),
            &format!("{cat} | cpio -idm --no-absolute-filenames --quiet"),
            &archive,
        );
        compare_tree(dir.path(), &m, &src);
        // No duplicate names in the listing, and exactly the manifest's names.
        let list = sh(dir.path(), &format!("{cat} | cpio -t --quiet"), &archive);
        let names: Vec<&str> = std::str::from_utf8(&list).unwrap().lines().collect();
        let mut uniq = names.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), names.len(), "{c:?}: duplicate names in cpio -t");
        assert_eq!(names.len(), m.entries.len() - 1, "{c:?}");
    }
}

/// Parse newc headers with a tiny independent parser: (name, ino, nlink, size).
fn raw_headers(data: &[u8]) -> Vec<(String, u32, u32, u32)> {
    let mut out = Vec::new();
    let mut p = 0;
    loop {
        assert_eq!(&data[p..p + 6], b"070701");
        let f = |i: usize| {
            u32::from_str_radix(
                std::str::from_utf8(&data[p + 6 + i * 8..p + 14 + i * 8]).unwrap(),
                16,
            )
            .unwrap()
        };
        let (ino, nlink, size, namesize) = (f(0), f(4), f(6), f(11) as usize);
        let name = String::from_utf8(data[p + 110..p + 110 + namesize - 1].to_vec()).unwrap();
        p = (p + 110 + namesize).div_ceil(4) * 4;
        if name == "TRAILER!!!" {
            return out;
        }
        out.push((name, ino, nlink, size));
        p = (p + size as usize).div_ceil(4) * 4;
    }
}

#[test]
fn hardlink_data_goes_with_the_first_member_and_inodes_are_sequential() {
    let (m, src) = fixture();
    let raw = pack(&m, &src, &opts(Compress::None));
    let h = raw_headers(&raw);
    let order: Vec<&str> = h.iter().map(|x| x.0.as_str()).collect();
    let want: Vec<&str> = m
        .entries
        .iter()
        .filter(|e| !matches!(e.kind, Kind::Socket))
        .map(|e| e.path.as_str())
        .collect();
    assert_eq!(order, want, "entries in manifest order");
    let get = |n: &str| h.iter().find(|x| x.0 == n).unwrap().clone();
    let (a, b, c) = (get("data/a"), get("data/b"), get("data/c"));
    assert_eq!(
        (a.2, a.3),
        (3, 27),
        "first member: nlink 3, carries the data"
    );
    assert_eq!((b.2, b.3, c.2, c.3), (3, 0, 3, 0), "later members: size 0");
    assert!(a.1 == b.1 && b.1 == c.1);
    // group 2: data/y comes before other/x in write order
    let (y, x) = (get("data/y"), get("other/x"));
    assert_eq!((y.3, x.3, y.1 == x.1), (23, 0, true));
    // inode numbers: 1, 2, … in write order, a group's later members reuse the first's number
    let mut next = 1;
    let mut seen = HashMap::new();
    for (name, ino, _, _) in &h {
        let key = match name.as_str() {
            "data/b" | "data/c" => "data/a",
            "other/x" => "data/y",
            n => n,
        };
        match seen.get(key) {
            Some(i) => assert_eq!(ino, i, "{name}"),
            None => {
                assert_eq!(*ino, next, "{name}");
                seen.insert(key, *ino);
                next += 1;
            }
        }
    }
}

#[test]
fn output_is_reproducible_and_follows_source_date_epoch() {
    let (m, src) = fixture();
    let z = |threads, sde| {
        let mut o = opts(Compress::Zstd { level: 3, threads });
        o.source_date_epoch = Some(sde);
        pack(&m, &src, &o)
    };
    let a = z(2, SDE);
    assert_eq!(a, z(2, SDE), "two runs, same bytes");
    assert_eq!(a, z(1, SDE), "1 vs 2 zstd workers, same bytes");
    assert_eq!(a, z(4, SDE), "4 vs 2 zstd workers, same bytes");
    assert_ne!(a, z(2, SDE - 1), "another source_date_epoch, other bytes");
    for c in [Compress::Gzip { level: 6 }, Compress::Xz { level: 1 }] {
        assert_eq!(
            pack(&m, &src, &opts(c.clone())),
            pack(&m, &src, &opts(c.clone())),
            "{c:?}"
        );
    }
}

#[test]
fn zstd_output_passes_zstd_t_and_padded_outputs_still_decompress() {
    require!(
        have("zstd") && have("gzip") && have("xz"),
        "zstd/gzip/xz not installed"
    );
    let (m, src) = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let plain = pack(&m, &src, &opts(Compress::None));
    let z = pack(
        &m,
        &src,
        &opts(Compress::Zstd {
            level: 3,
            threads: 2,
        }),
    );
    std::fs::write(tmp.path().join("a.zst"), &z).unwrap();
    sh(tmp.path(), "zstd -q -t a.zst", b"");
    for (c, tool) in [
        (
            Compress::Zstd {
                level: 3,
                threads: 2,
            },
            "zstd -q -dc",
        ),
        (Compress::Gzip { level: 6 }, "gzip -dc"),
        (Compress::Xz { level: 1 }, "xz -dc"),
    ] {
        let mut o = opts(c.clone());
        o.pad_to = Some(512);
        let mut out = Vec::new();
        let st = pack_manifest(&src, &m, &mut out, &o).unwrap();
        assert_eq!(out.len() % 512, 0, "{c:?}");
        assert_eq!(st.bytes_out, out.len() as u64);
        assert!(out.len() > pack(&m, &src, &opts(c.clone())).len() || out.len() % 512 == 0);
        let back = sh(tmp.path(), tool, &out); // exit status 0 checked by sh()
        assert_eq!(
            back, plain,
            "{c:?}: padded stream decompresses to the same cpio"
        );
        let mut ours = Vec::new();
        decompressor(std::io::Cursor::new(out))
            .unwrap()
            .read_to_end(&mut ours)
            .unwrap();
        assert_eq!(ours, plain, "{c:?}: our decompressor skips the padding");
    }
}

#[test]
fn unsorted_manifest_and_missing_blob_are_clear_errors() {
    let (mut m, src) = fixture();
    let mut bad = m.clone();
    bad.entries.swap(0, 1);
    let err = pack_manifest(&src, &bad, Vec::new(), &opts(Compress::None)).unwrap_err();
    assert!(err.to_string().contains("not sorted"), "{err}");
    let pos = m.entries.iter().position(|e| e.path == "bin/sh").unwrap();
    if let Kind::File { blob, .. } = &mut m.entries[pos].kind {
        *blob = Hash::of(b"not in the source");
    }
    let err = pack_manifest(&src, &m, Vec::new(), &opts(Compress::None))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("bin/sh") && err.contains("no such blob"),
        "{err}"
    );
}
