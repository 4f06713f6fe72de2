//! xCAT otherpkgs: an `otherpkgdir` with a sub-directory repository (`subdir/pkg` entries), an
//! otherpkglist pass with a `-pkg` removal, installed on top of the base image as its own node.

use std::process::Command;

use osimage_e2e::rpmbuild::{FileSpec, PkgSpec, build};
use osimage_e2e::spine::osimage;
use osimage_e2e::{require, tools};

#[test]
fn otherpkgs_install_on_top_of_the_base_image() {
    require!(
        tools::have("rpmbuild") && tools::have("createrepo_c") && tools::is_root(),
        "needs rpmbuild, createrepo_c and root"
    );
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    super::build_packages::repo(&dir.join("repo"));
    let extras = dir.join("other/extras");
    build(
        &[PkgSpec::new("extra-tool", "1.0").req("demo-app").file(
            FileSpec::file("/usr/bin/extra-tool", "#!/bin/sh\necho extra")
                .attr("0755", "root", "root"),
        )],
        &extras,
    )
    .unwrap();
    assert!(
        Command::new("createrepo_c")
            .arg("-q")
            .arg(&extras)
            .status()
            .unwrap()
            .success()
    );
    std::fs::write(dir.join("base.pkglist"), "demo-app\ndemo-docs\n").unwrap();
    std::fs::write(dir.join("other.pkglist"), "extras/extra-tool\n-demo-docs\n").unwrap();
    std::fs::write(
        dir.join("spec.toml"),
        "[osimage]\nname = \"other\"\nosvers = \"rocky9.4\"\narch = \"x86_64\"\n\n\
         [repos]\npkgdir = [\"repo\"]\notherpkgdir = \"other\"\n\n\
         [packages]\npkglist = [\"base.pkglist\"]\notherpkglist = [\"other.pkglist\"]\n\n\
         [image]\nrootimgdir = \"out\"\n",
    )
    .unwrap();
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
