//! Hostile packages: traversal names, absolute symlinks followed by a later write, and archive
//! entries that the header does not list. Nothing may land outside the root.

use std::path::Path;

use imagecore::install::{InstallOptions, ScriptletMode, install_packages};
use rpm::{FileOptions, PackageBuilder};

fn opts() -> InstallOptions {
    InstallOptions {
        scriptlets: ScriptletMode::Skip,
        dbpath: Some("/var/lib/rpm".into()),
        nodeps: true,
        jobs: 1,
        gpgkeys: None,
    }
}

fn write(pkg: rpm::Package, dir: &Path, name: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    pkg.write_file(&p).unwrap();
    p
}

#[test]
fn absolute_symlink_then_file_stays_inside_root() {
    let t = tempfile::tempdir().unwrap();
    let host_dir = t.path().join("host-target");
    std::fs::create_dir_all(&host_dir).unwrap();
    // Package 1: /evil -> <absolute host path>; package 2 writes /evil/pwned through it.
    let mut b = PackageBuilder::new("evil-link", "1", "MIT", "noarch", "x");
    b.with_symlink(FileOptions::symlink("/evil", host_dir.to_str().unwrap()))
        .unwrap();
    let p1 = write(b.build().unwrap(), t.path(), "evil-link.rpm");
    let mut b = PackageBuilder::new("evil-file", "1", "MIT", "noarch", "x");
    b.with_file_contents("owned", FileOptions::new("/evil/pwned"))
        .unwrap();
    let p2 = write(b.build().unwrap(), t.path(), "evil-file.rpm");
    let root = t.path().join("root");
    install_packages(&root, &[p1, p2], &opts()).unwrap();
    assert!(
        !host_dir.join("pwned").exists(),
        "wrote through the symlink to the host"
    );
    // Followed as in a chroot: the absolute target is re-rooted inside the image.
    let inside = root.join(host_dir.strip_prefix("/").unwrap()).join("pwned");
    assert_eq!(std::fs::read_to_string(inside).unwrap(), "owned");
}

#[test]
fn dotdot_symlink_chain_cannot_climb_out() {
    let t = tempfile::tempdir().unwrap();
    let mut b = PackageBuilder::new("evil-up", "1", "MIT", "noarch", "x");
    b.with_symlink(FileOptions::symlink("/up", "../../../../../../../.."))
        .unwrap();
    b.with_file_contents("x", FileOptions::new("/up/tmp/osimage-escape-test"))
        .unwrap();
    let p = write(b.build().unwrap(), t.path(), "evil-up.rpm");
    let root = t.path().join("root");
    let _ = std::fs::remove_file("/tmp/osimage-escape-test");
    let r = install_packages(&root, &[p], &opts());
    assert!(
        !Path::new("/tmp/osimage-escape-test").exists(),
        "escaped the root"
    );
    if r.is_ok() {
        assert!(root.join("tmp/osimage-escape-test").exists());
    }
}

#[test]
fn traversal_names_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let mut b = PackageBuilder::new("evil-dots", "1", "MIT", "noarch", "x");
    let built = b
        .with_file_contents(
            "x",
            FileOptions::new("/usr/../../../../tmp/osimage-dots-test"),
        )
        .ok()
        .and_then(|b| b.build().ok());
    let Some(pkg) = built else {
        eprintln!("note: the rpm builder itself refuses '..' names");
        return;
    };
    let p = write(pkg, t.path(), "evil-dots.rpm");
    let root = t.path().join("root");
    let e = install_packages(&root, &[p], &opts());
    assert!(
        !Path::new("/tmp/osimage-dots-test").exists(),
        "escaped the root"
    );
    if let Err(e) = e {
        let e = e.to_string();
        assert!(e.contains("evil-dots.rpm"), "{e}");
    } else {
        // The builder normalised the name: then it must have landed inside.
        assert!(root.join("tmp/osimage-dots-test").exists());
    }
}

#[test]
fn payload_entry_not_in_header_is_refused() {
    // Header lists /a; the payload (hand-made cpio) carries ../../escape instead.
    let t = tempfile::tempdir().unwrap();
    let mut b = PackageBuilder::new("evil-cpio", "1", "MIT", "noarch", "x");
    b.with_file_contents("AAAA", FileOptions::new("/a"))
        .unwrap();
    b.using_config(rpm::BuildConfig::default().compression(rpm::CompressionType::None));
    let pkg = b.build().unwrap();
    let good = write(pkg.clone(), t.path(), "good.rpm");
    let mut bytes = std::fs::read(&good).unwrap();
    // Same length names: "./a" -> "../" is not the same length; replace the name bytes in place.
    let pos = bytes
        .windows(4)
        .position(|w| w == b"./a\0")
        .expect("cpio name in payload");
    bytes[pos..pos + 3].copy_from_slice(b"../");
    let evil = t.path().join("evil-cpio.rpm");
    std::fs::write(&evil, &bytes).unwrap();
    let root = t.path().join("root");
    let e = install_packages(&root, &[evil], &opts())
        .unwrap_err()
        .to_string();
    assert!(e.contains("evil-cpio.rpm"), "{e}");
    // Either the digest or the header/payload cross-check refuses it; nothing lands.
    assert!(
        std::fs::read_dir(&root).map(|d| d.count()).unwrap_or(0) == 0,
        "files left in root"
    );
    assert!(!t.path().join("a").exists());
}
