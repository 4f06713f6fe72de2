//! Conformance of the install engine with the real `rpm -i --root`: same tree (paths, types,
//! modes, owners, symlink targets, hardlink sets, content, mtimes, caps), same rpmdb answers.

use std::path::{Path, PathBuf};

use imagecore::install::{InstallOptions, ScriptletMode, install_packages};
use osimage_e2e::install::{diff, now, rpm, rpm_install, rpmbuild, snapshot};
use osimage_e2e::require;
use osimage_e2e::tools::{have, is_root};

fn opts() -> InstallOptions {
    InstallOptions {
        scriptlets: ScriptletMode::Skip,
        dbpath: Some("/var/lib/rpm".into()),
        nodeps: true,
        jobs: 2,
        gpgkeys: None,
    }
}

const IGNORE: &[&str] = &["var/lib/rpm", "root/.rpmdb"];

fn corpus_rpms(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .map(|e| e.path().to_path_buf())
        .filter(|p| {
            let n = p.to_string_lossy();
            n.ends_with(".rpm") || n.ends_with(".rpm-v3")
        })
        .collect();
    v.sort();
    v
}

#[test]
fn corpus_trees_match_rpm() {
    require!(is_root(), "needs root (rpm -i --root chowns files)");
    require!(have("rpm"), "rpm not installed");
    let Ok(corpus) = std::env::var("OSIMAGE_CORPUS") else {
        eprintln!("SKIPPED: OSIMAGE_CORPUS is not set; set it to the RPM corpus directory");
        return;
    };
    let mut compared = 0;
    let mut failures = Vec::new();
    for f in corpus_rpms(Path::new(&corpus)) {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let t = tempfile::tempdir().unwrap();
        let (o, u) = (t.path().join("oracle"), t.path().join("ours"));
        std::fs::create_dir_all(&o).unwrap();
        std::fs::create_dir_all(&u).unwrap();
        let started = now();
        let (ok, err) = rpm_install(&o, std::slice::from_ref(&f), false);
        let ours = install_packages(&u, std::slice::from_ref(&f), &opts());
        if name.contains("corrupted") {
            let e = ours
                .expect_err("corrupted package must be refused")
                .to_string();
            assert!(e.contains(&name), "error must name the file: {e}");
            let left: Vec<_> = std::fs::read_dir(&u).unwrap().collect();
            assert!(
                left.is_empty(),
                "corrupted package left files behind: {left:?}"
            );
            assert!(!ok, "rpm itself accepted the corrupted package?");
            continue;
        }
        if !ok {
            eprintln!("note: rpm refuses {name}, not compared: {}", err.trim());
            continue;
        }
        if let Err(e) = ours {
            failures.push(format!("{name}: ours failed: {e}"));
            continue;
        }
        let d = diff(&snapshot(&o, IGNORE), &snapshot(&u, IGNORE), started);
        if !d.is_empty() {
            failures.push(format!("{name}:\n  {}", d.join("\n  ")));
        }
        compared += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!("compared {compared} corpus packages with rpm -i");
    assert!(compared >= 20, "only {compared} packages compared");
}

const FIXTURE_SPEC: &str = r#"
Name: fixt
Version: 1.0
Release: 1
Summary: install conformance fixture
License: MIT
BuildArch: noarch
Provides: fixt-api = 2.0
Provides: /usr/lib/fixt/marker
%description
fixture
%install
mkdir -p %{buildroot}/usr/bin %{buildroot}/usr/sbin %{buildroot}/etc/fixt %{buildroot}/usr/lib/fixt %{buildroot}/var/lib/fixt/private
echo tool > %{buildroot}/usr/bin/fixt
ln -s fixt %{buildroot}/usr/bin/fx
ln -s /usr/bin/fixt %{buildroot}/usr/sbin/fixt-abs
echo data > %{buildroot}/usr/lib/fixt/data1
ln %{buildroot}/usr/lib/fixt/data1 %{buildroot}/usr/lib/fixt/data2
ln %{buildroot}/usr/lib/fixt/data1 %{buildroot}/usr/lib/fixt/data3
echo su > %{buildroot}/usr/sbin/fixtsu
echo cap > %{buildroot}/usr/sbin/fixtping
echo conf > %{buildroot}/etc/fixt/fixt.conf
echo plain > %{buildroot}/etc/fixt/plain.conf
touch %{buildroot}/usr/lib/fixt/marker
touch %{buildroot}/usr/lib/fixt/empty
%files
%attr(0755,root,root) /usr/bin/fixt
/usr/bin/fx
/usr/sbin/fixt-abs
/usr/lib/fixt/data1
/usr/lib/fixt/data2
/usr/lib/fixt/data3
/usr/lib/fixt/marker
/usr/lib/fixt/empty
%attr(4755,root,fixtgrp) /usr/sbin/fixtsu
%caps(cap_net_raw,cap_net_admin=ep) /usr/sbin/fixtping
%config(noreplace) %attr(0640,fixtusr,fixtgrp) /etc/fixt/fixt.conf
%config /etc/fixt/plain.conf
%dir %attr(0750,fixtusr,root) /var/lib/fixt
%dir %attr(1777,root,root) /var/lib/fixt/private
%ghost /var/log/fixt.log
%ghost %dir /run/fixt
%attr(2750,fixtusr,nogroup) %dir /usr/lib/fixt
"#;

const SHARED_SPEC: &str = r#"
Name: fixt-shared
Version: 1.0
Release: 1
Summary: shares a directory and an identical file with fixt
License: MIT
BuildArch: noarch
Requires: fixt-api >= 2
%description
shared
%install
mkdir -p %{buildroot}/usr/lib/fixt %{buildroot}/usr/share/doc/fixt-shared
echo data > %{buildroot}/usr/lib/fixt/data1
echo doc > %{buildroot}/usr/share/doc/fixt-shared/README
%files
%attr(2750,fixtusr,nogroup) %dir /usr/lib/fixt
/usr/lib/fixt/data1
%doc /usr/share/doc/fixt-shared/README
"#;

fn seed_users(root: &Path) {
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0::/root:/bin/sh\nfixtusr:x:1234:1234::/:/sbin/nologin\n",
    )
    .unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\nfixtgrp:x:4321:\n").unwrap();
}

fn build_fixtures(top: &Path) -> Vec<PathBuf> {
    let mut v = rpmbuild(top, "fixt", FIXTURE_SPEC);
    v.retain(|p| !p.to_string_lossy().contains("fixt-shared"));
    v.extend(rpmbuild(top, "fixt-shared", SHARED_SPEC));
    v
}

#[test]
fn fixtures_tree_and_rpmdb_match_rpm() {
    require!(is_root(), "needs root (chown, caps)");
    require!(
        have("rpm") && have("rpmbuild"),
        "rpm/rpmbuild not installed"
    );
    let t = tempfile::tempdir().unwrap();
    let rpms = build_fixtures(&t.path().join("build"));
    assert_eq!(rpms.len(), 2, "{rpms:?}");
    let (o, u) = (t.path().join("oracle"), t.path().join("ours"));
    seed_users(&o);
    seed_users(&u);
    // header mtimes (build time) must be distinguishable from install time
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let started = now();
    let (ok, err) = rpm_install(&o, &rpms, false);
    assert!(ok, "oracle rpm failed: {err}");
    let report = install_packages(&u, &rpms, &opts()).unwrap();
    assert_eq!(
        report.packages,
        ["fixt-1.0-1.noarch", "fixt-shared-1.0-1.noarch"]
    );
    // "nogroup" is unknown in the image: rpm warns and uses root; so do we.
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("group nogroup does not exist")),
        "{:?}",
        report.warnings
    );
    let (so, su) = (snapshot(&o, IGNORE), snapshot(&u, IGNORE));
    let d = diff(&so, &su, started);
    assert!(d.is_empty(), "trees differ:\n{}", d.join("\n"));
    // spot checks that the comparison saw what matters
    assert_eq!(su["usr/sbin/fixtsu"].mode, 0o4755);
    assert_eq!(su["usr/sbin/fixtsu"].gid, 4321);
    assert_eq!(su["etc/fixt/fixt.conf"].uid, 1234);
    assert!(!su["usr/sbin/fixtping"].caps.is_empty());
    assert_eq!(
        su["usr/lib/fixt/data2"].link_group,
        su["usr/lib/fixt/data1"].link_group
    );
    assert!(
        !su.contains_key("var/log/fixt.log"),
        "%ghost must not be created"
    );

    // rpmdb: the real rpm reads ours and answers like it does for its own db.
    let q = |root: &Path, args: &[&str]| {
        let (ok, out, err) = rpm(root, args);
        (
            ok,
            out.lines()
                .filter(|l| !l.starts_with("Install Date"))
                .collect::<Vec<_>>()
                .join("\n"),
            err,
        )
    };
    for args in [
        &["-qa", "--qf", "%{NEVRA}\\n"][..],
        &["-qi", "fixt"],
        &["-qf", "/usr/lib/fixt/data1"],
        &["-qf", "/var/log/fixt.log"],
        &["-q", "--whatprovides", "fixt-api"],
        &["-q", "--whatprovides", "/usr/lib/fixt/marker"],
        &["-q", "--whatrequires", "fixt-api"],
        &["-ql", "fixt"],
        &[
            "-q",
            "--qf",
            "[%{FILESTATES:fstate} %{FILENAMES}\\n]",
            "fixt",
        ],
        &[
            "-q",
            "--qf",
            "%{INSTALLCOLOR} %{ARCHIVESIZE} %{SIGMD5}\\n",
            "fixt",
        ],
    ] {
        let (ook, oout, _) = q(&o, args);
        let (uok, uout, uerr) = q(&u, args);
        assert!(ook, "oracle rpm {args:?} failed");
        assert!(uok, "rpm {args:?} on our db failed: {uerr}");
        assert_eq!(oout, uout, "rpm {args:?}");
    }
    for p in ["fixt", "fixt-shared"] {
        let (ok, out, err) = rpm(&u, &["-V", p]);
        assert!(ok, "rpm -V {p} on our image: {out} {err}");
        assert!(!out.contains("no state"), "{out}");
    }
    let (ok, out, _) = rpm(&u, &["-q", "--qf", "%{INSTALLTIME}", "fixt"]);
    assert!(
        ok && out.parse::<i64>().unwrap() >= started,
        "INSTALLTIME {out}"
    );
    // rpm can also modify our db: erase with the real rpm, then the files are gone.
    let (ok, _, err) = rpm(&u, &["-e", "--nodeps", "--noscripts", "fixt-shared"]);
    assert!(ok, "rpm -e on our db: {err}");
    assert!(!u.join("usr/share/doc/fixt-shared/README").exists());
    assert!(
        u.join("usr/lib/fixt/data1").exists(),
        "shared file must stay"
    );
}

#[test]
fn different_content_at_same_path_conflicts() {
    require!(have("rpmbuild"), "rpmbuild not installed");
    let t = tempfile::tempdir().unwrap();
    let mut rpms = rpmbuild(
        &t.path().join("b1"),
        "clash-a",
        &SHARED_SPEC
            .replace("fixt-shared", "clash-a")
            .replace("echo data", "echo A"),
    );
    rpms.extend(rpmbuild(
        &t.path().join("b2"),
        "clash-b",
        &SHARED_SPEC
            .replace("fixt-shared", "clash-b")
            .replace("echo data", "echo B"),
    ));
    let root = t.path().join("root");
    let e = install_packages(&root, &rpms, &opts())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("file /usr/lib/fixt/data1 from install of clash-b-1.0-1.noarch conflicts with file from package clash-a-1.0-1.noarch"),
        "{e}"
    );
    assert!(!root.join("usr").exists(), "nothing may land on a conflict");

    // Against a package already installed (by the real rpm, in its own db): same refusal.
    if have("rpm") && is_root() {
        let r2 = t.path().join("root2");
        std::fs::create_dir_all(&r2).unwrap();
        let (ok, err) = rpm_install(&r2, &rpms[..1], false);
        assert!(ok, "{err}");
        let e = install_packages(&r2, &rpms[1..], &opts())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("conflicts with file from package clash-a-1.0-1.noarch"),
            "{e}"
        );
        assert_eq!(
            std::fs::read_to_string(r2.join("usr/lib/fixt/data1")).unwrap(),
            "A\n"
        );
    }
}

#[test]
fn erase_matches_rpm_e() {
    require!(is_root(), "needs root (chown, caps)");
    require!(
        have("rpm") && have("rpmbuild"),
        "rpm/rpmbuild not installed"
    );
    let t = tempfile::tempdir().unwrap();
    let rpms = build_fixtures(&t.path().join("build"));
    let (o, u) = (t.path().join("oracle"), t.path().join("ours"));
    seed_users(&o);
    seed_users(&u);
    // header mtimes (build time) must be distinguishable from install time
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let started = now();
    let (ok, err) = rpm_install(&o, &rpms, false);
    assert!(ok, "oracle rpm failed: {err}");
    install_packages(&u, &rpms, &opts()).unwrap();
    // modify a %config file in both: erase must keep it as .rpmsave
    for r in [&o, &u] {
        std::fs::write(r.join("etc/fixt/plain.conf"), "edited\n").unwrap();
    }
    let (ok, _, err) = rpm(&o, &["-e", "--nodeps", "--noscripts", "fixt"]);
    assert!(ok, "rpm -e: {err}");
    imagecore::install::erase_packages(&u, &["fixt".to_string()], &opts()).unwrap();
    let d = diff(&snapshot(&o, IGNORE), &snapshot(&u, IGNORE), started);
    assert!(d.is_empty(), "trees differ after erase:\n{}", d.join("\n"));
    let (ok, out, _) = rpm(&u, &["-qa"]);
    assert!(ok && out.trim() == "fixt-shared-1.0-1.noarch", "{out}");
    assert!(u.join("etc/fixt/plain.conf.rpmsave").exists());
}

#[test]
fn lua_scriptlets_fail_clearly_unless_skipped() {
    let Ok(corpus) = std::env::var("OSIMAGE_CORPUS") else {
        eprintln!("SKIPPED: OSIMAGE_CORPUS is not set");
        return;
    };
    require!(
        is_root(),
        "needs root (otherwise the not-root error comes first)"
    );
    let f = Path::new(&corpus).join("rpm-upstream/luafork-1.0-1.noarch.rpm");
    let t = tempfile::tempdir().unwrap();
    let run = InstallOptions {
        scriptlets: ScriptletMode::Run,
        ..opts()
    };
    let e = install_packages(&t.path().join("r1"), std::slice::from_ref(&f), &run)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("luafork-1.0-1.noarch") && e.contains("Lua"),
        "{e}"
    );
    assert!(!t.path().join("r1/usr").exists());
    let r = install_packages(&t.path().join("r2"), std::slice::from_ref(&f), &opts()).unwrap();
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("luafork") && w.contains("skipped")),
        "{:?}",
        r.warnings
    );
}

#[test]
fn missing_dependencies_are_refused_like_rpm() {
    require!(
        have("rpm") && have("rpmbuild"),
        "rpm/rpmbuild not installed"
    );
    let t = tempfile::tempdir().unwrap();
    let rpms = build_fixtures(&t.path().join("build"));
    let shared: Vec<PathBuf> = rpms
        .iter()
        .filter(|p| p.to_string_lossy().contains("fixt-shared"))
        .cloned()
        .collect();
    let o = t.path().join("oracle");
    std::fs::create_dir_all(&o).unwrap();
    let (ok, _, err) = rpm(&o, &["-i", "--nosignature", shared[0].to_str().unwrap()]);
    assert!(!ok);
    let line = "fixt-api >= 2 is needed by fixt-shared-1.0-1.noarch";
    assert!(err.contains(line), "rpm said: {err}");
    let with_deps = InstallOptions {
        nodeps: false,
        ..opts()
    };
    let root = t.path().join("ours");
    let e = install_packages(&root, &shared, &with_deps)
        .unwrap_err()
        .to_string();
    assert!(e.contains(line), "{e}");
    assert!(!root.join("usr").exists());
    // The whole set satisfies itself.
    install_packages(&t.path().join("ok"), &rpms, &with_deps).unwrap();
}
