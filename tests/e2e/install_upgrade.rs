//! Upgrades against the real `rpm -U --root`: an rpmbuild-made v1 → v2 of a package with a
//! subpackage (a file dropped in v2, a file moved to the subpackage, `%config` files plain
//! and `noreplace`, changed and unchanged on disk, one identical in both versions), an
//! `Obsoletes` replacing another name, scriptlets of every kind logging `$1`/`$2` and what
//! they see, a watcher with package triggers (`%triggerprein` included), file triggers and
//! transaction file triggers of every sense, and file triggers of two priorities on the same
//! paths. The effect log (order and arguments), the tree, `rpm -qa` and `rpm -Va` must equal
//! real rpm's.

use std::path::{Path, PathBuf};

use osimage_e2e::install::{FILESYSTEM, diff, now, rpm, rpm_install, rpmbuild, snapshot};

use imagecore::install::{InstallOptions, ScriptletMode, install_packages};

const LOG: &str = "/var/lib/order.log";

/// `echo "<who> <what> $1 [$2] [seen]" >> LOG`
fn log(who: &str, what: &str, args: &str, seen: &str) -> String {
    format!("echo \"{who} {what} {args}{seen}\" >> {LOG}\n")
}

fn seen(path: &str) -> String {
    format!(" {path}=$(test -e {path} && cat {path} || echo none)")
}

fn app(v: u32) -> String {
    let mut s = format!(
        r#"
Name: app
Version: {v}
Release: 1
Summary: app
License: MIT
BuildArch: noarch
{obs}
%description
app
%package extra
Summary: extra
%description extra
extra
%install
mkdir -p %{{buildroot}}/etc/app %{{buildroot}}/usr/share/app %{{buildroot}}/usr/share/app-extra
for f in plain plainkeep noreplace noreplacekeep; do echo "$f v{v}" > %{{buildroot}}/etc/app/$f.conf; done
echo same > %{{buildroot}}/etc/app/samecfg.conf
echo "common v{v}" > %{{buildroot}}/usr/share/app/common
echo same > %{{buildroot}}/usr/share/app/same
echo moved > %{{buildroot}}/usr/share/app/moved
echo x > %{{buildroot}}/usr/share/app-extra/x
{dropped}
"#,
        obs = if v == 2 { "Obsoletes: legacy < 2" } else { "" },
        dropped = if v == 1 {
            "echo dropped > %{buildroot}/usr/share/app/dropped"
        } else {
            ""
        },
    );
    let me = format!("app-{v}");
    let extra = format!("app-extra-{v}");
    let look = format!(
        "{}{}",
        seen("/usr/share/app/dropped"),
        seen("/usr/share/app/common")
    );
    for (which, args, what) in [
        ("%pretrans", "$1", String::new()),
        ("%pre", "$1", look.clone()),
        ("%post", "$1", look.clone()),
        ("%preun", "$1", look.clone()),
        ("%postun", "$1", look.clone()),
        ("%posttrans", "$1", String::new()),
    ] {
        s += &format!("{which}\n{}", log(&me, &which[1..], args, &what));
    }
    for which in ["%pre", "%post", "%preun", "%postun"] {
        s += &format!(
            "{which} extra\n{}",
            log(&extra, &which[1..], "$1", &seen("/usr/share/app/moved"))
        );
    }
    s += &format!(
        "%triggerprein -- legacy\n{}",
        log(&me, "triggerprein-legacy", "$1 $2", "")
    );
    for t in ["triggerin", "triggerun", "triggerpostun"] {
        s += &format!(
            "%{t} -- app-extra\n{}",
            log(&me, &format!("{t}-extra"), "$1 $2", "")
        );
    }
    // its own file triggers on its own files (rpm runs its %filetriggerun twice on erase)
    for t in ["filetriggerin", "filetriggerun", "filetriggerpostun"] {
        s += &format!(
            "%{t} -- /usr/share/app/\n{}cat >> {LOG}\n",
            log(&me, &format!("own-{t}"), "$1", "")
        );
    }
    s += r#"
%files
%config /etc/app/plain.conf
%config /etc/app/plainkeep.conf
%config(noreplace) /etc/app/noreplace.conf
%config(noreplace) /etc/app/noreplacekeep.conf
%config(noreplace) /etc/app/samecfg.conf
%dir /usr/share/app
/usr/share/app/common
/usr/share/app/same
"#;
    if v == 1 {
        s += "/usr/share/app/dropped\n/usr/share/app/moved\n";
    }
    s += "%files extra\n/usr/share/app-extra\n";
    if v == 2 {
        s += "/usr/share/app/moved\n";
    }
    s
}

fn watcher() -> String {
    let mut s = r#"
Name: watcher
Version: 1
Release: 1
Summary: watches app
License: MIT
BuildArch: noarch
%description
w
%install
mkdir -p %{buildroot}/usr/share/watcher
echo w > %{buildroot}/usr/share/watcher/w
"#
    .to_string();
    for t in ["triggerprein", "triggerin", "triggerun", "triggerpostun"] {
        s += &format!("%{t} -- app\n{}", log("watcher", t, "$1 $2 n=$#", ""));
    }
    for t in [
        "filetriggerin",
        "filetriggerun",
        "filetriggerpostun",
        "transfiletriggerin",
        "transfiletriggerun",
        "transfiletriggerpostun",
    ] {
        s += &format!(
            "%{t} -- /usr/share/app\n{}cat >> {LOG}\n",
            log("watcher", t, "$1 n=$#", "")
        );
    }
    s + "%files\n/usr/share/watcher/w\n"
}

/// File triggers of two priorities (and the default) on the same paths.
fn prio() -> String {
    let mut s = r#"
Name: prio
Version: 1
Release: 1
Summary: prioritised file triggers
License: MIT
BuildArch: noarch
%description
p
%install
mkdir -p %{buildroot}/usr/share/prio
echo p > %{buildroot}/usr/share/prio/p
"#
    .to_string();
    for t in [
        "filetriggerin",
        "filetriggerun",
        "filetriggerpostun",
        "transfiletriggerin",
        "transfiletriggerun",
        "transfiletriggerpostun",
    ] {
        for p in [100, 50000] {
            s += &format!(
                "%{t} -P {p} -- /usr/share/app/\n{}",
                log("prio", &format!("{t}-{p}"), "$1", "")
            );
        }
    }
    s + "%files\n/usr/share/prio/p\n"
}

fn legacy() -> String {
    let mut s = r#"
Name: legacy
Version: 1
Release: 1
Summary: obsoleted by app 2
License: MIT
BuildArch: noarch
%description
l
%install
mkdir -p %{buildroot}/usr/share/legacy
echo l > %{buildroot}/usr/share/legacy/l
"#
    .to_string();
    for w in ["preun", "postun"] {
        s += &format!("%{w}\n{}", log("legacy", w, "$1", ""));
    }
    s + "%files\n/usr/share/legacy\n"
}

struct Fixture {
    _t: tempfile::TempDir,
    dir: PathBuf,
    fs: PathBuf,
    v1: Vec<PathBuf>,
    v2: Vec<PathBuf>,
}

fn find(rpms: &[PathBuf], prefix: &str) -> PathBuf {
    rpms.iter()
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} in {rpms:?}"))
        .clone()
}

fn fixture() -> Fixture {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().to_path_buf();
    let b1 = dir.join("b1");
    let b2 = dir.join("b2");
    let fs = rpmbuild(&b1, "mini-filesystem", FILESYSTEM).remove(0);
    let w = rpmbuild(&b1, "watcher", &watcher()).remove(0);
    let p = rpmbuild(&b1, "prio", &prio()).remove(0);
    let l = rpmbuild(&b1, "legacy", &legacy()).remove(0);
    let a1 = rpmbuild(&b1, "app", &app(1));
    let a2 = rpmbuild(&b2, "app", &app(2));
    // transaction order (rpm's tsort queues independent packages last-added first, so rpm
    // gets them in reverse)
    let v1 = vec![find(&a1, "app-extra-1"), find(&a1, "app-1"), l, p, w];
    let v2 = vec![find(&a2, "app-extra-2"), find(&a2, "app-2")];
    Fixture {
        _t: t,
        dir,
        fs,
        v1,
        v2,
    }
}

fn opts() -> InstallOptions {
    InstallOptions {
        scriptlets: ScriptletMode::Run,
        dbpath: Some("/var/lib/rpm".into()),
        nodeps: true,
        jobs: 2,
        gpgkeys: None,
    }
}

fn read_log(r: &Path) -> String {
    std::fs::read_to_string(r.join(LOG.trim_start_matches('/'))).unwrap_or_default()
}

fn reversed(v: &[PathBuf]) -> Vec<PathBuf> {
    v.iter().rev().cloned().collect()
}

/// Local edits of the v1 configuration (the `*keep` ones stay as packaged).
fn edit_configs(root: &Path) {
    for f in ["plain", "noreplace", "samecfg"] {
        let p = root.join(format!("etc/app/{f}.conf"));
        let mut s = std::fs::read_to_string(&p).unwrap();
        s.push_str("local edit\n");
        std::fs::write(&p, s).unwrap();
    }
}

fn qa(root: &Path) -> Vec<String> {
    let (ok, out, e) = rpm(root, &["-qa"]);
    assert!(ok, "rpm -qa: {e}");
    let mut v: Vec<String> = out.lines().map(str::to_string).collect();
    v.sort();
    v
}

fn verify(root: &Path) -> String {
    // -Va exits 1 when something differs (the edited configs do): compare the report
    let (_, out, e) = rpm(root, &["-Va", "--nodeps"]);
    let mut v: Vec<&str> = out.lines().chain(e.lines()).collect();
    v.sort();
    v.join("\n")
}

#[test]
fn upgrade_matches_rpm_u() {
    osimage_e2e::require_all!(osimage_e2e::tools::needs(true, &["rpm", "rpmbuild"], true));
    let f = fixture();
    let (o, u) = (f.dir.join("oracle"), f.dir.join("ours"));
    std::fs::create_dir_all(&o).unwrap();
    let started = now();
    // the base, then v1 with its watchers (one transaction), as rpm -i does
    let (ok, err) = rpm_install(&o, std::slice::from_ref(&f.fs), true);
    assert!(ok, "oracle base: {err}");
    let (ok, err) = rpm_install(&o, &reversed(&f.v1), true);
    assert!(ok, "oracle v1: {err}");
    install_packages(&u, std::slice::from_ref(&f.fs), &opts()).unwrap();
    install_packages(&u, &f.v1, &opts()).unwrap();
    let (ours, theirs) = (read_log(&u), read_log(&o));
    assert_eq!(
        ours, theirs,
        "v1 install logs differ (ours left, rpm right)"
    );
    for r in [&o, &u] {
        edit_configs(r);
        std::fs::write(r.join(LOG.trim_start_matches('/')), "").unwrap();
    }

    // the upgrade
    let mut args = vec!["-U", "--nodeps", "--nosignature"];
    let v2: Vec<String> = reversed(&f.v2)
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    args.extend(v2.iter().map(String::as_str));
    let (ok, _, e) = rpm(&o, &args);
    assert!(ok, "rpm -U: {e}");
    let rep = install_packages(&u, &f.v2, &opts()).unwrap();
    let (ours, theirs) = (read_log(&u), read_log(&o));
    assert_eq!(ours, theirs, "upgrade logs differ (ours left, rpm right)");
    // the log is not trivially equal: what rpm -U does, in its order
    for needle in [
        // new version first: %pre/%post with $1 = 2, the old files still there
        "app-2 pre 2 /usr/share/app/dropped=dropped /usr/share/app/common=common v1\n",
        "app-2 post 2 /usr/share/app/dropped=dropped /usr/share/app/common=common v2\n",
        // then the old one goes with $1 = 1, only its files the new one does not own
        "app-1 preun 1 /usr/share/app/dropped=dropped /usr/share/app/common=common v2\n",
        "app-1 postun 1 /usr/share/app/dropped=none /usr/share/app/common=common v2\n",
        "legacy preun 0\nlegacy postun 0\n",
        "watcher triggerprein 1 1 n=2\n",
        "app-2 triggerprein-legacy 1 1\n",
        "watcher filetriggerun 0 n=1\n/usr/share/app/dropped\n",
        "watcher transfiletriggerun 0 n=1\n",
        "watcher transfiletriggerpostun 0 n=1\n",
        "app-2 posttrans 2\n",
        // a package's own file triggers: on install once on its own files (among the
        // others', by rpmdb order) and once on the other packages' files; on erase twice
        "app-2 own-filetriggerin 0\n/usr/share/app/common\n/usr/share/app/same\nprio",
        "app-1 own-filetriggerun 0\n/usr/share/app/dropped\nwatcher filetriggerun",
        "app-1 own-filetriggerpostun 0\n/usr/share/app/dropped\n",
    ] {
        assert!(ours.contains(needle), "missing {needle:?} in:\n{ours}");
    }
    // priorities: the high one before %post/%preun/%postun, the low one after
    for needle in [
        "prio filetriggerin-50000 0\napp-2 own-filetriggerin 0\n",
        "/usr/share/app/moved\napp-2 post 2",
        "app-2 triggerin-extra 2 2\nprio filetriggerin-100 0\n",
        "prio filetriggerun-50000 0\napp-1 triggerun-extra 1 1\n",
        "common v2\nprio filetriggerun-100 0\napp-1 own-filetriggerpostun 0",
        "prio filetriggerpostun-50000 0\napp-1 postun 1",
        "watcher triggerpostun 1 1 n=2\nprio filetriggerpostun-100 0\n",
        "prio transfiletriggerin-50000 0\nprio transfiletriggerin-100 0\n",
        "watcher transfiletriggerun 0 n=1\n",
    ] {
        assert!(ours.contains(needle), "missing {needle:?} in:\n{ours}");
    }
    assert!(
        rep.warnings
            .iter()
            .any(|w| w.contains("/etc/app/plain.conf saved as /etc/app/plain.conf.rpmsave")),
        "{:?}",
        rep.warnings
    );
    let ignore = ["var/lib/rpm", "var/tmp", "proc", "sys", "dev"];
    let d = diff(&snapshot(&o, &ignore), &snapshot(&u, &ignore), started);
    assert!(
        d.is_empty(),
        "trees differ after the upgrade:\n{}",
        d.join("\n")
    );
    assert_eq!(qa(&u), qa(&o));
    assert!(
        !qa(&u)
            .iter()
            .any(|p| p.starts_with("app-1-") || p.starts_with("legacy"))
    );
    let (vu, vo) = (verify(&u), verify(&o));
    assert_eq!(vu, vo, "rpm -Va differs (ours left)");
    assert!(vu.contains("/etc/app/noreplace.conf"), "{vu}");
}

/// `#NEW_INSTALL_LIST#` passes through the solver and `install_lock`: base, then v1 with the
/// watchers, then v2 (an upgrade of packages of an earlier pass) — each pass's effect
/// log, the tree and the rpmdb equal real rpm's (`rpm -i --noorder` in the lock's order for the
/// installs, `rpm -U` for the upgrade).
#[test]
fn upgrade_across_passes_matches_rpm_u() {
    osimage_e2e::require_all!(osimage_e2e::tools::needs(
        true,
        &["rpm", "rpmbuild", "createrepo_c"],
        true
    ));
    use imagecore::solve::{PassRequest, SolveRequest, solve};
    let f = fixture();
    let repo = f.dir.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    for p in std::iter::once(&f.fs).chain(&f.v1).chain(&f.v2) {
        std::fs::copy(p, repo.join(p.file_name().unwrap())).unwrap();
    }
    osimage_e2e::rpmbuild::createrepo_c(&repo, None).unwrap();
    let index = imagecore::repo::load_repo(&repo, "test").unwrap();
    let pass = |names: &[&str]| PassRequest {
        install: names.iter().map(|s| s.to_string()).collect(),
        remove: vec![],
    };
    let lock = solve(&SolveRequest {
        repos: std::slice::from_ref(&index),
        arch: "x86_64".into(),
        passes: vec![
            pass(&["mini-filesystem"]),
            pass(&["app-1", "app-extra-1", "legacy", "prio", "watcher"]),
            pass(&["app-2", "app-extra-2"]),
        ],
        weak_deps: false,
        multilib: false,
        excludes: vec![],
    })
    .unwrap();
    let files = |i: usize| -> Vec<String> {
        lock.passes[i]
            .packages
            .iter()
            .map(|p| repo.join(&p.location).to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(lock.passes[2].packages.len(), 2, "{:?}", lock.passes[2]);
    assert!(
        lock.passes[2]
            .upgraded
            .iter()
            .any(|n| n.starts_with("app-1-")),
        "{:?}",
        lock.passes[2]
    );
    let (o, u) = (f.dir.join("oracle"), f.dir.join("ours"));
    std::fs::create_dir_all(&o).unwrap();
    let started = now();
    let mut o_logs = Vec::new();
    for (i, how) in [(0, "-i"), (1, "-i"), (2, "-U")] {
        let mut args: Vec<String> = vec![how.into(), "--nosignature".into()];
        let mut fs = files(i);
        if how == "-i" {
            args.push("--noorder".into());
        } else {
            fs.reverse(); // rpm's tsort queues independent packages last-added first
        }
        args.extend(fs);
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, _, e) = rpm(&o, &a);
        assert!(ok, "rpm {how} (pass {i}): {e}");
        o_logs.push(read_log(&o));
    }
    let mut u_logs = Vec::new();
    let mut opts = opts();
    opts.nodeps = false;
    for i in 0..3 {
        imagecore::steps::install::install_lock(
            "install",
            &u,
            &lock,
            i..i + 1,
            std::slice::from_ref(&index),
            &opts,
            None,
        )
        .unwrap();
        u_logs.push(read_log(&u));
    }
    for i in 0..3 {
        assert_eq!(
            u_logs[i], o_logs[i],
            "log after pass {i} differs (ours left)"
        );
    }
    assert!(u_logs[2].contains("app-1 postun 1"), "{}", u_logs[2]);
    assert!(u_logs[2].contains("app-extra-1 postun 1"), "{}", u_logs[2]);
    let ignore = ["var/lib/rpm", "var/tmp", "proc", "sys", "dev"];
    let d = diff(&snapshot(&o, &ignore), &snapshot(&u, &ignore), started);
    assert!(
        d.is_empty(),
        "trees differ after the passes:\n{}",
        d.join("\n")
    );
    assert_eq!(qa(&u), qa(&o));
    assert_eq!(verify(&u), verify(&o), "rpm -Va differs (ours left)");
}

/// `osimage install --root R NEW.rpm…` into a root that has the older version upgrades it
/// like `rpm -U` (log, `rpm -qa`, tree).
#[test]
fn cli_install_over_an_older_version_upgrades() {
    osimage_e2e::require_all!(osimage_e2e::tools::needs(true, &["rpm", "rpmbuild"], true));
    let bin = osimage_e2e::tools::osimage_bin();
    osimage_e2e::require!(
        bin.exists(),
        "osimage binary not built (cargo build -p imagecli)"
    );
    let f = fixture();
    let (o, u) = (f.dir.join("oracle"), f.dir.join("ours"));
    std::fs::create_dir_all(&o).unwrap();
    let started = now();
    for (rpms, how) in [
        (vec![f.fs.clone()], "-i"),
        (reversed(&f.v1), "-i"),
        (reversed(&f.v2), "-U"),
    ] {
        let mut args = vec![how.to_string(), "--nodeps".into(), "--nosignature".into()];
        args.extend(rpms.iter().map(|p| p.to_string_lossy().into_owned()));
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, _, e) = rpm(&o, &a);
        assert!(ok, "rpm {how}: {e}");
    }
    for rpms in [vec![f.fs.clone()], f.v1.clone(), f.v2.clone()] {
        let out = osimage_e2e::tools::osimage_install(&u, &rpms);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(read_log(&u), read_log(&o), "logs differ (ours left)");
    assert_eq!(qa(&u), qa(&o));
    let ignore = ["var/lib/rpm", "var/tmp", "proc", "sys", "dev"];
    let d = diff(&snapshot(&o, &ignore), &snapshot(&u, &ignore), started);
    assert!(d.is_empty(), "trees differ:\n{}", d.join("\n"));
}
