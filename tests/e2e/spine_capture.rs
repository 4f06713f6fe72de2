//! End-to-end: capture a tree with every file type → postinstall → synclist → exlist → pack,
//! unpacked with GNU cpio and compared with the same pipeline done by real tools.

use osimage_e2e::spine::{self, EPOCH, osimage};
use osimage_e2e::{require, tools, trees};
use std::os::unix::fs::PermissionsExt;

fn sha(p: &std::path::Path) -> String {
    blake3::hash(&std::fs::read(p).unwrap())
        .to_hex()
        .to_string()
}

#[test]
fn capture_pipeline_matches_real_tools_and_is_reproducible() {
    require!(
        tools::have("cpio") && tools::have("zstd"),
        "needs GNU cpio and zstd"
    );
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let spec = spine::project(dir);
    let spec_s = spec.to_str().unwrap();

    let o = osimage(
        &["build", spec_s, "--cache-dir", "cache1", "--rootimg"],
        dir,
    );
    assert!(
        o.status.success(),
        "build failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let archive = dir.join("out/rootimg.cpio.zst");
    assert!(archive.is_file());

    // zstd integrity, no duplicate names in the archive
    assert!(
        std::process::Command::new("zstd")
            .arg("-tq")
            .arg(&archive)
            .status()
            .unwrap()
            .success()
    );
    let names = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "zstd -dc '{}' | cpio -t --quiet",
            archive.display()
        ))
        .output()
        .unwrap();
    let names: Vec<String> = String::from_utf8(names.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let mut uniq = names.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq.len(), names.len(), "duplicate archive entries");

    // unpack with GNU cpio and compare with the pipeline done by real tools
    let unpacked = dir.join("unpacked");
    trees::unpack(&archive, &unpacked);
    let expected = spine::expected(dir);
    let got = trees::listing(&unpacked, Some(EPOCH), true);
    let want = trees::listing(&expected, Some(EPOCH), true);
    let sockets_free: Vec<_> = want
        .iter()
        .filter(|l| !l.contains(" s "))
        .cloned()
        .collect();
    assert_eq!(
        got, sockets_free,
        "archive tree differs from the expected tree"
    );
    assert!(
        !got.iter()
            .any(|l| l.starts_with("usr/share/doc/pkg/README"))
    );
    assert!(
        got.iter()
            .any(|l| l.starts_with("usr/share/doc/pkg/COPYING"))
    );

    // --rootimg materialisation keeps xattrs too (newc cannot carry them)
    let rootimg = dir.join("out/rootimg");
    assert_eq!(
        xattr::get(rootimg.join("etc/os-release"), "user.osimage.test").unwrap(),
        xattr::get(dir.join("tree/etc/os-release"), "user.osimage.test").unwrap()
    );
    if tools::is_root() {
        assert_eq!(
            xattr::get(rootimg.join("usr/bin/tool"), "security.capability").unwrap(),
            xattr::get(dir.join("tree/usr/bin/tool"), "security.capability").unwrap()
        );
    } else {
        eprintln!("SKIPPED part: devices, owners and caps need root");
    }
    assert_eq!(trees::listing(&rootimg, Some(EPOCH), true), want);

    // second build with the same cache: everything cached, same bytes
    let first = sha(&archive);
    let o = osimage(&["plan", spec_s, "--cache-dir", "cache1", "--json"], dir);
    assert!(o.status.success());
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let nodes = plan["nodes"].as_array().unwrap();
    let kinds: Vec<&str> = nodes.iter().map(|n| n["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["capture", "files", "postinstall", "sync", "trim", "pack"]
    );
    assert!(nodes.iter().all(|n| n["state"] == "cached"), "{plan}");
    let o = osimage(&["build", spec_s, "--cache-dir", "cache1"], dir);
    assert!(o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("0 built"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert_eq!(sha(&archive), first);

    // build again from an empty cache: bit-identical archive
    std::fs::remove_file(&archive).unwrap();
    let o = osimage(&["build", spec_s, "--cache-dir", "cache2"], dir);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        sha(&archive),
        first,
        "archives from two empty caches differ"
    );
}

#[test]
fn one_byte_in_postinstall_dirties_it_and_descendants_only() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let spec = spine::project(dir);
    let spec_s = spec.to_str().unwrap();
    let o = osimage(&["build", spec_s, "--cache-dir", "c"], dir);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let plan = |dir: &std::path::Path| -> serde_json::Value {
        let o = osimage(&["plan", spec_s, "--cache-dir", "c", "--json"], dir);
        assert!(o.status.success());
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let before = plan(dir);
    let script = dir.join("compute.postinstall");
    let mut s = std::fs::read(&script).unwrap();
    s.push(b'\n');
    std::fs::write(&script, s).unwrap();
    let after = plan(dir);
    for (b, a) in before["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .zip(after["nodes"].as_array().unwrap())
    {
        let kind = a["kind"].as_str().unwrap();
        // postinstall's own input changed: dirty; below it, nodes wait for its output (early
        // cutoff) and have no key yet; above it, nothing changes
        let (state, key_changed) = match kind {
            "postinstall" => ("dirty", true),
            "sync" | "trim" | "pack" => ("pending", true),
            _ => ("cached", false),
        };
        assert_eq!(a["state"], state, "{kind}: {a}");
        assert_eq!(a["key"] != b["key"], key_changed, "{kind} key");
        if kind == "postinstall" {
            assert_eq!(
                a["reason"],
                "postinstall script compute.postinstall changed"
            );
        }
        if kind == "sync" {
            assert!(a["key"].is_null(), "{a}");
            assert_eq!(
                a["reason"],
                "waits for postinstall: runs only if its output changes"
            );
        }
    }
    // a trailing newline changes nothing the script does: postinstall re-runs, its output is the
    // same, so everything below it is a cache hit (early cutoff) and the archive is unchanged
    let archive = std::fs::read(dir.join("out/rootimg.cpio.zst")).unwrap();
    let o = osimage(&["build", spec_s, "--cache-dir", "c"], dir);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("built   postinstall"), "{err}");
    for k in ["sync", "trim", "pack"] {
        assert!(err.contains(&format!("cached  {k}")), "{k}: {err}");
    }
    assert_eq!(
        String::from_utf8_lossy(&o.stdout)
            .trim_end()
            .split(';')
            .next(),
        Some("1 built, 5 cached"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(dir.join("out/rootimg.cpio.zst")).unwrap(),
        archive
    );
    let settled = plan(dir);
    assert!(
        settled["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["state"] == "cached"),
        "{settled}"
    );
    // keys are a function of content, not of the directory or mtimes: a copy elsewhere agrees
    let t2 = tempfile::tempdir().unwrap();
    let spec2 = spine::project(t2.path());
    // same content, same mtimes (they are data of a captured tree), another directory and inodes
    std::fs::remove_dir_all(t2.path().join("tree")).unwrap();
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(dir.join("tree"))
        .arg(t2.path().join("tree"))
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::write(
        t2.path().join("compute.postinstall"),
        std::fs::read(&script).unwrap(),
    )
    .unwrap();
    let o = osimage(
        &["build", spec2.to_str().unwrap(), "--cache-dir", "c2"],
        t2.path(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = osimage(
        &[
            "plan",
            spec2.to_str().unwrap(),
            "--cache-dir",
            "c2",
            "--json",
        ],
        t2.path(),
    );
    let other: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let keys = |v: &serde_json::Value| -> Vec<String> {
        v["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["key"].as_str().unwrap().to_string())
            .collect()
    };
    // every key (including the parents' output digests in them) agrees with the first checkout
    assert_eq!(keys(&other), keys(&settled));
}

/// A captured tree's mtimes reach the archive (clamped to `source_date_epoch`), so they are
/// part of the capture key the same way: an mtime the archive would show rebuilds, a touch the
/// clamp hides does not.
#[test]
fn capture_key_follows_the_mtimes_the_archive_shows() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let spec = spine::project(dir);
    let spec_s = spec.to_str().unwrap();
    let o = osimage(&["build", spec_s, "--cache-dir", "c"], dir);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let capture_state = || -> serde_json::Value {
        let o = osimage(&["plan", spec_s, "--cache-dir", "c", "--json"], dir);
        assert!(o.status.success());
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["nodes"][0].clone()
    };
    assert_eq!(capture_state()["state"], "cached");
    let file = dir.join("tree/etc/os-release");
    assert!(file.exists(), "fixture changed: pick another file");
    // now (after the 2026-01-01 default epoch) → clamped to the epoch, as before if the file was
    // already newer than the epoch; otherwise the archive changes and so must the key
    let before = std::fs::metadata(&file).unwrap().modified().unwrap();
    let epoch = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_767_225_600);
    touch(&file, "now");
    let expect = if before >= epoch { "cached" } else { "dirty" };
    assert_eq!(capture_state()["state"], expect);
    // an old mtime shows in the archive: the capture must re-run
    let o = osimage(&["build", spec_s, "--cache-dir", "c"], dir);
    assert!(o.status.success());
    touch(&file, "2001-09-09 01:46:40 UTC");
    let c = capture_state();
    assert_eq!(c["state"], "dirty", "{c}");
    assert_eq!(
        c["reason"],
        format!("source tree {} changed", dir.join("tree").display())
    );
    let o = osimage(&["build", spec_s, "--cache-dir", "c"], dir);
    assert!(o.status.success());
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg("zstd -dc out/rootimg.cpio.zst | cpio -tv --quiet 2>/dev/null | grep ' etc/os-release$'")
        .current_dir(dir)
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&o.stdout);
    assert!(line.contains("2001"), "archive listing: {line}");
}

fn touch(file: &std::path::Path, date: &str) {
    let st = std::process::Command::new("touch")
        .arg("-d")
        .arg(date)
        .arg(file)
        .status()
        .unwrap();
    assert!(st.success());
}

/// As root, postinstall scripts run on an overlayfs over a reused checkout of the parent tree;
/// the result must be exactly what running them on a plain materialised copy gives (created,
/// changed and deleted files: the spine script writes /etc/motd, makes /opt/app and removes
/// /etc/empty). The second image reuses the checkout.
#[test]
fn postinstall_on_overlay_equals_postinstall_on_a_copy() {
    if !osimage_e2e::tools::is_root() {
        eprintln!("SKIPPED: postinstall overlays need root (id -u is not 0)");
        return;
    }
    let build = |overlay: &str| -> (Vec<u8>, tempfile::TempDir) {
        let t = tempfile::tempdir().unwrap();
        let spec = spine::project(t.path());
        // a second script, which sees the first one's changes: the overlay is mounted again
        // over the same upper and work directories (volatile mounts must allow that)
        let second = t.path().join("second.postinstall");
        std::fs::write(
            &second,
            "#!/bin/sh\nset -e\ncat \"$1/opt/app/data\" > \"$1/opt/app/copy\"\necho 2 >> \"$1/etc/motd\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&second, std::fs::Permissions::from_mode(0o755)).unwrap();
        let text = std::fs::read_to_string(&spec).unwrap().replace(
            r#"postinstall = ["compute.postinstall --flag"]"#,
            r#"postinstall = ["compute.postinstall --flag", "second.postinstall"]"#,
        );
        assert!(text.contains("second.postinstall"));
        std::fs::write(&spec, text).unwrap();
        let o = std::process::Command::new(osimage_e2e::tools::osimage_bin())
            .args(["build", spec.to_str().unwrap(), "--cache-dir", "c"])
            .env("OSIMAGE_POSTINSTALL_OVERLAY", overlay)
            .current_dir(t.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        (
            std::fs::read(t.path().join("out/rootimg.cpio.zst")).unwrap(),
            t,
        )
    };
    let (copy, _t1) = build("0");
    let (over, t2) = build("1");
    assert!(copy == over, "overlay and copy postinstall differ");
    let listing = std::process::Command::new("sh")
        .arg("-c")
        .arg("zstd -dc out/rootimg.cpio.zst | cpio -t --quiet")
        .current_dir(t2.path())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&listing.stdout).contains("opt/app/copy"),
        "the second postinstall script did not run after the first"
    );
    let checkouts: Vec<_> = std::fs::read_dir(t2.path().join("c/checkouts"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(checkouts.len(), 1, "{checkouts:?}");
    // the overlay never wrote into the checkout: the script's changes are not in it
    let co = t2.path().join("c/checkouts").join(&checkouts[0]);
    assert!(co.join("etc/empty").exists());
    assert!(!co.join("opt/app").exists());
    // checkouts are derived data: gc drops them
    let o = osimage(&["cache", "gc", "--cache-dir", "c"], t2.path());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("1 checkouts removed"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(!co.exists());
}
