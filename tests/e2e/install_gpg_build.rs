//! `gpgcheck = true` in a spec's `[repos]`, end to end through `osimage lock` / `osimage build`:
//! an unsigned repository fails the install step naming the package file; the same repository
//! signed with `rpmsign` by the spec's key builds.

use std::process::Command;

use osimage_e2e::signing::GpgHome;
use osimage_e2e::spine::osimage;
use osimage_e2e::{require, tools};

#[test]
fn spec_gpgcheck_refuses_unsigned_then_builds_signed() {
    require!(
        tools::have("rpmbuild")
            && tools::have("createrepo_c")
            && tools::have("rpmsign")
            && tools::have("gpg"),
        "needs rpmbuild, createrepo_c, rpmsign and gpg"
    );
    require!(tools::is_root(), "installing with owners needs root");
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let repo = dir.join("repo");
    crate::build_packages::repo(&repo);
    let gpg = GpgHome::new(dir).unwrap();
    gpg.gen_key(
        "Repo Key <repo@osimage.test>",
        "ed25519",
        &dir.join("RPM-GPG-KEY-test"),
    )
    .unwrap();
    std::fs::write(dir.join("compute.pkglist"), "demo-app\n").unwrap();
    std::fs::write(
        dir.join("spec.toml"),
        r#"[osimage]
name = "signed"
osvers = "rocky9.4"
arch = "x86_64"
profile = "compute"

[repos]
pkgdir = ["repo"]
gpgcheck = true
gpgkeys = ["RPM-GPG-KEY-test"]

[packages]
pkglist = ["compute.pkglist"]

[image]
rootimgdir = "out"
"#,
    )
    .unwrap();
    let spec = dir.join("spec.toml");
    let spec_s = spec.to_str().unwrap();
    let o = osimage(&["lock", spec_s, "--cache-dir", "c"], dir);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = osimage(&["build", spec_s, "--cache-dir", "c"], dir);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "built from an unsigned repository");
    assert!(err.contains(".rpm") && err.contains("not signed"), "{err}");

    // sign every package, refresh the metadata and the lock: the build goes through
    for e in std::fs::read_dir(&repo).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "rpm") {
            gpg.sign(&p, "repo@osimage.test").unwrap();
        }
    }
    let st = Command::new("createrepo_c")
        .arg("-q")
        .arg(&repo)
        .status()
        .unwrap();
    assert!(st.success());
    let o = osimage(&["lock", spec_s, "--cache-dir", "c"], dir);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = osimage(&["build", spec_s, "--cache-dir", "c"], dir);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(dir.join("out/rootimg.cpio.zst").exists());
}
