//! Full install vs the real `dnf --installroot` on an rpmbuild-made repository (createrepo_c):
//! usrmerge filesystem, %pre user creation + owned files, %post, file triggers, a rich dep.
//! Same tree (ignoring dnf's own cache/log/history files) and same `rpm -qa/-qf/-V` answers.

use std::path::{Path, PathBuf};
use std::process::Command;

use imagecore::install::{InstallOptions, ScriptletMode, install_packages};
use osimage_e2e::install::{FILESYSTEM, PLUGIN, SVC, diff, now, rpm, rpmbuild, snapshot};

const DNF_LEFTOVERS: &[&str] = &[
    "var/lib/rpm",
    "var/cache",
    "var/lib/dnf",
    "var/log",
    "etc/dnf",
    "var/tmp",
];

fn dnf_install(repo: &Path, root: &Path, work: &Path, pkgs: &[&str]) {
    let home = work.join("home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(work.join("repos.d")).unwrap();
    std::fs::write(home.join(".rpmmacros"), "%_dbpath /var/lib/rpm\n").unwrap();
    let conf = work.join("dnf.conf");
    std::fs::write(
        &conf,
        format!(
            "[main]\ngpgcheck=0\ninstall_weak_deps=False\nkeepcache=False\nbest=False\nreposdir={}\n",
            work.join("repos.d").display()
        ),
    )
    .unwrap();
    let out = Command::new("dnf")
        .env("HOME", &home)
        .arg("-y")
        .arg(format!("--config={}", conf.display()))
        .arg(format!("--installroot={}", root.display()))
        .arg("--releasever=9")
        .arg(format!("--repofrompath=t,file://{}", repo.display()))
        .args(["--repo=t", "--setopt=t.gpgcheck=0", "install"])
        .args(pkgs)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dnf: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn full_install_matches_dnf_installroot() {
    osimage_e2e::require_all!(osimage_e2e::tools::needs(
        true,
        &["dnf", "rpmbuild", "createrepo_c", "rpm"],
        true
    ));
    let t = tempfile::tempdir().unwrap();
    let top = t.path().join("build");
    let mut rpms: Vec<PathBuf> = rpmbuild(&top, "mini-filesystem", FILESYSTEM);
    rpms.extend(rpmbuild(&top, "mini-svc", SVC));
    rpms.extend(rpmbuild(&top, "mini-plugin", PLUGIN));
    let repo = top.join("RPMS");
    let st = Command::new("createrepo_c").arg(&repo).output().unwrap();
    assert!(st.status.success());
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (o, u) = (t.path().join("dnf-root"), t.path().join("ours"));
    let started = now();
    dnf_install(
        &repo,
        &o,
        &t.path().join("dnfwork"),
        &["mini-plugin", "mini-svc"],
    );
    let opts = InstallOptions {
        scriptlets: ScriptletMode::Run,
        dbpath: Some("/var/lib/rpm".into()),
        nodeps: false,
        jobs: 2,
        gpgkeys: None,
    };
    let report = install_packages(&u, &rpms, &opts).unwrap();
    assert_eq!(report.packages.len(), 3);
    let d = diff(
        &snapshot(&o, DNF_LEFTOVERS),
        &snapshot(&u, DNF_LEFTOVERS),
        started,
    );
    assert!(d.is_empty(), "trees differ from dnf's:\n{}", d.join("\n"));
    let q = |root: &Path, args: &[&str]| {
        let (ok, out, err) = rpm(root, args);
        assert!(ok, "rpm {args:?} on {}: {err}", root.display());
        let mut l: Vec<String> = out.lines().map(str::to_string).collect();
        l.sort();
        l
    };
    for args in [
        &["-qa", "--qf", "%{NEVRA}\\n"][..],
        &["-qf", "/var/lib/svc/conf"],
        &["-qf", "/bin/sh"],
        &["-qf", "/usr/lib/trig/plugin.so"],
        &["-qf", "/lib/trig/own"],
        &["-q", "--whatprovides", "/bin/sh"],
        &["-V", "mini-svc"],
        &["-V", "mini-plugin"],
    ] {
        assert_eq!(q(&o, args), q(&u, args), "rpm {args:?}");
    }
}
