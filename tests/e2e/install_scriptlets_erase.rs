//! Erase triggers against the real `rpm -e --root` (which runs them chrooted too):
//! `%triggerun` / `%triggerpostun` of other packages on the erased one, the erased package's own
//! `%triggerun`, `%filetriggerun` / `%filetriggerpostun` with the erased paths on stdin, and a
//! version-ranged trigger that must not fire — every effect appended to one log, whose order and
//! arguments must equal rpm's.

use osimage_e2e::install::{FILESYSTEM, diff, now, rpm, rpm_install, rpmbuild, snapshot};

use imagecore::install::{InstallOptions, ScriptletMode, erase_packages, install_packages};

const LOG: &str = "/var/lib/order.log";

fn watcher() -> String {
    format!(
        r#"
Name: watcher
Version: 1
Release: 1
Summary: watches target
License: MIT
BuildArch: noarch
%description
w
%install
mkdir -p %{{buildroot}}/usr/share/watcher
echo w > %{{buildroot}}/usr/share/watcher/w
%triggerun -- target
echo "watcher triggerun $1 $2" >> {LOG}
%triggerpostun -- target
echo "watcher triggerpostun $1 $2" >> {LOG}
%triggerun -- target > 5
echo "watcher ranged triggerun $1 $2 (must not fire)" >> {LOG}
%filetriggerun -- /usr/share/target
echo "watcher filetriggerun $1" >> {LOG}
cat >> {LOG}
%filetriggerpostun -- /usr/share/target
echo "watcher filetriggerpostun $1" >> {LOG}
cat >> {LOG}
%files
/usr/share/watcher/w
"#
    )
}

fn target() -> String {
    format!(
        r#"
Name: target
Version: 1
Release: 1
Summary: the erased one
License: MIT
BuildArch: noarch
%description
t
%install
mkdir -p %{{buildroot}}/usr/share/target
echo a > %{{buildroot}}/usr/share/target/a
echo b > %{{buildroot}}/usr/share/target/b
%preun
echo "target preun $1" >> {LOG}
%postun
echo "target postun $1" >> {LOG}
%triggerun -- watcher
echo "target own triggerun $1 $2" >> {LOG}
%files
/usr/share/target
"#
    )
}

#[test]
fn erase_triggers_match_rpm_e() {
    osimage_e2e::require_all!(osimage_e2e::tools::needs(true, &["rpm", "rpmbuild"], true));
    let t = tempfile::tempdir().unwrap();
    let top = t.path().join("build");
    let mut rpms = rpmbuild(&top, "mini-filesystem", FILESYSTEM);
    rpms.extend(rpmbuild(&top, "watcher", &watcher()));
    rpms.extend(rpmbuild(&top, "target", &target()));
    assert_eq!(rpms.len(), 3);
    let (o, u) = (t.path().join("oracle"), t.path().join("ours"));
    std::fs::create_dir_all(&o).unwrap();
    let started = now();
    let (ok, err) = rpm_install(&o, &rpms, true);
    assert!(ok, "oracle: {err}");
    let opts = InstallOptions {
        scriptlets: ScriptletMode::Run,
        dbpath: Some("/var/lib/rpm".into()),
        nodeps: true,
        jobs: 2,
        gpgkeys: None,
    };
    install_packages(&u, &rpms, &opts).unwrap();
    let log = |r: &std::path::Path| {
        std::fs::read_to_string(r.join(LOG.trim_start_matches('/'))).unwrap_or_default()
    };
    assert_eq!(log(&o), log(&u), "install-time logs differ");

    let (ok, _, e) = rpm(&o, &["-e", "--nodeps", "target"]);
    assert!(ok, "rpm -e: {e}");
    erase_packages(&u, &["target".to_string()], &opts).unwrap();
    let (ours, theirs) = (log(&u), log(&o));
    assert_eq!(ours, theirs, "erase effects differ (ours left, rpm right)");
    // the log is not trivially equal: every kind of trigger ran, the ranged one did not
    for needle in [
        "watcher filetriggerun 0\n/usr/share/target\n/usr/share/target/a\n/usr/share/target/b\n",
        "target own triggerun 0 1\nwatcher triggerun 1 0\ntarget preun 0\nwatcher filetriggerpostun 0\n",
        "target postun 0\nwatcher triggerpostun 1 0\n",
    ] {
        assert!(ours.contains(needle), "missing {needle:?} in:\n{ours}");
    }
    assert!(!ours.contains("must not fire"), "{ours}");
    let ignore = ["var/lib/rpm", "var/tmp", "proc", "sys", "dev"];
    let d = diff(&snapshot(&o, &ignore), &snapshot(&u, &ignore), started);
    assert!(d.is_empty(), "trees differ after erase:\n{}", d.join("\n"));
    let (ok, out, _) = rpm(&u, &["-qa"]);
    assert!(ok && !out.contains("target"), "{out}");
}
