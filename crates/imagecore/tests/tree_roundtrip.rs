//! scan → materialize → scan on a tree with every file type, compared with our own manifests AND
//! with listings from real tools (stat, find, getfattr, getcap, sha256sum); scan with a stat
//! cache; hash_tree; error cases.

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;

use common::*;
use imagecore::store::Store;
use imagecore::tree::{self, Kind};

/// Build the fixture tree with real tools. Root-only parts are skipped (with a note) otherwise.
fn build_tree(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    sh(
        dir,
        r#"set -e
mkdir -p etc usr/bin usr/lib/sub var/tmp srv/shared dev empty
printf 'hello\n' > etc/hostname
: > etc/empty
head -c 1048576 /dev/urandom > usr/lib/blob.bin
seq 1 50000 > usr/lib/seq.txt
printf '#!/bin/sh\necho hi\n' > usr/bin/tool; chmod 0755 usr/bin/tool
cp usr/bin/tool usr/bin/suid; chmod 4755 usr/bin/suid
cp usr/bin/tool usr/bin/sgid; chmod 2711 usr/bin/sgid
printf secret > etc/shadow; chmod 0000 etc/shadow
printf ro > etc/ro; chmod 0444 etc/ro
ln -s ../lib/blob.bin usr/bin/rel-link
ln -s /etc/hostname usr/bin/abs-link
ln -s nowhere/at/all usr/bin/dangling
ln -s lib usr/lib64
printf data > usr/lib/h1; ln usr/lib/h1 etc/h2; ln usr/lib/h1 usr/lib/sub/h3
printf other > usr/lib/g1; ln usr/lib/g1 var/g2
mkfifo dev/fifo
"#,
    );
    if have("setfattr") {
        sh(
            dir,
            "setfattr -n user.note -v 'hello world' etc/hostname && \
             setfattr -n user.bin -v 0x00ff10 usr/lib/blob.bin && \
             setfattr -n user.dir -v d srv/shared",
        );
    } else {
        eprintln!("SKIPPED (part): setfattr not installed, no user.* xattrs in the fixture");
    }
    std::os::unix::net::UnixListener::bind(dir.join("dev/sock")).unwrap();
    if is_root() {
        sh(
            dir,
            "set -e
mknod dev/null c 1 3; mknod dev/loop0 b 7 0
chown 1234:5678 etc/hostname; chown -h 42:43 usr/bin/abs-link; chown 0:6 dev/loop0
chown 1000:1000 srv/shared
chmod 0660 dev/loop0; chmod 2775 srv/shared
setcap cap_net_raw=ep usr/bin/tool
setfattr -n trusted.t -v x etc/ro",
        );
    } else {
        eprintln!("SKIPPED (part): not root: no devices, owners, security.capability");
    }
    sh(
        dir,
        "set -e
chmod 1777 var/tmp; chmod 0750 usr/lib/sub
touch -h -d @0 usr/bin/dangling
touch -d @-31536000 etc/ro
touch -d @4102444800 etc/hostname
touch -d @1700000000.123456789 usr/lib/seq.txt
touch -d @1600000000 usr/lib/sub usr/lib usr/bin usr etc var/tmp var srv/shared srv dev empty",
    );
}

/// Listings of a tree by real tools, comparable between two trees.
fn tool_listing(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    out.push((
        "stat".into(),
        sh(
            dir,
            "find . -mindepth 1 | LC_ALL=C sort | xargs -d '\\n' stat -c '%n|%F|%a|%u|%g|%h|%Y|%t:%T|%N'",
        ),
    ));
    out.push((
        "sizes".into(),
        sh(dir, "find . -type f -printf '%P %s\\n' | LC_ALL=C sort"),
    ));
    out.push((
        "content".into(),
        sh(
            dir,
            "find . -type f -exec sha256sum {} + | LC_ALL=C sort -k2",
        ),
    ));
    // hardlink groups as sets of paths (inode numbers differ between trees)
    let links = sh(dir, "find . -type f -links +1 -printf '%i %P\\n'");
    let mut groups: std::collections::BTreeMap<&str, BTreeSet<&str>> = Default::default();
    for l in links.lines() {
        let (ino, p) = l.split_once(' ').unwrap();
        groups.entry(ino).or_default().insert(p);
    }
    let sets: BTreeSet<Vec<&str>> = groups
        .values()
        .map(|s| s.iter().copied().collect())
        .collect();
    out.push(("hardlinks".into(), format!("{sets:?}")));
    if have("getfattr") {
        out.push((
            "getfattr".into(),
            sh(
                dir,
                "find . -mindepth 1 | LC_ALL=C sort | xargs -d '\\n' getfattr -h -d -m - -- 2>/dev/null || true",
            ),
        ));
    } else {
        eprintln!("SKIPPED (part): getfattr not installed");
    }
    if have("getcap") {
        out.push(("getcap".into(), sh(dir, "getcap -r . | LC_ALL=C sort")));
    }
    out
}

#[test]
fn scan_materialize_scan_matches_itself_and_real_tools() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    build_tree(&src);
    let store = Store::open(&d.path().join("store")).unwrap();
    let m1 = tree::scan(&store, &src, None).unwrap();

    // the manifest saw every kind
    let has = |f: &dyn Fn(&Kind) -> bool| m1.entries.iter().any(|e| f(&e.kind));
    assert!(has(&|k| matches!(k, Kind::Fifo)));
    assert!(has(&|k| matches!(k, Kind::Socket)));
    assert!(has(&|k| matches!(k, Kind::Symlink { .. })));
    let h1 = m1.get("usr/lib/h1").unwrap();
    let h3 = m1.get("usr/lib/sub/h3").unwrap();
    let g1 = m1.get("usr/lib/g1").unwrap();
    match (
        &h1.kind,
        &h3.kind,
        &g1.kind,
        &m1.get("etc/h2").unwrap().kind,
    ) {
        (
            Kind::File { link: Some(a), .. },
            Kind::File { link: Some(b), .. },
            Kind::File { link: Some(c), .. },
            Kind::File { link: Some(e), .. },
        ) => {
            assert_eq!((a, b), (e, e));
            assert_ne!(a, c);
            // groups numbered in path order: etc/h2 (group of h1) comes before usr/lib/g1
            assert!(e < c);
        }
        other => panic!("hardlinks not grouped: {other:?}"),
    }
    assert_eq!(m1.get("usr/bin/suid").unwrap().mode, 0o4755);
    assert_eq!(m1.get("var/tmp").unwrap().mode, 0o1777);
    assert_eq!(m1.get("etc/ro").unwrap().mtime, -31_536_000);
    assert_eq!(m1.get("etc/hostname").unwrap().mtime, 4_102_444_800);
    assert_eq!(m1.get("usr/lib/seq.txt").unwrap().mtime, 1_700_000_000);
    if have("setfattr") {
        assert_eq!(
            m1.get("usr/lib/blob.bin").unwrap().xattrs["user.bin"],
            vec![0x00, 0xff, 0x10]
        );
    }
    if is_root() {
        assert!(matches!(
            m1.get("dev/loop0").unwrap().kind,
            Kind::Block { major: 7, minor: 0 }
        ));
        assert!(matches!(
            m1.get("dev/null").unwrap().kind,
            Kind::Char { major: 1, minor: 3 }
        ));
        assert!(
            m1.get("usr/bin/tool")
                .unwrap()
                .xattrs
                .contains_key("security.capability")
        );
        assert_eq!(m1.get("etc/hostname").unwrap().uid, 1234);
    }

    let dst = d.path().join("dst");
    let cache = tree::materialize(&store, &m1, &dst).unwrap();
    let m2 = tree::scan(&store, &dst, Some(&cache)).unwrap();
    assert_eq!(m1, m2, "scan → materialize → scan changed the manifest");
    assert_eq!(m1.id(), m2.id());

    let a = tool_listing(&src);
    if std::env::var_os("PEEK").is_some() {
        for (n, l) in &a {
            eprintln!("== {n}\n{l}");
        }
    }
    let b = tool_listing(&dst);
    for ((name, la), (_, lb)) in a.iter().zip(b.iter()) {
        assert!(!la.trim().is_empty(), "{name} listing empty");
        assert_eq!(
            la, lb,
            "{name} listing differs between source and materialised tree"
        );
    }
    if is_root() && have("getcap") {
        let caps = &a.iter().find(|(n, _)| n == "getcap").unwrap().1;
        assert!(caps.contains("cap_net_raw=ep"), "{caps}");
    }
    // the materialised files are copies, not links into the store
    let md = std::fs::metadata(dst.join("usr/lib/blob.bin")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::nlink(&md), 1);

    // hash_tree: same content → same hash (mtimes are not part of it)
    assert_eq!(
        tree::hash_tree(&src).unwrap(),
        tree::hash_tree(&dst).unwrap()
    );
}

#[test]
fn scan_with_prev_rehashes_only_changed_files() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    std::fs::create_dir_all(src.join("a/b")).unwrap();
    for i in 0..200 {
        std::fs::write(
            src.join(format!("a/b/f{i}")),
            text_bytes(&format!("{i}"), 2000 + i),
        )
        .unwrap();
    }
    std::fs::write(src.join("a/one"), b"1").unwrap();
    std::fs::hard_link(src.join("a/one"), src.join("a/two")).unwrap();
    let store = Store::open(&d.path().join("store")).unwrap();
    let m = tree::scan(&store, &src, None).unwrap();
    let dst = d.path().join("dst");
    let cache = tree::materialize(&store, &m, &dst).unwrap();

    let (same, st) = tree::scan_with_stats(&store, &dst, Some(&cache)).unwrap();
    assert_eq!(same, m);
    assert_eq!((st.hashed, st.reused, st.files), (0, 201, 201), "{st:?}");

    // change: one file's content (other size), one same-size rewrite with mtime restored,
    // one chmod (metadata only: ctime changes, so it is re-read too), one new file
    std::fs::write(dst.join("a/b/f3"), b"different").unwrap();
    let p = dst.join("a/b/f4");
    let mt = filetime::FileTime::from_last_modification_time(&std::fs::metadata(&p).unwrap());
    let mut data = std::fs::read(&p).unwrap();
    data[0] ^= 1;
    std::fs::write(&p, &data).unwrap();
    filetime::set_file_mtime(&p, mt).unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(dst.join("a/b/f5")).unwrap().permissions(),
        0o600,
    );
    std::fs::set_permissions(
        dst.join("a/b/f5"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    std::fs::write(dst.join("a/new"), b"new file").unwrap();
    let (m2, st2) = tree::scan_with_stats(&store, &dst, Some(&cache)).unwrap();
    assert_eq!(st2.hashed, 4, "{st2:?}");
    assert_eq!(st2.reused, 198, "{st2:?}");
    // and the result equals a full scan without the cache
    let full = tree::scan(&store, &dst, None).unwrap();
    assert_eq!(m2, full);
    assert_ne!(
        m2.get("a/b/f4"),
        m.get("a/b/f4"),
        "same-size change detected"
    );
}

#[test]
fn hash_tree_with_stat_cache() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("t");
    std::fs::create_dir_all(src.join("x")).unwrap();
    std::fs::write(src.join("x/a"), b"alpha").unwrap();
    std::fs::write(src.join("x/b"), b"beta").unwrap();
    std::os::unix::fs::symlink("a", src.join("x/l")).unwrap();
    let cache = d.path().join("cache/t.json");
    let h0 = tree::hash_tree(&src).unwrap();
    assert_eq!(
        tree::hash_tree_cached(&src, Some(&cache), None).unwrap(),
        h0
    );
    assert!(cache.exists());
    assert_eq!(
        tree::hash_tree_cached(&src, Some(&cache), None).unwrap(),
        h0
    );
    // mtime only: same key
    filetime::set_file_mtime(src.join("x/a"), filetime::FileTime::from_unix_time(5, 0)).unwrap();
    assert_eq!(
        tree::hash_tree_cached(&src, Some(&cache), None).unwrap(),
        h0
    );
    // same size, same mtime, other content: detected through ctime
    let mt = filetime::FileTime::from_last_modification_time(
        &std::fs::metadata(src.join("x/b")).unwrap(),
    );
    std::fs::write(src.join("x/b"), b"BETA").unwrap();
    filetime::set_file_mtime(src.join("x/b"), mt).unwrap();
    let h1 = tree::hash_tree_cached(&src, Some(&cache), None).unwrap();
    assert_ne!(h1, h0);
    assert_eq!(tree::hash_tree(&src).unwrap(), h1);
    // mode and link target count
    std::fs::set_permissions(
        src.join("x/a"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let h2 = tree::hash_tree(&src).unwrap();
    assert_ne!(h2, h1);
    std::fs::remove_file(src.join("x/l")).unwrap();
    std::os::unix::fs::symlink("b", src.join("x/l")).unwrap();
    assert_ne!(tree::hash_tree(&src).unwrap(), h2);
}

#[test]
fn errors_name_the_path() {
    use std::os::unix::ffi::OsStrExt;
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    std::fs::create_dir_all(src.join("ok")).unwrap();
    std::fs::write(
        src.join("ok")
            .join(std::ffi::OsStr::from_bytes(b"bad\xffname")),
        b"x",
    )
    .unwrap();
    let store = Store::open(&d.path().join("store")).unwrap();
    let err = tree::scan(&store, &src, None).unwrap_err().to_string();
    assert!(err.contains("ok/bad") && err.contains("UTF-8"), "{err}");

    // materialise refuses a non-empty target and a path under a symlink
    let good = d.path().join("good");
    std::fs::create_dir_all(good.join("d")).unwrap();
    std::os::unix::fs::symlink("/tmp", good.join("link")).unwrap();
    let mut m = tree::scan(&store, &good, None).unwrap();
    let busy = d.path().join("busy");
    std::fs::create_dir_all(&busy).unwrap();
    std::fs::write(busy.join("x"), b"").unwrap();
    let err = tree::materialize(&store, &m, &busy)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not empty") && err.contains("busy"), "{err}");
    // a manifest whose blob is not in the store: the error names the file
    let other = Store::open(&d.path().join("other-store")).unwrap();
    let mut with_file = m.clone();
    let mut f = m.entries[0].clone();
    f.path = "d/file".into();
    f.kind = Kind::File {
        blob: imagecore::Hash::of(b"absent"),
        size: 6,
        link: None,
    };
    with_file.entries.push(f);
    with_file.sort();
    let err = tree::materialize(&other, &with_file, &d.path().join("out2"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("out2/d/file") && err.contains("not in the cache"),
        "{err}"
    );
    let mut evil = m.entries[0].clone();
    evil.path = "link/escape".into();
    m.entries.push(evil);
    m.sort();
    let err = tree::materialize(&store, &m, &d.path().join("out"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("link/escape"), "{err}");
    assert!(!Path::new("/tmp/escape").exists());
}
