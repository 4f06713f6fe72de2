//! End-to-end tests of copycds robustness: overwrite rules, supplementary and multiple media,
//! a killed copy, block devices.

use std::process::Command;
use std::time::Instant;

use osimage_e2e::iso::{
    self, Compare, DvdOptions, RECORD, dir_names as only_entries, fail, ok, osimage,
    record_fingerprint, s,
};
use osimage_e2e::require;
use osimage_e2e::tools::{have, osimage_bin};

use super::copycds_e2e::{fixture, tools_ok, workdir};

#[test]
fn nonoverwrite_supplementary_and_several_media() {
    require!(tools_ok().is_none(), tools_ok().unwrap_or_default());
    let f = fixture();
    let w = workdir();
    let store = w.path().join("store");
    ok(&osimage(
        w.path(),
        &["copycds", s(&f.rr_iso), "--store", s(&store), "-q", "-o"],
    ));
    let dest = store.join("rocky9.4/x86_64");
    let fp1 = record_fingerprint(&dest);

    // Different media with the same distro name: -w refuses, without -w it is replaced.
    let other_tree = w.path().join("other");
    iso::make_dvd_tree(
        &other_tree,
        &f.rpms,
        &DvdOptions {
            big_bytes: 100_000,
            ..DvdOptions::default()
        },
    )
    .unwrap();
    let other_iso = w.path().join("other.iso");
    iso::xorriso_iso(&other_tree, &other_iso).unwrap();
    let err = fail(&osimage(
        w.path(),
        &["copycds", "-w", s(&other_iso), "--store", s(&store)],
    ));
    assert!(err.contains("not overwriting"), "{err}");
    assert_eq!(record_fingerprint(&dest), fp1);
    ok(&osimage(
        w.path(),
        &["copycds", s(&other_iso), "--store", s(&store), "-q", "-o"],
    ));
    let fp2 = record_fingerprint(&dest);
    assert_ne!(fp1, fp2);
    let ours = iso::snapshot(&dest, Compare::Everything, &[RECORD]).unwrap();
    let src = iso::snapshot(&other_tree, Compare::Everything, &[]).unwrap();
    iso::assert_same(&ours, &src, "replaced copy vs its source");
    assert_eq!(only_entries(&store.join("rocky9.4")), vec!["x86_64"]);

    // Supplementary media under their own name; and several media (ISO + directory) in one call.
    let alma = w.path().join("alma");
    iso::make_dvd_tree(
        &alma,
        &f.rpms,
        &DvdOptions {
            description: "AlmaLinux 9.4",
            family: "AlmaLinux",
            ..DvdOptions::default()
        },
    )
    .unwrap();
    let out = ok(&osimage(
        w.path(),
        &[
            "copycds",
            "-n",
            "rocky9.4-supp",
            s(&f.rr_iso),
            "--store",
            s(&store),
            "-q",
            "-o",
        ],
    ));
    assert!(out.contains("rocky9.4-supp/x86_64"), "{out}");
    let out = ok(&osimage(
        w.path(),
        &[
            "copycds",
            s(&f.joliet_iso),
            s(&alma),
            "--store",
            s(&store),
            "-q",
            "-o",
        ],
    ));
    assert!(
        out.contains(&format!("to {}", store.join("alma9.4/x86_64").display())),
        "{out}"
    );
    assert!(
        out.contains(&format!("to {}", store.join("rocky9.4/x86_64").display())),
        "{out}"
    );
    assert_eq!(
        only_entries(&store),
        vec!["alma9.4", "rocky9.4", "rocky9.4-supp"]
    );
    let a = iso::snapshot(
        &store.join("alma9.4/x86_64"),
        Compare::Everything,
        &[RECORD],
    )
    .unwrap();
    let b = iso::snapshot(&alma, Compare::Everything, &[]).unwrap();
    iso::assert_same(&a, &b, "directory media copy vs its source");
}

#[test]
fn a_killed_copy_never_looks_complete() {
    require!(tools_ok().is_none(), tools_ok().unwrap_or_default());
    let f = fixture();
    let w = workdir();
    let tree = w.path().join("bigtree");
    iso::make_dvd_tree(
        &tree,
        &f.rpms,
        &DvdOptions {
            big_bytes: 400 << 20,
            ..DvdOptions::default()
        },
    )
    .unwrap();
    let big = w.path().join("big.iso");
    iso::xorriso_iso(&tree, &big).unwrap();
    std::fs::remove_dir_all(&tree).unwrap();
    let store = w.path().join("store");
    let mut child = Command::new(osimage_bin())
        .current_dir(w.path())
        .args(["copycds", s(&big), "--store", s(&store), "-q", "-o"])
        .spawn()
        .unwrap();
    let parent = store.join("rocky9.4");
    let t = Instant::now();
    // Wait until the staging dir appears, then kill -9.
    while t.elapsed().as_secs() < 20 && only_entries(&parent).is_empty() {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::thread::sleep(std::time::Duration::from_millis(150));
    child.kill().unwrap();
    let status = child.wait().unwrap();
    if status.success() {
        eprintln!("SKIPPED: the copy finished before it could be killed");
        return;
    }
    let left = only_entries(&parent);
    assert!(
        !parent.join("x86_64").exists(),
        "a killed copy looks complete: {left:?}"
    );
    assert!(
        left.iter().all(|n| n.starts_with(".osimage-staging-")),
        "{left:?}"
    );
    // The next run finishes the import and removes the dead run's staging dir.
    ok(&osimage(
        w.path(),
        &["copycds", s(&big), "--store", s(&store), "-q", "-o"],
    ));
    assert_eq!(only_entries(&parent), vec!["x86_64"]);
    assert!(parent.join("x86_64").join(RECORD).is_file());
}

/// Detaches a loop device on drop.
struct Loop(String);

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

#[test]
fn block_device_is_read_as_an_iso() {
    require!(tools_ok().is_none(), tools_ok().unwrap_or_default());
    require!(osimage_e2e::tools::is_root(), "needs root for losetup");
    require!(have("losetup"), "losetup not installed");
    let f = fixture();
    let out = Command::new("losetup")
        .args(["-f", "--show", "-r"])
        .arg(&f.rr_iso)
        .output()
        .unwrap();
    require!(
        out.status.success(),
        format!(
            "cannot attach a loop device: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    );
    let dev = Loop(String::from_utf8_lossy(&out.stdout).trim().to_string());
    let w = workdir();
    let store = w.path().join("store");
    let out = ok(&osimage(
        w.path(),
        &["copycds", &dev.0, "--store", s(&store), "-q", "-o"],
    ));
    assert!(out.contains("rocky9.4 x86_64"), "{out}");
    let dest = store.join("rocky9.4/x86_64");
    let ours = iso::snapshot(&dest, Compare::Everything, &[RECORD]).unwrap();
    let src = iso::snapshot(&f.tree, Compare::Everything, &[]).unwrap();
    iso::assert_same(&ours, &src, "copy from a block device vs source tree");
    // Devices have no usable stamp: the re-run re-hashes and finds the same content.
    let out = ok(&osimage(
        w.path(),
        &["copycds", &dev.0, "--store", s(&store), "-q", "-o"],
    ));
    assert!(out.contains("nothing to do"), "{out}");
}
