//! The install engine with a store: unpacked packages cached by package sha256 (a second
//! install restores them instead of decompressing), the lock's sha256 checked in the same read,
//! and the output manifest built from what was placed: it must equal a full re-scan of the
//! tree, including a file a %post rewrote in place with the same size and the old mtime.

use std::path::{Path, PathBuf};

use imagecore::install::{
    InstallOptions, InstallStore, RpmInput, ScriptletMode, install_with_store,
};
use imagecore::store::Store;
use imagecore::tree::{Kind, Manifest, scan, scan_with_stats};
use osimage_e2e::install::{FILESYSTEM, PLUGIN, SVC, rpmbuild};

/// A %post that rewrites its own file in place: same size, mtime put back.
const EDIT: &str = r#"
Name: mini-edit
Version: 1
Release: 1
Summary: %post rewrites a packaged file in place
License: MIT
BuildArch: noarch
Requires(post): /bin/sh
%description
edit
%install
mkdir -p %{buildroot}/etc
echo AAAA > %{buildroot}/etc/edit.conf
%post
m=$(/usr/bin/busybox stat -c %Y /etc/edit.conf)
echo BBBB > /etc/edit.conf
/usr/bin/busybox touch -d @$m /etc/edit.conf
%files
/etc/edit.conf
"#;

fn sha256(p: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(p)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

fn inputs(rpms: &[PathBuf]) -> Vec<RpmInput> {
    rpms.iter()
        .map(|p| RpmInput {
            path: p.clone(),
            sha256: Some(sha256(p)),
        })
        .collect()
}

/// Entries without mtimes and without the rpmdb (install times differ between installs).
fn comparable(m: &Manifest) -> Vec<(String, Kind, u32, u32, u32)> {
    m.entries
        .iter()
        .filter(|e| !e.path.starts_with("var/lib/rpm"))
        .map(|e| (e.path.clone(), e.kind.clone(), e.mode, e.uid, e.gid))
        .collect()
}

#[test]
fn stage_cache_and_manifest_from_placement() {
    osimage_e2e::require_all!(osimage_e2e::tools::needs(
        true,
        &["rpmbuild", "sha256sum"],
        true
    ));
    let t = tempfile::tempdir().unwrap();
    let top = t.path().join("build");
    let mut rpms: Vec<PathBuf> = rpmbuild(&top, "mini-filesystem", FILESYSTEM);
    rpms.extend(rpmbuild(&top, "mini-svc", SVC));
    rpms.extend(rpmbuild(&top, "mini-plugin", PLUGIN));
    rpms.extend(rpmbuild(&top, "mini-edit", EDIT));
    assert_eq!(rpms.len(), 4);
    let store = Store::open(&t.path().join("store")).unwrap();
    let opts = InstallOptions {
        scriptlets: ScriptletMode::Run,
        dbpath: Some("/var/lib/rpm".into()),
        nodeps: true,
        jobs: 2,
        gpgkeys: None,
    };

    // cold: everything unpacked from payloads, then cached
    let a = t.path().join("a");
    let mut link = InstallStore::new(&store);
    let rep = install_with_store(&a, &inputs(&rpms), &opts, Some(&mut link)).unwrap();
    assert_eq!(rep.packages.len(), 4);
    assert_eq!((link.cache_hits, link.cache_misses), (0, 4));
    let (ma, stats) = scan_with_stats(&store, &a, Some(&link.placed)).unwrap();
    assert_eq!(
        ma,
        scan(&store, &a, None).unwrap(),
        "manifest from placement != full scan"
    );
    // busybox, its links' target, conf, own, plugin.so … came from staging; the edited file,
    // passwd/group (appended by %pre), stamps, logs and the rpmdb were re-read
    assert!(stats.reused >= 4, "{stats:?}");
    assert!(stats.hashed >= 1 && stats.hashed < 20, "{stats:?}");
    let edit = ma.get("etc/edit.conf").unwrap();
    assert_eq!(
        edit.kind,
        Kind::File {
            blob: imagecore::hash::Hash::of(b"BBBB\n"),
            size: 5,
            link: None
        },
        "the in-place rewrite by %post must be seen"
    );

    // warm: a second image restores every package from the store
    let b = t.path().join("b");
    let mut link = InstallStore::new(&store);
    install_with_store(&b, &inputs(&rpms), &opts, Some(&mut link)).unwrap();
    assert_eq!((link.cache_hits, link.cache_misses), (4, 0));
    let (mb, _) = scan_with_stats(&store, &b, Some(&link.placed)).unwrap();
    assert_eq!(mb, scan(&store, &b, None).unwrap());
    assert_eq!(comparable(&ma), comparable(&mb));
    assert_eq!(
        std::fs::read(b.join("usr/bin/busybox")).unwrap(),
        std::fs::read("/bin/busybox").unwrap()
    );

    // a file that is not what the lock says is refused, cached or not
    let c = t.path().join("c");
    let mut wrong = inputs(&rpms);
    wrong[2].sha256 = Some("0".repeat(64));
    let err = install_with_store(&c, &wrong, &opts, Some(&mut InstallStore::new(&store)))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("does not match the expected") && err.contains("mini-plugin"),
        "{err}"
    );
    let tampered = t.path().join("mini-plugin-tampered.rpm");
    let mut bytes = std::fs::read(&rpms[2]).unwrap();
    bytes.push(0);
    std::fs::write(&tampered, bytes).unwrap();
    let mut wrong = inputs(&rpms);
    wrong[2].path = tampered; // still the (cached) original's sha256
    let err = install_with_store(&c, &wrong, &opts, Some(&mut InstallStore::new(&store)))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("does not match the expected") && err.contains("tampered"),
        "{err}"
    );
    assert!(!c.join("usr/lib/trig/plugin.so").exists());
}
