//! xCAT otherpkgs: an `otherpkgdir` with a sub-directory repository (`subdir/pkg` entries), an
//! otherpkglist pass with a `-pkg` removal, installed on top of the base image as its own node.

use std::path::Path;
use std::process::Command;

use osimage_e2e::rpmbuild::{FileSpec, PkgSpec, build};
use osimage_e2e::spine::osimage;
use osimage_e2e::{require, tools};

/// The base repository in `dir/repo`, `pkgs` as the `other/extras` sub-directory repository
/// (createrepo_c), `base.pkglist` and `other.pkglist` with the given lines, and the spec.
fn setup(dir: &Path, pkgs: &[PkgSpec], base: &str, other: &str) {
    super::build_packages::repo(&dir.join("repo"));
    let extras = dir.join("other/extras");
    build(pkgs, &extras).unwrap();
    assert!(
        Command::new("createrepo_c")
            .arg("-q")
            .arg(&extras)
            .status()
            .unwrap()
            .success()
    );
    std::fs::write(dir.join("base.pkglist"), base).unwrap();
    std::fs::write(dir.join("other.pkglist"), other).unwrap();
    std::fs::write(
        dir.join("spec.toml"),
        "[osimage]\nname = \"other\"\nosvers = \"rocky9.4\"\narch = \"x86_64\"\n\n\
         [repos]\npkgdir = [\"repo\"]\notherpkgdir = \"other\"\n\n\
         [packages]\npkglist = [\"base.pkglist\"]\notherpkglist = [\"other.pkglist\"]\n\n\
         [image]\nrootimgdir = \"out\"\n",
    )
    .unwrap();
}

#[test]
fn otherpkgs_install_on_top_of_the_base_image() {
    require!(
        tools::have("rpmbuild") && tools::have("createrepo_c") && tools::is_root(),
        "needs rpmbuild, createrepo_c and root"
    );
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    setup(
        dir,
        &[PkgSpec::new("extra-tool", "1.0").req("demo-app").file(
            FileSpec::file("/usr/bin/extra-tool", "#!/bin/sh\necho extra")
                .attr("0755", "root", "root"),
        )],
        "demo-app\ndemo-docs\n",
        "extras/extra-tool\n-demo-docs\n",
    );
    let o = osimage(&["plan", "spec.toml", "--cache-dir", "c", "--json"], dir);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = plan["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"otherpkgs") && names.contains(&"otherrepo"),
        "{names:?}"
    );
    let o = osimage(
        &["build", "spec.toml", "--cache-dir", "c", "--rootimg"],
        dir,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let q = Command::new("rpm")
        .arg("--root")
        .arg(dir.join("out/rootimg"))
        .args([
            "--dbpath",
            "/var/lib/rpm",
            "-qa",
            "--qf",
            "%{NAME}-%{VERSION}\\n",
        ])
        .output()
        .unwrap();
    let mut qa: Vec<String> = String::from_utf8_lossy(&q.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    qa.sort();
    assert_eq!(
        qa,
        [
            "demo-app-1.0",
            "extra-tool-1.0",
            "filesystem-3.16",
            "libdemo-2.0"
        ]
    );
    assert!(dir.join("out/rootimg/usr/bin/extra-tool").is_file());
    assert!(!dir.join("out/rootimg/usr/lib/demo-docs.txt").exists());
}

/// An otherpkglist naming a newer version of a base package: the otherpkgs node upgrades it
/// on top of the base image as `rpm -U` does (one version left in the rpmdb, the dropped file
/// gone, `rpm -V` clean).
#[test]
fn otherpkgs_upgrade_a_base_package() {
    require!(
        tools::have("rpmbuild")
            && tools::have("createrepo_c")
            && tools::have("rpm")
            && tools::is_root(),
        "needs rpmbuild, createrepo_c, rpm and root"
    );
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    setup(
        dir,
        &[PkgSpec::new("demo-app", "2.0")
            .req("demo-api >= 3")
            .req("filesystem")
            .file(
                FileSpec::file("/usr/bin/demo-app", "#!/bin/sh\necho demo v2")
                    .attr("0755", "root", "root"),
            )
            .file(FileSpec::file("/usr/bin/demo-app-helper", "helper"))],
        "demo-app\n",
        "extras/demo-app-2.0\n",
    );
    let o = osimage(
        &["build", "spec.toml", "--cache-dir", "c", "--rootimg"],
        dir,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let root = dir.join("out/rootimg");
    let rpm = |args: &[&str]| {
        let q = Command::new("rpm")
            .arg("--root")
            .arg(&root)
            .args(["--dbpath", "/var/lib/rpm"])
            .args(args)
            .output()
            .unwrap();
        (
            q.status.success(),
            String::from_utf8_lossy(&q.stdout).into_owned(),
        )
    };
    let (_, qa) = rpm(&["-qa", "--qf", "%{NAME}-%{VERSION}\\n"]);
    let mut qa: Vec<&str> = qa.lines().collect();
    qa.sort();
    assert_eq!(qa, ["demo-app-2.0", "filesystem-3.16", "libdemo-2.0"]);
    assert_eq!(
        std::fs::read_to_string(root.join("usr/bin/demo-app")).unwrap(),
        "#!/bin/sh\necho demo v2\n"
    );
    assert!(root.join("usr/bin/demo-app-helper").is_file());
    assert!(
        !root.join("etc/demo.conf").exists(),
        "v1's dropped file left"
    );
    let (ok, v) = rpm(&["-V", "demo-app"]);
    assert!(ok && v.is_empty(), "rpm -V demo-app: {v}");
    let (_, f) = rpm(&["-qf", "/usr/bin/demo-app"]);
    assert_eq!(f.trim(), "demo-app-2.0-1.noarch");
}
