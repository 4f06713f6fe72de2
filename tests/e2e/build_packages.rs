//! End-to-end through the package stages: rpmbuild packages → createrepo_c → a spec with an
//! xCAT pkglist → `osimage lock` and `osimage build` → the archive, unpacked with GNU cpio, has
//! the same tree as `dnf --installroot` with the same repository (rpmdb and dnf's own files
//! aside), and `rpm --root -qa` on our `--rootimg` tree lists the same packages.

use std::path::Path;
use std::process::Command;

use osimage_e2e::rpmbuild::{FileSpec, PkgSpec, build};
use osimage_e2e::spine::osimage;
use osimage_e2e::{oracle, require, tools, trees};

pub(crate) fn repo(dir: &Path) {
    let pkgs = vec![
        PkgSpec::new("filesystem", "3.16")
            .file(FileSpec::dir("/etc"))
            .file(FileSpec::dir("/usr"))
            .file(FileSpec::dir("/usr/bin"))
            .file(FileSpec::dir("/usr/lib"))
            .file(FileSpec::dir("/var"))
            .file(FileSpec::symlink("/bin", "usr/bin"))
            .file(FileSpec::symlink("/lib", "usr/lib")),
        PkgSpec::new("libdemo", "1.0")
            .req("filesystem")
            .prov("demo-api = 2")
            .file(FileSpec::file("/usr/lib/libdemo.conf", "v1")),
        PkgSpec::new("libdemo", "2.0")
            .req("filesystem")
            .prov("demo-api = 3")
            .file(FileSpec::file("/usr/lib/libdemo.conf", "v2")),
        PkgSpec::new("demo-app", "1.0")
            .req("demo-api >= 3")
            .req("filesystem")
            .file(
                FileSpec::file("/usr/bin/demo-app", "#!/bin/sh\necho demo")
                    .attr("0755", "root", "root"),
            )
            .file(FileSpec::file("/etc/demo.conf", "setting=1")),
        PkgSpec::new("demo-docs", "1.0")
            .req("filesystem")
            .file(FileSpec::file("/usr/lib/demo-docs.txt", "docs")),
    ];
    build(&pkgs, dir).unwrap();
    let st = Command::new("createrepo_c")
        .arg("-q")
        .arg(dir)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn package_image_matches_dnf_installroot() {
    require!(
        tools::have("rpmbuild") && tools::have("createrepo_c") && tools::have("dnf"),
        "needs rpmbuild, createrepo_c and dnf"
    );
    require!(tools::is_root(), "installing with owners needs root");
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    repo(&dir.join("repo"));
    std::fs::write(
        dir.join("compute.pkglist"),
        "# base\ndemo-app\n#NEW_INSTALL_LIST#\ndemo-docs\n",
    )
    .unwrap();
    let spec =
        osimage_e2e::specfile::write_repo_spec(dir, "pkgs", "[image]\nrootimgdir = \"out\"\n")
            .unwrap();
    let spec_s = spec.to_str().unwrap();

    // lock: the same NEVRA set dnf chooses
    let o = osimage(&["lock", spec_s, "--cache-dir", "c", "--json"], dir);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lock: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut ours: Vec<String> = lock["passes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["packages"].as_array().unwrap().iter())
        .map(|p| {
            format!(
                "{}-{}-{}.{}",
                p["name"].as_str().unwrap(),
                p["version"].as_str().unwrap(),
                p["release"].as_str().unwrap(),
                p["arch"].as_str().unwrap()
            )
        })
        .collect();
    ours.sort();
    assert!(
        dir.join("osimage.lock").is_file(),
        "lock written next to the spec"
    );
    let dnf_root = dir.join("dnf-root");
    let repo_dir = dir.join("repo");
    let chosen = oracle::dnf_install(
        &[&repo_dir],
        &dnf_root,
        &["demo-app", "demo-docs"],
        &oracle::DnfOpts::default(),
    )
    .unwrap();
    let theirs: Vec<String> = chosen.into_iter().collect();
    assert_eq!(ours, theirs);
    assert!(ours.iter().any(|p| p.starts_with("libdemo-2.0")));

    // build: archive tree == dnf's tree (minus rpmdb and dnf's own files)
    let o = osimage(&["build", spec_s, "--cache-dir", "c", "--rootimg"], dir);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let unpacked = dir.join("unpacked");
    trees::unpack(&dir.join("out/rootimg.cpio.zst"), &unpacked);
    let skip = |l: &String| {
        !(l.starts_with("var/lib/rpm")
            || l.starts_with("var/lib/dnf")
            || l.starts_with("var/cache")
            || l.starts_with("var/log")
            || l.starts_with("etc/dnf")
            || l.starts_with("etc/fstab")
            || l.starts_with("etc/resolv.conf")
            || l.starts_with("var/lib ")
            || l.starts_with("var/tmp")
            || l.starts_with("etc ")
            || l.starts_with("var ")
            || l.starts_with("tmp")
            || l.starts_with("usr/lib/sysimage"))
    };
    let got: Vec<String> = trees::listing(&unpacked, None, true)
        .into_iter()
        .filter(skip)
        .collect();
    let want: Vec<String> = trees::listing(&dnf_root, None, true)
        .into_iter()
        .filter(skip)
        .collect();
    assert_eq!(got, want);

    // rpm reads our rpmdb
    let q = Command::new("rpm")
        .args(["--root"])
        .arg(dir.join("out/rootimg"))
        .args([
            "--dbpath",
            "/var/lib/rpm",
            "-qa",
            "--qf",
            "%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\\n",
        ])
        .output()
        .unwrap();
    let mut qa: Vec<String> = String::from_utf8_lossy(&q.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    qa.sort();
    assert_eq!(qa, ours);

    // a second build is all cached; --locked works with the lock in place
    let o = osimage(&["build", spec_s, "--cache-dir", "c", "--locked"], dir);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("0 built"));
    // a pkglist change with --locked fails (lock out of date), exit 1
    std::fs::write(dir.join("compute.pkglist"), "demo-app\n").unwrap();
    let o = osimage(&["build", spec_s, "--cache-dir", "c", "--locked"], dir);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--locked"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
