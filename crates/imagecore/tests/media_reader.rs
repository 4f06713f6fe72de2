//! Library tests of the media module: MediaReader over ISOs made by xorriso/genisoimage and over
//! directories, fingerprints, copycds through the API, media references.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use imagecore::media::{
    CopyOptions, EntryKind, MediaError, MediaReader, MediaTree, copycds, detect, media_fingerprint,
    open_media, resolve_media_ref,
};

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool} >/dev/null 2>&1"))
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

macro_rules! require_tool {
    ($t:expr) => {
        if !have($t) {
            eprintln!("SKIPPED: {} is not installed", $t);
            return;
        }
    };
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A small media tree: .discinfo, long and UTF-8 names, a symlink, a deep file, a 0750 file.
fn tree(root: &Path) {
    std::fs::create_dir_all(root.join("Packages")).unwrap();
    std::fs::write(
        root.join(".discinfo"),
        "1700000000.0\nAlmaLinux 9.4\nx86_64\n1\n",
    )
    .unwrap();
    std::fs::write(root.join("Packages/pkg-1.0.rpm"), vec![7u8; 70_000]).unwrap();
    let long = "L".repeat(100) + ".txt";
    std::fs::write(root.join(long), b"long").unwrap();
    std::fs::write(root.join("Ünïcödé.txt"), b"utf8").unwrap();
    let deep = root.join("d1/d2/d3/d4/d5/d6/d7/d8/d9/d10");
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("f"), b"deep").unwrap();
    std::fs::write(root.join("run.sh"), b"#!/bin/sh\n").unwrap();
    std::fs::set_permissions(root.join("run.sh"), std::fs::Permissions::from_mode(0o750)).unwrap();
    std::os::unix::fs::symlink("Packages/pkg-1.0.rpm", root.join("link")).unwrap();
}

fn xorriso(args: &[&str], src: &Path, iso: &Path) {
    run(Command::new("xorriso")
        .args(["-as", "mkisofs", "-quiet"])
        .args(args)
        .arg("-o")
        .arg(iso)
        .arg(src));
}

fn strip(r: &dyn MediaReader) -> Vec<(String, EntryKind, u32, u64, Option<String>)> {
    r.entries()
        .iter()
        .map(|e| (e.path.clone(), e.kind, e.mode, e.size, e.target.clone()))
        .collect()
}

#[test]
fn rock_ridge_reader_lists_and_reads_the_source_tree() {
    require_tool!("xorriso");
    let w = tempfile::tempdir().unwrap();
    let src = w.path().join("src");
    tree(&src);
    let iso = w.path().join("rr.iso");
    xorriso(&["-R", "-J", "-joliet-long"], &src, &iso);
    let r = open_media(&iso).unwrap();
    assert_eq!(r.tree(), MediaTree::RockRidge);
    let d = open_media(&src).unwrap();
    assert_eq!(d.tree(), MediaTree::Directory);
    // Same entries (path, kind, mode, size, target) as the directory reader sees.
    assert_eq!(strip(r.as_ref()), strip(d.as_ref()));
    assert_eq!(r.stat("run.sh").unwrap().mode, 0o750);
    assert_eq!(r.stat("link").unwrap().kind, EntryKind::Symlink);
    assert_eq!(
        r.read_file("d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/f").unwrap(),
        b"deep"
    );
    assert_eq!(
        r.read_file("Packages/pkg-1.0.rpm").unwrap(),
        vec![7u8; 70_000]
    );
    // Same fingerprint as the tree it was made from.
    assert_eq!(
        media_fingerprint(r.as_ref()).unwrap(),
        media_fingerprint(d.as_ref()).unwrap()
    );
    assert_eq!(detect(r.as_ref()).unwrap().distname, "alma9.4");
    assert!(matches!(r.stat("nope"), Err(MediaError::NotFound { .. })));
}

#[test]
fn joliet_and_primary_trees_are_read_when_there_is_no_rock_ridge() {
    require_tool!("xorriso");
    require_tool!("genisoimage");
    let w = tempfile::tempdir().unwrap();
    let src = w.path().join("src");
    tree(&src);
    let j = w.path().join("j.iso");
    run(Command::new("genisoimage")
        .args(["-quiet", "-J", "-joliet-long", "-o"])
        .arg(&j)
        .arg(&src));
    let r = open_media(&j).unwrap();
    assert_eq!(r.tree(), MediaTree::Joliet);
    assert_eq!(r.stat(".discinfo").unwrap().mode, 0o644);
    assert_eq!(r.stat("Packages").unwrap().mode, 0o755);
    assert_eq!(r.read_file("Ünïcödé.txt").unwrap(), b"utf8");
    assert_eq!(detect(r.as_ref()).unwrap().distname, "alma9.4");

    // genisoimage without -R/-J writes the primary tree only (xorriso always adds Rock Ridge).
    let p = w.path().join("p.iso");
    run(Command::new("genisoimage")
        .args(["-quiet", "-o"])
        .arg(&p)
        .arg(&src));
    let r = open_media(&p).unwrap();
    assert_eq!(r.tree(), MediaTree::Primary);
    // 8.3 upper-case names, but the content is there.
    let pkg = r
        .entries()
        .iter()
        .find(|e| e.path.starts_with("PACKAGES/") && e.kind == EntryKind::File)
        .unwrap()
        .path
        .clone();
    assert_eq!(r.read_file(&pkg).unwrap(), vec![7u8; 70_000]);
}

#[test]
fn copycds_api_reports_progress_and_media_refs_resolve() {
    require_tool!("xorriso");
    let w = tempfile::tempdir().unwrap();
    let src = w.path().join("src");
    tree(&src);
    let iso = w.path().join("rr.iso");
    xorriso(&["-R"], &src, &iso);
    let store = w.path().join("store");
    let e = resolve_media_ref(&store, "media:alma9.4/x86_64").unwrap_err();
    assert!(e.to_string().contains("osimage copycds"), "{e}");
    assert!(matches!(
        resolve_media_ref(&store, "alma9.4"),
        Err(MediaError::BadReference(_))
    ));
    assert!(matches!(
        resolve_media_ref(&store, "../x/y"),
        Err(MediaError::BadReference(_))
    ));
    let seen = std::cell::RefCell::new(Vec::new());
    let opts = CopyOptions {
        store: store.clone(),
        spec_dir: Some(w.path().join("specs")),
        ..CopyOptions::default()
    };
    let reports = copycds(std::slice::from_ref(&iso), &opts, &|d, t| {
        seen.borrow_mut().push((d, t))
    })
    .unwrap();
    assert_eq!(reports.len(), 1);
    let r = &reports[0];
    assert_eq!(r.dest, store.join("alma9.4/x86_64"));
    assert!(!r.skipped_same);
    let seen = seen.into_inner();
    let (last_done, total) = *seen.last().unwrap();
    assert_eq!(last_done, total);
    assert_eq!(total, r.bytes);
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0));
    assert_eq!(
        r.starter_spec.as_deref(),
        Some(
            w.path()
                .join("specs/alma9.4-x86_64-netboot-compute.toml")
                .as_path()
        )
    );
    assert_eq!(
        resolve_media_ref(&store, "media:alma9.4/x86_64").unwrap(),
        r.dest
    );
    // The recorded fingerprint is the media's.
    let reader = open_media(&iso).unwrap();
    assert_eq!(r.fingerprint, media_fingerprint(reader.as_ref()).unwrap());
    // Second run: skipped, and the existing spec is not rewritten.
    let again = copycds(&[iso], &opts, &|_, _| {}).unwrap();
    assert!(again[0].skipped_same);
    assert_eq!(again[0].starter_spec, None);
}

/// Multi-extent files (> 4 GiB) need a 4+ GiB ISO: opt in with OSIMAGE_BIG_TESTS=1.
#[test]
fn multi_extent_file_over_4gib() {
    require_tool!("xorriso");
    if std::env::var_os("OSIMAGE_BIG_TESTS").is_none() {
        eprintln!("SKIPPED: set OSIMAGE_BIG_TESTS=1 to build a 4+ GiB ISO");
        return;
    }
    let w = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let src = w.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let big = src.join("big.img");
    let len: u64 = (1 << 32) + (3 << 20) + 123;
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::File::create(&big).unwrap();
        f.set_len(len).unwrap();
        let mut at = 0u64;
        while at + 8 < len {
            f.seek(SeekFrom::Start(at)).unwrap();
            f.write_all(&at.to_le_bytes()).unwrap();
            at += 64 << 20;
        }
        f.seek(SeekFrom::Start(len - 8)).unwrap();
        f.write_all(b"THE-END!").unwrap();
    }
    let iso = w.path().join("big.iso");
    xorriso(&["-R", "-iso-level", "3"], &src, &iso);
    std::fs::remove_file(&big).unwrap();
    let r = open_media(&iso).unwrap();
    assert_eq!(r.stat("big.img").unwrap().size, len);
    let opts = CopyOptions {
        name: Some("big1".into()),
        arch: Some("x86_64".into()),
        store: w.path().join("store"),
        noosimage: true,
        ..CopyOptions::default()
    };
    let rep = copycds(&[iso], &opts, &|_, _| {}).unwrap();
    let out = rep[0].dest.join("big.img");
    assert_eq!(std::fs::metadata(&out).unwrap().len(), len);
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(&out).unwrap();
    let mut buf = [0u8; 8];
    for at in [0u64, 64 << 20, 4096 << 20] {
        f.seek(SeekFrom::Start(at)).unwrap();
        f.read_exact(&mut buf).unwrap();
        assert_eq!(u64::from_le_bytes(buf), at, "at {at}");
    }
    f.seek(SeekFrom::Start(len - 8)).unwrap();
    f.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"THE-END!");
}

fn disc(root: &Path, no: &str) {
    std::fs::create_dir_all(root).unwrap();
    std::fs::write(
        root.join(".discinfo"),
        format!("1.0\nRed Hat Enterprise Linux 7.9\nx86_64\n{no}\n"),
    )
    .unwrap();
}

#[test]
fn discs_of_one_set_merge_and_a_symlink_is_never_followed() {
    let w = tempfile::tempdir().unwrap();
    let (d1, d2) = (w.path().join("d1"), w.path().join("d2"));
    disc(&d1, "1");
    disc(&d2, "2");
    std::fs::create_dir_all(d1.join("Packages")).unwrap();
    std::fs::write(d1.join("Packages/one.rpm"), b"1").unwrap();
    std::fs::create_dir_all(d2.join("Packages")).unwrap();
    std::fs::write(d2.join("Packages/two.rpm"), b"2").unwrap();
    let store = w.path().join("store");
    let opts = CopyOptions {
        store: store.clone(),
        noosimage: true,
        ..CopyOptions::default()
    };
    let r = copycds(&[d1.clone(), d2.clone()], &opts, &|_, _| {}).unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].discno, "1,2");
    let dest = store.join("rhels7.9/x86_64");
    assert!(dest.join("Packages/one.rpm").is_file() && dest.join("Packages/two.rpm").is_file());
    // Disc 2 wins on a shared path.
    assert_eq!(
        std::fs::read_to_string(dest.join(".discinfo"))
            .unwrap()
            .lines()
            .nth(3),
        Some("2")
    );

    // A disc whose symlink points outside, then a disc with a real directory of that name.
    let outside = w.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let (e1, e2) = (w.path().join("e1"), w.path().join("e2"));
    disc(&e1, "1");
    disc(&e2, "2");
    std::os::unix::fs::symlink(&outside, e1.join("a")).unwrap();
    std::fs::create_dir_all(e2.join("a")).unwrap();
    std::fs::write(e2.join("a/x"), b"x").unwrap();
    let store2 = w.path().join("store2");
    let opts = CopyOptions {
        store: store2.clone(),
        noosimage: true,
        ..CopyOptions::default()
    };
    let err = copycds(&[e1, e2], &opts, &|_, _| {}).unwrap_err();
    assert!(matches!(err, MediaError::Io { .. }), "{err}");
    assert!(!outside.join("x").exists(), "wrote through a symlink");
    assert!(
        !store2.exists(),
        "left {:?} behind",
        std::fs::read_dir(&store2).ok()
    );
}
