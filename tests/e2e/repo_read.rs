//! Repository reading against createrepo_c output and rpmbuild packages: repodata vs header
//! scan, nested repo discovery, checksum/truncation errors, and our createrepo accepted by dnf
//! and `createrepo_c --update`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use imagecore::repo::xml::{decompress, digest_hex};
use imagecore::repo::{RepoError, RepoIndex, createrepo, find_repos, load_repo, repo_fingerprint};
use osimage_e2e::oracle::{DnfOpts, dnf_assumeno};
use osimage_e2e::require;
use osimage_e2e::rpmbuild::{FileSpec, PkgSpec, build, createrepo_c};
use osimage_e2e::tools::have;

fn pkgs() -> Vec<PkgSpec> {
    vec![
        PkgSpec::new("alpha", "1.0")
            .arch("x86_64")
            .prov("alpha-api = 2.0")
            .req("beta >= 1:0.9")
            .req_pre("/bin/sh")
            .conflicts("gamma < 2")
            .obsoletes("alpha-old < 1.0")
            .recommends("beta-docs")
            .supplements("(beta and gamma)")
            .file(FileSpec::file("/usr/bin/alpha", "#!/bin/sh\necho alpha"))
            .file(FileSpec::file("/usr/share/alpha/data & more.txt", "x"))
            .file(FileSpec::dir("/usr/share/alpha/empty"))
            .script("post", "true"),
        PkgSpec::new("beta", "0.9")
            .epoch(1)
            .release("2.el9")
            .req("(gamma or delta)"),
        PkgSpec::new("gamma", "2.0~rc1")
            .prov("/bin/sh")
            .file(FileSpec::file("/etc/gamma.conf", "a=1")),
        PkgSpec::new("delta", "1.0^git3"),
    ]
}

fn built() -> Option<(tempfile::TempDir, PathBuf)> {
    if !(have("rpmbuild") && have("createrepo_c")) {
        return None;
    }
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("repo");
    build(&pkgs(), &dir).unwrap();
    Some((t, dir))
}

/// What both readers must agree on (fields repodata carries).
fn summary(r: &RepoIndex) -> BTreeSet<String> {
    r.packages
        .iter()
        .map(|p| {
            let deps = |v: &[imagecore::rpm::Dep]| {
                let mut v: Vec<String> = v
                    .iter()
                    .map(|d| format!("{d}{}", if d.pre { "(pre)" } else { "" }))
                    .collect();
                v.sort();
                v.join(",")
            };
            let mut files = p.files.clone();
            files.sort();
            let mut dirs = p.dirs.clone();
            dirs.sort();
            format!(
                "{} {} {} {} | P {} | R {} | C {} | O {} | Rec {} | Sup {} | F {:?} | D {:?}",
                p.nevra(),
                p.sha256,
                p.location,
                p.size,
                deps(&p.provides),
                deps(&p.requires),
                deps(&p.conflicts),
                deps(&p.obsoletes),
                deps(&p.recommends),
                deps(&p.supplements),
                files,
                dirs
            )
        })
        .collect()
}

#[test]
fn repodata_and_header_scan_agree() {
    require!(
        have("rpmbuild") && have("createrepo_c"),
        "rpmbuild/createrepo_c missing"
    );
    let (_t, dir) = built().unwrap();
    let scanned = load_repo(&dir, "scan").unwrap();
    assert!(scanned.checksum.starts_with("scan:"));
    createrepo_c(&dir, None).unwrap();
    let md = load_repo(&dir, "md").unwrap();
    assert!(md.checksum.starts_with("sha256:"));
    assert_eq!(md.packages.len(), 4);
    assert_eq!(summary(&scanned), summary(&md));
    let alpha = md.packages.iter().find(|p| p.name == "alpha").unwrap();
    assert!(alpha.requires.iter().any(|d| d.name == "/bin/sh" && d.pre));
    assert!(alpha.supplements[0].rich.is_some());
    assert!(
        alpha
            .files
            .contains(&"/usr/share/alpha/data & more.txt".to_string()),
        "filelists merged"
    );
    let beta = md.packages.iter().find(|p| p.name == "beta").unwrap();
    assert_eq!((beta.epoch, beta.release.as_str()), (1, "2.el9"));
    // the header scan knows scriptlets, repodata does not record them
    assert!(
        scanned
            .packages
            .iter()
            .find(|p| p.name == "alpha")
            .unwrap()
            .scriptlets
            .contains(&"post".to_string())
    );
}

#[test]
fn nested_repos_are_found_like_xcat() {
    require!(
        have("rpmbuild") && have("createrepo_c"),
        "rpmbuild/createrepo_c missing"
    );
    let (t, dir) = built().unwrap();
    let media = t.path().join("media");
    for sub in ["BaseOS", "AppStream"] {
        let d = media.join(sub).join("Packages");
        std::fs::create_dir_all(&d).unwrap();
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            std::fs::copy(e.path(), d.join(e.file_name())).unwrap();
        }
        createrepo_c(&media.join(sub), None).unwrap();
    }
    let found = find_repos(&media).unwrap();
    assert_eq!(found, vec![media.join("AppStream"), media.join("BaseOS")]);
    assert_eq!(
        find_repos(&dir).unwrap(),
        vec![dir.clone()],
        "plain dir of rpms"
    );
    let empty = t.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    assert!(matches!(find_repos(&empty), Err(RepoError::NoRepo { .. })));
    let fp1 = repo_fingerprint(&media.join("BaseOS")).unwrap();
    assert!(fp1.starts_with("sha256:"));
    assert_eq!(fp1, repo_fingerprint(&media.join("BaseOS")).unwrap());
    assert!(repo_fingerprint(&dir).unwrap().starts_with("scan:"));
}

fn primary_href(dir: &Path) -> String {
    let md = std::fs::read_to_string(dir.join("repodata/repomd.xml")).unwrap();
    let i = md.find("repodata/").unwrap();
    let s = &md[i..];
    let href = &s[..s.find('"').unwrap()];
    assert!(
        href.contains("primary"),
        "first data entry is primary: {href}"
    );
    href.to_string()
}

#[test]
fn corrupt_and_truncated_metadata_are_refused() {
    require!(
        have("rpmbuild") && have("createrepo_c"),
        "rpmbuild/createrepo_c missing"
    );
    let (_t, dir) = built().unwrap();
    createrepo_c(&dir, None).unwrap();
    let href = primary_href(&dir);
    let path = dir.join(&href);
    let orig = std::fs::read(&path).unwrap();
    // 1. one flipped byte: checksum mismatch naming the file
    let mut bad = orig.clone();
    let n = bad.len() / 2;
    bad[n] ^= 0xff;
    std::fs::write(&path, &bad).unwrap();
    let err = load_repo(&dir, "x").unwrap_err();
    assert!(matches!(err, RepoError::Checksum { .. }), "{err}");
    assert!(
        err.to_string().contains("primary.xml.gz") && err.to_string().contains("checksum mismatch"),
        "{err}"
    );
    // 2. truncated XML with matching checksums: an XML error naming the file
    let plain = decompress(&path, &orig).unwrap();
    let cut = &plain[..plain.len() * 2 / 3];
    let gz = {
        let mut c = std::process::Command::new("gzip")
            .arg("-nc")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(c.stdin.as_mut().unwrap(), cut).unwrap();
        drop(c.stdin.take());
        c.wait_with_output().unwrap().stdout
    };
    std::fs::write(&path, &gz).unwrap();
    let sha = |b: &[u8]| digest_hex("sha256", b).unwrap();
    let repomd = dir.join("repodata/repomd.xml");
    let md = std::fs::read_to_string(&repomd).unwrap();
    let md = md.replacen(&sha(&orig), &sha(&gz), 1);
    let md = md.replacen(&sha(&plain), &sha(cut), 1);
    std::fs::write(&repomd, md).unwrap();
    let err = load_repo(&dir, "x").unwrap_err();
    assert!(matches!(err, RepoError::Xml { .. }), "{err}");
    assert!(err.to_string().contains("primary.xml.gz"), "{err}");
    // 3. repomd itself truncated
    std::fs::write(
        &repomd,
        "<?xml version=\"1.0\"?>\n<repomd><data type=\"primary\">",
    )
    .unwrap();
    let err = load_repo(&dir, "x").unwrap_err();
    assert!(err.to_string().contains("repomd.xml"), "{err}");
}

#[test]
fn our_createrepo_is_accepted_by_dnf_and_createrepo_c() {
    require!(
        have("rpmbuild") && have("createrepo_c") && have("dnf"),
        "rpmbuild/createrepo_c/dnf missing"
    );
    let (t, dir) = built().unwrap();
    let comps = t.path().join("comps.xml");
    std::fs::write(
        &comps,
        "<?xml version=\"1.0\"?>\n<comps><group><id>g</id><name>G</name><packagelist><packagereq type=\"mandatory\">delta</packagereq></packagelist></group></comps>\n",
    )
    .unwrap();
    let theirs = t.path().join("theirs");
    std::fs::create_dir_all(&theirs).unwrap();
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        std::fs::copy(e.path(), theirs.join(e.file_name())).unwrap();
    }
    createrepo_c(&theirs, Some(&comps)).unwrap();
    createrepo(&dir, Some(&comps)).unwrap();
    let ours = load_repo(&dir, "x").unwrap();
    let ref_ = load_repo(&theirs, "x").unwrap();
    assert_eq!(
        summary(&ours),
        summary(&ref_),
        "our repodata reads back like createrepo_c's"
    );
    assert_eq!(ours.groups, ref_.groups);
    // dnf resolves the same transaction from both
    let a = dnf_assumeno(&[dir.as_path()], &["alpha", "@g"], &DnfOpts::default()).unwrap();
    let b = dnf_assumeno(&[theirs.as_path()], &["alpha", "@g"], &DnfOpts::default()).unwrap();
    assert_eq!(a, b);
    assert!(
        a.contains("alpha-1.0-1.x86_64") && a.contains("delta-1.0^git3-1.noarch"),
        "{a:?}"
    );
    // createrepo_c --update reuses our metadata without complaint
    let o = std::process::Command::new("createrepo_c")
        .arg("--update")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(summary(&load_repo(&dir, "x").unwrap()), summary(&ref_));
}

#[test]
fn dnf_really_installs_from_our_repo() {
    require!(have("rpmbuild") && have("dnf"), "rpmbuild/dnf missing");
    require!(
        osimage_e2e::tools::is_root(),
        "needs root for dnf --installroot"
    );
    let (t, dir) = built().unwrap();
    createrepo(&dir, None).unwrap();
    let root = t.path().join("root");
    let got =
        osimage_e2e::oracle::dnf_install(&[dir.as_path()], &root, &["delta"], &DnfOpts::default())
            .unwrap();
    assert_eq!(got, BTreeSet::from(["delta-1.0^git3-1.noarch".to_string()]));
}

#[test]
fn corpus_repodata_matches_createrepo_c() {
    let Some(corpus) = std::env::var_os("OSIMAGE_CORPUS").map(PathBuf::from) else {
        eprintln!("SKIPPED: OSIMAGE_CORPUS not set");
        return;
    };
    require!(have("createrepo_c"), "createrepo_c missing");
    let t = tempfile::tempdir().unwrap();
    let (ours_dir, theirs_dir) = (t.path().join("ours"), t.path().join("theirs"));
    for d in [&ours_dir, &theirs_dir] {
        std::fs::create_dir_all(d).unwrap();
    }
    let mut n = 0;
    for sub in ["rpm-upstream", "rpm-rs/v4"] {
        for e in std::fs::read_dir(corpus.join(sub)).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.ends_with(".rpm") && !name.contains("corrupted") {
                std::fs::copy(e.path(), ours_dir.join(&name)).unwrap();
                std::fs::copy(e.path(), theirs_dir.join(&name)).unwrap();
                n += 1;
            }
        }
    }
    createrepo(&ours_dir, None).unwrap();
    createrepo_c(&theirs_dir, None).unwrap();
    let (a, b) = (
        load_repo(&ours_dir, "x").unwrap(),
        load_repo(&theirs_dir, "x").unwrap(),
    );
    assert_eq!(a.packages.len(), n);
    let (sa, sb) = (summary(&a), summary(&b));
    let only_a: Vec<_> = sa.difference(&sb).collect();
    let only_b: Vec<_> = sb.difference(&sa).collect();
    assert!(
        only_a.is_empty() && only_b.is_empty(),
        "ours:\n{only_a:#?}\ncreaterepo_c:\n{only_b:#?}"
    );
}
