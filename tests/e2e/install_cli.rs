//! `osimage install` end to end: install a corpus package into a root, query it with the real
//! rpm, erase it again.

use std::process::Command;

use osimage_e2e::install::rpm;
use osimage_e2e::require;
use osimage_e2e::tools::{have, osimage_bin, osimage_install};

#[test]
fn cli_install_query_erase() {
    let Ok(corpus) = std::env::var("OSIMAGE_CORPUS") else {
        eprintln!("SKIPPED: OSIMAGE_CORPUS is not set");
        return;
    };
    require!(
        osimage_bin().exists(),
        "osimage binary not built (cargo build -p imagecli)"
    );
    require!(have("rpm"), "rpm not installed");
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    let pkg = format!("{corpus}/rpm-upstream/hello-2.0-1.x86_64.rpm");
    let out = osimage_install(&root, ["--noscripts", pkg.as_str()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("installed: hello-2.0-1.x86_64"));
    let (ok, q, _) = rpm(&root, &["-qf", "/usr/bin/hello"]);
    assert!(ok && q.trim() == "hello-2.0-1.x86_64", "{q}");
    // The corrupted package: non-zero exit, message names the file.
    let bad = format!("{corpus}/rpm-upstream/hello-2.0-1.x86_64-corrupted.rpm");
    let out = Command::new(osimage_bin())
        .args(["install", "--noscripts", "--root"])
        .arg(t.path().join("bad"))
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("hello-2.0-1.x86_64-corrupted.rpm"));
    let out = Command::new(osimage_bin())
        .args([
            "install",
            "--noscripts",
            "--dbpath",
            "/var/lib/rpm",
            "--erase",
            "--root",
        ])
        .arg(&root)
        .arg("hello")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, qa, _) = rpm(&root, &["-qa"]);
    assert!(qa.trim().is_empty(), "{qa}");
    assert!(!root.join("usr/bin/hello").exists());
}
