//! End-to-end tests of `osimage copycds` against ISOs made by xorriso and genisoimage from a
//! RHEL-DVD-like tree, compared with the source tree and with `xorriso -osirrox on -extract`.

const FIXTURE_DIR: &str = "copycds-e2e";

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use osimage_e2e::iso::{
    self, Compare, DvdOptions, Fixture, RECORD, dir_names as only_entries, fail, ok, osimage,
    record_fingerprint, s,
};
use osimage_e2e::require;
use osimage_e2e::tools::have;

/// Built once per test binary (shared with `copycds_robust`) under the cargo target tmp dir (rebuilt on every run).
pub(crate) fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        iso::build_fixture(&Path::new(env!("CARGO_TARGET_TMPDIR")).join(FIXTURE_DIR)).unwrap()
    })
}

pub(crate) fn tools_ok() -> Option<String> {
    iso::tools_missing()
}

pub(crate) fn workdir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

#[test]
fn rock_ridge_iso_copy_equals_source_and_osirrox_and_rerun_is_noop() {
    require!(tools_ok().is_none(), tools_ok().unwrap_or_default());
    let f = fixture();
    let w = workdir();
    let store = w.path().join("store");
    let o = osimage(
        w.path(),
        &["copycds", s(&f.rr_iso), "--store", s(&store), "-q"],
    );
    let out = ok(&o);
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("warning"),
        "{o:?}"
    );
    let dest = store.join("rocky9.4/x86_64");
    assert!(out.contains(&format!("to {}", dest.display())), "{out}");
    // Every repodata/ reported, the GPG key recorded.
    assert!(
        out.contains(&format!("repo: {}\n", dest.display())),
        "{out}"
    );
    assert!(
        out.contains(&format!("repo: {}\n", dest.join("AppStream").display())),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "gpgkey: {}",
            dest.join("RPM-GPG-KEY-test").display()
        )),
        "{out}"
    );

    let ours = iso::snapshot(&dest, Compare::Everything, &[RECORD]).unwrap();
    let src = iso::snapshot(&f.tree, Compare::Everything, &[]).unwrap();
    iso::assert_same(&ours, &src, "copy vs source tree");
    assert!(ours.contains_key(iso::LONG_NAME));
    assert!(ours.contains_key(iso::DEEP_FILE));
    assert_eq!(
        ours["images/secret.sh"], src["images/secret.sh"],
        "0750 file mode"
    );
    let x = w.path().join("osirrox");
    iso::xorriso_extract(&f.rr_iso, &x).unwrap();
    let theirs = iso::snapshot(&x, Compare::Everything, &[]).unwrap();
    iso::assert_same(&ours, &theirs, "copy vs xorriso -osirrox extract");
    assert_eq!(
        std::fs::read_link(dest.join("vmlinuz-link")).unwrap(),
        Path::new("images/pxeboot/vmlinuz")
    );

    // Starter spec written, referencing the media.
    let spec = w.path().join("specs/rocky9.4-x86_64-netboot-compute.toml");
    let text = std::fs::read_to_string(&spec).unwrap();
    assert!(
        text.contains("pkgdir = [\"media:rocky9.4/x86_64\"]"),
        "{text}"
    );
    std::fs::write(&spec, "# mine\n").unwrap();

    // Re-run on the same ISO: a no-op, fast, and the edited spec is kept.
    let fp = record_fingerprint(&dest);
    let t = Instant::now();
    let out = ok(&osimage(
        w.path(),
        &["copycds", s(&f.rr_iso), "--store", s(&store), "-q"],
    ));
    let took = t.elapsed();
    assert!(out.contains("nothing to do"), "{out}");
    assert!(took.as_secs_f64() < 0.5, "no-op re-run took {took:?}");
    eprintln!("no-op re-run: {took:?}");
    assert_eq!(record_fingerprint(&dest), fp);
    assert_eq!(std::fs::read_to_string(&spec).unwrap(), "# mine\n");
    assert_eq!(only_entries(&store.join("rocky9.4")), vec!["x86_64"]);

    // Touching the ISO defeats the stat pre-check: the fingerprint is recomputed, still a no-op.
    let copy = w.path().join("same.iso");
    std::fs::copy(&f.rr_iso, &copy).unwrap();
    let out = ok(&osimage(
        w.path(),
        &["copycds", s(&copy), "--store", s(&store), "-q", "-w", "-o"],
    ));
    assert!(out.contains("nothing to do"), "{out}");

    // The tree xorriso extracted, imported as a directory, has the same fingerprint.
    let store2 = w.path().join("store2");
    ok(&osimage(
        w.path(),
        &["copycds", s(&x), "--store", s(&store2), "-q", "-o"],
    ));
    assert_eq!(record_fingerprint(&store2.join("rocky9.4/x86_64")), fp);
}

#[test]
fn joliet_only_iso_copy_equals_osirrox() {
    require!(tools_ok().is_none(), tools_ok().unwrap_or_default());
    let f = fixture();
    let w = workdir();
    let store = w.path().join("store");
    ok(&osimage(
        w.path(),
        &[
            "copycds",
            s(&f.joliet_iso),
            "--store",
            s(&store),
            "-q",
            "-o",
        ],
    ));
    let dest = store.join("rocky9.4/x86_64");
    let ours = iso::snapshot(&dest, Compare::NoModes, &[RECORD]).unwrap();
    let x = w.path().join("osirrox");
    iso::xorriso_extract(&f.joliet_iso, &x).unwrap();
    let theirs = iso::snapshot(&x, Compare::NoModes, &[]).unwrap();
    iso::assert_same(&ours, &theirs, "Joliet copy vs xorriso extract");
    // Names up to 64 characters come through unchanged, with their content.
    let src = iso::snapshot(&f.tree, Compare::NoModes, &[]).unwrap();
    for p in [
        ".discinfo",
        ".treeinfo",
        "media.repo",
        "Mixed Case Ünïcödé name.txt",
    ] {
        assert_eq!(ours.get(p), src.get(p), "{p}");
    }
    for (p, n) in &src {
        if matches!(n, iso::Node::File(..)) && p.starts_with("Packages/") {
            assert_eq!(ours.get(p), Some(n), "{p}");
        }
    }
    // Joliet has no modes: files 0644, dirs 0755 (the store stays writable by its owner).
    use std::os::unix::fs::PermissionsExt;
    let m = std::fs::metadata(dest.join(".discinfo"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(m & 0o7777, 0o644);
}

#[test]
fn dnf_installs_from_the_copied_tree() {
    require!(tools_ok().is_none(), tools_ok().unwrap_or_default());
    require!(have("dnf") && have("rpm"), "dnf/rpm not installed");
    let f = fixture();
    let w = workdir();
    let store = w.path().join("store");
    ok(&osimage(
        w.path(),
        &["copycds", s(&f.rr_iso), "--store", s(&store), "-q", "-o"],
    ));
    let dest = store.join("rocky9.4/x86_64");
    let home = w.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join(".rpmmacros"), "%_dbpath /var/lib/rpm\n").unwrap();
    let reposd = w.path().join("repos.d");
    std::fs::create_dir_all(&reposd).unwrap();
    let conf = w.path().join("dnf.conf");
    std::fs::write(
        &conf,
        format!(
            "[main]\ngpgcheck=0\ninstall_weak_deps=False\nkeepcache=False\nreposdir={}\n",
            reposd.display()
        ),
    )
    .unwrap();
    let root = w.path().join("root");
    let out = Command::new("dnf")
        .env("HOME", &home)
        .arg("-y")
        .arg(format!("--config={}", conf.display()))
        .arg(format!("--installroot={}", root.display()))
        .arg("--releasever=9")
        .arg(format!("--repofrompath=base,file://{}", dest.display()))
        .arg(format!(
            "--repofrompath=app,file://{}",
            dest.join("AppStream").display()
        ))
        .args(["--repo=base", "--repo=app"])
        .args(["--setopt=base.gpgcheck=0", "--setopt=app.gpgcheck=0"])
        .args(["install", "cc-app"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dnf failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let q = Command::new("rpm")
        .env("HOME", &home)
        .arg("--root")
        .arg(&root)
        .args(["-qa", "--qf", "%{NAME}-%{VERSION}\\n"])
        .output()
        .unwrap();
    let mut names: Vec<String> = String::from_utf8_lossy(&q.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    names.sort();
    assert_eq!(names, vec!["cc-app-3.0", "cc-base-1.0", "cc-lib-2.0"]);
    assert_eq!(
        std::fs::read_to_string(root.join("usr/share/cc-app/README")).unwrap(),
        "cc-app 3.0\n"
    );
    let _ = &f.rpms;
}

#[test]
fn inspection_prints_names_and_copies_nothing() {
    require!(tools_ok().is_none(), tools_ok().unwrap_or_default());
    let f = fixture();
    let w = workdir();
    let store = w.path().join("store");
    let out = ok(&osimage(
        w.path(),
        &["copycds", "-i", s(&f.rr_iso), "--store", s(&store)],
    ));
    assert_eq!(out, "DISTNAME:rocky9.4\nARCH:x86_64\nDISCNO:all\n");
    assert!(!store.exists());
    assert!(!w.path().join("specs").exists());
    // -n renames; -a must match.
    let out = ok(&osimage(
        w.path(),
        &[
            "copycds",
            "-i",
            "-n",
            "rhels9.4-supp",
            "-a",
            "x86_64",
            s(&f.rr_iso),
        ],
    ));
    assert!(out.starts_with("DISTNAME:rhels9.4-supp\n"), "{out}");
    let err = fail(&osimage(
        w.path(),
        &[
            "copycds",
            "-a",
            "aarch64",
            s(&f.rr_iso),
            "--store",
            s(&store),
        ],
    ));
    assert!(
        err.contains("requested architecture aarch64, but the media is x86_64"),
        "{err}"
    );
    assert!(!store.exists());
}

#[test]
fn bad_media_give_clear_errors_and_leave_nothing() {
    require!(tools_ok().is_none(), tools_ok().unwrap_or_default());
    let f = fixture();
    let w = workdir();
    let store = w.path().join("store");

    let truncated = w.path().join("truncated.iso");
    let data = std::fs::read(&f.rr_iso).unwrap();
    std::fs::write(&truncated, &data[..data.len() / 2]).unwrap();
    let err = fail(&osimage(
        w.path(),
        &["copycds", s(&truncated), "--store", s(&store)],
    ));
    assert!(
        err.contains("truncated") && err.contains("truncated.iso"),
        "{err}"
    );
    assert!(
        !store.exists(),
        "store left behind: {:?}",
        only_entries(&store)
    );

    let random = w.path().join("random.iso");
    let noise: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&random, noise).unwrap();
    let err = fail(&osimage(
        w.path(),
        &["copycds", s(&random), "--store", s(&store)],
    ));
    assert!(
        err.contains("not an ISO 9660 image") && err.contains("random.iso"),
        "{err}"
    );
    assert!(!store.exists());

    // A tree whose .treeinfo checksum for images/pxeboot/vmlinuz is wrong.
    let bad_tree = w.path().join("badtree");
    iso::make_dvd_tree(
        &bad_tree,
        &f.rpms,
        &DvdOptions {
            bad_checksum: true,
            ..DvdOptions::default()
        },
    )
    .unwrap();
    let bad_iso = w.path().join("bad.iso");
    iso::xorriso_iso(&bad_tree, &bad_iso).unwrap();
    let err = fail(&osimage(
        w.path(),
        &["copycds", s(&bad_iso), "--store", s(&store)],
    ));
    assert!(
        err.contains("images/pxeboot/vmlinuz")
            && err.contains("checksum")
            && err.contains("bad.iso"),
        "{err}"
    );
    assert!(
        !store.exists(),
        "store left behind: {:?}",
        only_entries(&store)
    );
    assert!(!w.path().join("specs").exists());

    // An existing store keeps only what it had.
    std::fs::create_dir_all(&store).unwrap();
    fail(&osimage(
        w.path(),
        &["copycds", s(&bad_iso), "--store", s(&store)],
    ));
    assert_eq!(only_entries(&store), Vec::<String>::new());
}
