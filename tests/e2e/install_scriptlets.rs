//! Scriptlets against the real `rpm -i --root` (which also runs them chrooted): %pre creating a
//! user that owns files, %post with $1, a %filetriggerin and a %transfiletriggerin, on a usrmerge
//! filesystem package (/bin -> usr/bin). Also: no mount leaks to the host.

use std::path::PathBuf;

use imagecore::install::{InstallOptions, ScriptletMode, install_packages};
use osimage_e2e::install::{
    FILESYSTEM, PLUGIN, SVC, diff, now, rpm, rpm_install, rpmbuild, snapshot,
};

fn mounts() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn scriptlets_match_rpm_and_leave_no_mounts() {
    osimage_e2e::require_all!(osimage_e2e::tools::needs(true, &["rpm", "rpmbuild"], true));
    let t = tempfile::tempdir().unwrap();
    let top = t.path().join("build");
    let mut rpms: Vec<PathBuf> = rpmbuild(&top, "mini-filesystem", FILESYSTEM);
    rpms.extend(rpmbuild(&top, "mini-svc", SVC));
    rpms.extend(rpmbuild(&top, "mini-plugin", PLUGIN));
    assert_eq!(rpms.len(), 3);
    let (o, u) = (t.path().join("oracle"), t.path().join("ours"));
    std::fs::create_dir_all(&o).unwrap();
    let started = now();
    let (ok, err) = rpm_install(&o, &rpms, true);
    assert!(ok, "oracle: {err}");
    let before = mounts();
    let opts = InstallOptions {
        scriptlets: ScriptletMode::Run,
        dbpath: Some("/var/lib/rpm".into()),
        nodeps: true,
        jobs: 2,
        gpgkeys: None,
    };
    let report = install_packages(&u, &rpms, &opts).unwrap();
    assert_eq!(mounts(), before, "mounts leaked to the host");
    assert!(report.scriptlets_run >= 4, "{report:?}");
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let stamp = std::fs::read_to_string(u.join("var/lib/svc/post.stamp")).unwrap();
    assert_eq!(stamp, "post 1\n");
    // our sandbox provides a minimal /dev (rpm on this host runs without one)
    assert_eq!(
        std::fs::read_to_string(u.join("var/tmp/devcheck")).unwrap(),
        "devnull-ok\n"
    );
    for d in ["proc", "sys", "dev"] {
        assert!(
            !u.join(d).exists(),
            "temporary mount point /{d} left behind"
        );
    }
    let ignore = ["var/lib/rpm", "var/tmp", "proc", "sys", "dev"];
    let d = diff(&snapshot(&o, &ignore), &snapshot(&u, &ignore), started);
    assert!(d.is_empty(), "trees differ:\n{}", d.join("\n"));
    let su = snapshot(&u, &[]);
    assert_eq!(
        (su["var/lib/svc/conf"].uid, su["var/lib/svc/conf"].gid),
        (777, 778)
    );
    assert!(su.contains_key("var/lib/svc/trigger.log"));
    // rpm's answers on our db
    let (ok, out, _) = rpm(&u, &["-qf", "/var/lib/svc/conf"]);
    assert!(ok && out.trim() == "mini-svc-1-1.noarch", "{out}");
    let (ok, out, e) = rpm(&u, &["-V", "mini-svc"]);
    assert!(ok, "rpm -V: {out} {e}");
    assert_eq!(
        std::fs::read_to_string(u.join("var/lib/svc/triggerin.log")).unwrap(),
        "triggerin 1 1\n"
    );

    // Erase with scriptlets: ours vs rpm -e (both run %preun/%postun chrooted).
    let (ok, _, e) = rpm(&o, &["-e", "--nodeps", "mini-plugin"]);
    assert!(ok, "rpm -e: {e}");
    let before = mounts();
    imagecore::install::erase_packages(&u, &["mini-plugin".to_string()], &opts).unwrap();
    assert_eq!(mounts(), before, "mounts leaked to the host");
    assert_eq!(
        std::fs::read_to_string(u.join("var/lib/svc/erase.log")).unwrap(),
        "preun 0\npostun 0\n"
    );
    let d = diff(&snapshot(&o, &ignore), &snapshot(&u, &ignore), started);
    assert!(d.is_empty(), "trees differ after erase:\n{}", d.join("\n"));
}

#[test]
fn triggers_of_previously_installed_packages_fire() {
    osimage_e2e::require_all!(osimage_e2e::tools::needs(true, &["rpm", "rpmbuild"], true));
    let t = tempfile::tempdir().unwrap();
    let top = t.path().join("build");
    let mut base: Vec<PathBuf> = rpmbuild(&top, "mini-filesystem", FILESYSTEM);
    base.extend(rpmbuild(&top, "mini-svc", SVC));
    let plugin = rpmbuild(&top, "mini-plugin", PLUGIN);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (o, u) = (t.path().join("oracle"), t.path().join("ours"));
    std::fs::create_dir_all(&o).unwrap();
    let started = now();
    // Two transactions each (like otherpkgs on top of the base install).
    for set in [&base, &plugin] {
        let (ok, err) = rpm_install(&o, set, true);
        assert!(ok, "oracle: {err}");
    }
    let opts = InstallOptions {
        scriptlets: ScriptletMode::Run,
        dbpath: Some("/var/lib/rpm".into()),
        nodeps: true,
        jobs: 2,
        gpgkeys: None,
    };
    install_packages(&u, &base, &opts).unwrap();
    let r = install_packages(&u, &plugin, &opts).unwrap();
    assert!(r.scriptlets_run >= 3, "{r:?}");
    for f in ["trigger.log", "transtrigger.log", "triggerin.log"] {
        assert!(u.join("var/lib/svc").join(f).exists(), "{f} missing");
    }
    let ignore = ["var/lib/rpm", "var/tmp", "proc", "sys", "dev"];
    let d = diff(&snapshot(&o, &ignore), &snapshot(&u, &ignore), started);
    assert!(d.is_empty(), "trees differ:\n{}", d.join("\n"));
}
