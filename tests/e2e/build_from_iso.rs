//! A spec whose `pkgdir` names an ISO imports it on the first build (a `copycds` node) and is a
//! cache hit afterwards; `media:` references resolve against the same media store. Both the
//! root repo and the AppStream sub-repo of the DVD layout are used.

use osimage_e2e::iso::{DvdOptions, build_rpm, make_dvd_tree, missing_tool, xorriso_iso};
use osimage_e2e::require;
use osimage_e2e::spine::osimage;

#[test]
fn iso_pkgdir_is_imported_once_and_installed_from() {
    require!(
        missing_tool().is_none(),
        "needs rpmbuild, createrepo_c, xorriso"
    );
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let rpms = dir.join("rpms");
    std::fs::create_dir_all(&rpms).unwrap();
    let base = build_rpm(dir, &rpms, "basepkg", "1.0", "").unwrap();
    let app = build_rpm(dir, &rpms, "apppkg", "2.0", "basepkg").unwrap();
    make_dvd_tree(&dir.join("dvd"), &[base, app], &DvdOptions::default()).unwrap();
    xorriso_iso(&dir.join("dvd"), &dir.join("Rocky-9.4-x86_64-dvd.iso")).unwrap();
    std::fs::write(dir.join("c.pkglist"), "apppkg\n").unwrap();
    let spec = |pkgdir: &str| {
        format!(
            "[osimage]\nname = \"iso\"\nosvers = \"rocky9.4\"\narch = \"x86_64\"\n\n[repos]\npkgdir = [\"{pkgdir}\"]\n\n\
             [packages]\npkglist = [\"c.pkglist\"]\nscriptlets = \"skip\"\n\n[image]\nrootimgdir = \"out\"\n"
        )
    };
    std::fs::write(dir.join("iso.toml"), spec("Rocky-9.4-x86_64-dvd.iso")).unwrap();
    let o = osimage(&["plan", "iso.toml", "--cache-dir", "c", "--json"], dir);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(plan["nodes"][0]["kind"], "copycds");
    let o = osimage(&["build", "iso.toml", "--cache-dir", "c"], dir);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(dir.join("install/rocky9.4/x86_64/.discinfo").is_file());
    let listing = std::process::Command::new("sh")
        .arg("-c")
        .arg("zstd -dc out/rootimg.cpio.zst | cpio -t --quiet")
        .current_dir(dir)
        .output()
        .unwrap();
    let names = String::from_utf8_lossy(&listing.stdout);
    assert!(names.contains("usr/share/apppkg"), "{names}");
    assert!(names.contains("usr/share/basepkg"), "{names}");
    // second plan: everything cached, the ISO is not re-hashed beyond its stamp
    let o = osimage(&["plan", "iso.toml", "--cache-dir", "c", "--json"], dir);
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        plan["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["state"] == "cached"),
        "{plan}"
    );
    // the same media through a media: reference
    std::fs::write(dir.join("media.toml"), spec("media:rocky9.4/x86_64")).unwrap();
    let o = osimage(&["build", "media.toml", "--cache-dir", "c"], dir);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
