//! End-to-end: capture a tree with every file type → postinstall → synclist → exlist → pack,
//! unpacked with GNU cpio and compared with the same pipeline done by real tools.

use osimage_e2e::spine::{self, EPOCH, osimage};
use osimage_e2e::{require, tools, trees};

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
        let dirty = matches!(kind, "postinstall" | "sync" | "trim" | "pack");
        assert_eq!(
            a["state"],
            if dirty { "dirty" } else { "cached" },
            "{kind}: {a}"
        );
        assert_eq!(a["key"] != b["key"], dirty, "{kind} key");
        if kind == "postinstall" {
            assert_eq!(
                a["reason"],
                "postinstall script compute.postinstall changed"
            );
        }
        if kind == "sync" {
            assert_eq!(a["reason"], "parent postinstall changed");
        }
    }
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
    assert_eq!(keys(&other), keys(&after));
}
