//! `osimage createrepo` and `osimage lock` end to end: JSON shape, TOML round trip, repo
//! checksum matching, multi-pass locks, and unsat exit codes.

use std::process::Command;

use imagecore::repo::load_repo;
use imagecore::solve::Lock;
use osimage_e2e::require;
use osimage_e2e::rpmbuild::{FileSpec, PkgSpec, build};
use osimage_e2e::tools::{have, osimage_bin};

fn osimage(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(osimage_bin())
        .args(args)
        .output()
        .expect("run osimage");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn lock_round_trips_and_tracks_repo_checksums() {
    require!(have("rpmbuild"), "rpmbuild missing");
    require!(
        osimage_bin().exists(),
        "osimage binary not built (cargo build -p imagecli)"
    );
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    build(
        &[
            PkgSpec::new("app", "1.0").req("libx >= 2").req_pre("setup"),
            PkgSpec::new("libx", "2.5")
                .arch("x86_64")
                .req("setup")
                .file(FileSpec::file("/usr/lib64/libx.so", "x")),
            PkgSpec::new("setup", "1.0"),
            PkgSpec::new("extra", "1.0").req("app"),
        ],
        &repo,
    )
    .unwrap();
    let (code, out, err) = osimage(&["createrepo", repo.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let r = repo.to_str().unwrap();

    let (code, json, err) = osimage(&["lock", "--repo", r, "app", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let pkgs = v["passes"][0]["packages"].as_array().unwrap();
    let names: Vec<&str> = pkgs.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["setup", "libx", "app"],
        "install order: pre-req and deps first"
    );
    for p in pkgs {
        for k in [
            "name", "epoch", "version", "release", "arch", "repo", "location", "sha256",
        ] {
            assert!(!p[k].is_null(), "{k} missing in {p}");
        }
        let file = repo.join(p["location"].as_str().unwrap());
        let data = std::fs::read(&file).unwrap();
        assert_eq!(
            p["sha256"].as_str().unwrap(),
            imagecore::repo::xml::digest_hex("sha256", &data).unwrap()
        );
    }

    let lockfile = t.path().join("osimage.lock");
    let (code, _, err) = osimage(&[
        "lock",
        "--repo",
        r,
        "app",
        "--pass",
        "extra -libx",
        "-o",
        lockfile.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let lock = Lock::from_toml(&std::fs::read_to_string(&lockfile).unwrap()).unwrap();
    assert_eq!(
        Lock::from_toml(&lock.to_toml()).unwrap(),
        lock,
        "TOML round trip"
    );
    assert_eq!(lock.passes.len(), 2);
    assert_eq!(
        lock.passes[1]
            .packages
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        ["extra"]
    );
    assert_eq!(
        lock.passes[1].removed,
        ["libx", "app", "extra", "setup"],
        "dnf remove takes dependents along, then unneeded dependencies"
    );
    let idx = vec![load_repo(&repo, "repo").unwrap()];
    assert!(
        lock.matches(&idx),
        "{:?} vs {:?}",
        lock.repos,
        idx[0].checksum
    );

    // a new package changes repomd: the lock no longer matches, and says why
    build(&[PkgSpec::new("newcomer", "1.0")], &repo).unwrap();
    let (code, _, _) = osimage(&["createrepo", r]);
    assert_eq!(code, 0);
    let idx = vec![load_repo(&repo, "repo").unwrap()];
    assert!(!lock.matches(&idx));
    assert!(
        lock.mismatch(&idx)
            .unwrap()
            .contains("repository repo changed")
    );

    // unsatisfiable: exit 1 with dnf's wording
    let (code, _, err) = osimage(&["lock", "--repo", r, "missing-thing"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("No match for argument: missing-thing"),
        "{err}"
    );
}
