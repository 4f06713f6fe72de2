//! pack_dir against GNU cpio, and against pack_manifest on the same tree.

use std::collections::HashMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use imagecore::archive::{Compress, PackOptions, pack_dir, pack_manifest};
use imagecore::hash::Hash;
use imagecore::tree::manifest::{Kind, Manifest};

use crate::archive_common;
use archive_common::*;

#[test]
fn pack_dir_round_trips_through_gnu_cpio() {
    require!(have("cpio") && have("zstd"), "cpio/zstd not installed");
    require!(is_root(), "needs root for owners and device nodes");
    let stage = tempfile::tempdir().unwrap();
    let s = stage.path();
    sh(
        s,
        "set -e; mkdir -p bin lib/modules dev; printf '#!/bin/sh\\n' > init; chmod 755 init; \
         head -c 300000 /dev/urandom > lib/modules/a.ko; ln lib/modules/a.ko lib/modules/b.ko; \
         ln -s ../init bin/init; mknod dev/console c 5 1; mkfifo dev/fifo; chmod 4711 bin; \
         chown 7:8 init; touch -d @1650000000 init lib/modules/a.ko",
        b"",
    );
    let mut out = Vec::new();
    let o = PackOptions {
        source_date_epoch: Some(SDE),
        pad_to: None,
        compress: Compress::Zstd {
            level: 3,
            threads: 1,
        },
    };
    let st = pack_dir(s, &mut out, &o).unwrap();
    assert_eq!(st.entries, 10);
    let mut again = Vec::new();
    pack_dir(s, &mut again, &o).unwrap();
    assert_eq!(out, again, "pack_dir is reproducible");
    let dst = tempfile::tempdir().unwrap();
    sh(
        dst.path(),
        "zstd -dc | cpio -idm --no-absolute-filenames --quiet",
        &out,
    );
    let list = sh(dst.path(), "zstd -dc | cpio -t --quiet", &out);
    assert_eq!(
        String::from_utf8(list).unwrap(),
        "bin\nbin/init\ndev\ndev/console\ndev/fifo\ninit\nlib\nlib/modules\nlib/modules/a.ko\nlib/modules/b.ko\n"
    );
    let d = dst.path();
    let md = |p: &str| std::fs::symlink_metadata(d.join(p)).unwrap();
    assert_eq!(md("init").uid(), 7);
    assert_eq!(md("init").mtime(), 1_650_000_000);
    assert_eq!(md("bin").mode() & 0o7777, 0o4711);
    assert_eq!(md("lib/modules/a.ko").ino(), md("lib/modules/b.ko").ino());
    assert_eq!(
        std::fs::read(d.join("lib/modules/b.ko")).unwrap(),
        std::fs::read(s.join("lib/modules/a.ko")).unwrap()
    );
    assert!(md("dev/console").file_type().is_char_device());
    assert!(md("dev/fifo").file_type().is_fifo());
    assert_eq!(
        std::fs::read_link(d.join("bin/init")).unwrap().to_str(),
        Some("../init")
    );
}

/// A manifest of `dir` built independently of pack_dir (walkdir, blobs by content hash).
fn manifest_of(dir: &Path) -> (Manifest, MapSource) {
    let mut blobs = HashMap::new();
    let mut groups: HashMap<u64, u32> = HashMap::new();
    let mut entries = Vec::new();
    for e in walkdir::WalkDir::new(dir).min_depth(1).sort_by_file_name() {
        let e = e.unwrap();
        let md = e.path().symlink_metadata().unwrap();
        let ft = md.file_type();
        let kind = if ft.is_dir() {
            Kind::Dir
        } else if ft.is_symlink() {
            Kind::Symlink {
                target: std::fs::read_link(e.path())
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .into(),
            }
        } else if ft.is_fifo() {
            Kind::Fifo
        } else {
            let data = std::fs::read(e.path()).unwrap();
            let h = Hash::of(&data);
            let size = data.len() as u64;
            blobs.insert(h, data);
            let link = (md.nlink() > 1).then(|| {
                let next = groups.len() as u32 + 1;
                *groups.entry(md.ino()).or_insert(next)
            });
            Kind::File {
                blob: h,
                size,
                link,
            }
        };
        let mut x = entry(
            e.path().strip_prefix(dir).unwrap().to_str().unwrap(),
            kind,
            md.mode() & 0o7777,
            md.mtime(),
        );
        x.uid = md.uid();
        x.gid = md.gid();
        entries.push(x);
    }
    let mut m = Manifest { entries };
    m.sort();
    (m, MapSource(blobs))
}

#[test]
fn pack_dir_and_pack_manifest_write_the_same_bytes() {
    let stage = tempfile::tempdir().unwrap();
    let s = stage.path();
    sh(
        s,
        "set -e; mkdir -p a/b c a-b; printf one > a/b/1; printf two > a/2; ln a/2 c/2; ln a/2 a-b/2; \
         head -c 5000000 /dev/urandom > c/big; ln -s ../a/2 c/l; mkfifo c/p; chmod 1777 c; chmod 4755 a/b/1",
        b"",
    );
    let (m, src) = manifest_of(s);
    for c in [
        Compress::None,
        Compress::Zstd {
            level: 3,
            threads: 2,
        },
    ] {
        let o = PackOptions {
            source_date_epoch: Some(SDE),
            compress: c,
            pad_to: Some(512),
        };
        let mut from_dir = Vec::new();
        pack_dir(s, &mut from_dir, &o).unwrap();
        let mut from_manifest = Vec::new();
        pack_manifest(&src, &m, &mut from_manifest, &o).unwrap();
        assert!(
            from_dir == from_manifest,
            "{:?}: pack_dir and pack_manifest differ",
            o.compress
        );
        assert_eq!(from_dir.len() % 512, 0);
    }
}
