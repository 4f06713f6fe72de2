//! Fixture trees with every file type, and tree listings made by GNU find (not by us).

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;

fn w(p: &Path, data: &[u8]) {
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(p, data).unwrap();
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Deterministic pseudo-random bytes (xorshift), so trees are the same on every run.
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A root tree with directories, files, symlinks (relative and absolute), a hardlink set,
/// setuid/setgid/sticky modes, a fifo, an empty file, a file with odd mtime, xattrs, and —
/// when root — char/block devices, non-root owners and a `security.capability` xattr.
pub fn every_type_tree(root: &Path) {
    for d in [
        "etc",
        "usr/bin",
        "usr/sbin",
        "usr/lib",
        "usr/share/doc/pkg",
        "var/log",
        "dev",
        "tmp",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    chmod(&root.join("tmp"), 0o1777);
    w(
        &root.join("etc/os-release"),
        b"NAME=\"Test Linux\"\nVERSION_ID=9.4\n",
    );
    w(&root.join("etc/empty"), b"");
    w(&root.join("usr/bin/tool"), b"#!/bin/sh\necho tool\n");
    chmod(&root.join("usr/bin/tool"), 0o755);
    w(&root.join("usr/sbin/su-helper"), &bytes(1, 3000));
    chmod(&root.join("usr/sbin/su-helper"), 0o4755);
    w(&root.join("usr/bin/sg-helper"), &bytes(2, 100));
    chmod(&root.join("usr/bin/sg-helper"), 0o2711);
    w(&root.join("usr/lib/libbig.so"), &bytes(3, 300_000));
    std::fs::hard_link(
        root.join("usr/lib/libbig.so"),
        root.join("usr/lib/libbig.so.1"),
    )
    .unwrap();
    std::fs::hard_link(
        root.join("usr/lib/libbig.so"),
        root.join("usr/sbin/big-link"),
    )
    .unwrap();
    w(&root.join("usr/share/doc/pkg/README"), b"docs\n");
    w(&root.join("usr/share/doc/pkg/COPYING"), b"license\n");
    w(&root.join("var/log/messages"), b"log line\n");
    symlink("usr/bin", root.join("bin")).unwrap();
    symlink("/usr/lib/libbig.so", root.join("usr/lib/libbig-abs.so")).unwrap();
    symlink("../../nonexistent", root.join("usr/lib/dangling")).unwrap();
    let fifo = root.join("var/log/fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let odd = root.join("etc/old-file");
    w(&odd, b"old\n");
    filetime_set(&odd, 123_456_789);
    xattr::set(root.join("etc/os-release"), "user.osimage.test", b"value-1").ok();
    if crate::tools::is_root() {
        assert!(
            Command::new("mknod")
                .arg(root.join("dev/null"))
                .args(["c", "1", "3"])
                .status()
                .unwrap()
                .success()
        );
        assert!(
            Command::new("mknod")
                .arg(root.join("dev/sda"))
                .args(["b", "8", "0"])
                .status()
                .unwrap()
                .success()
        );
        let owned = root.join("var/log/owned");
        w(&owned, b"owned by 1000:1000\n");
        std::os::unix::fs::chown(&owned, Some(1000), Some(1000)).unwrap();
        // cap_net_raw=ep as a v2 vfs_cap_data
        let cap: [u8; 20] = [
            0, 0, 0, 2, 0, 0x20, 0, 0, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        xattr::set(root.join("usr/bin/tool"), "security.capability", &cap).unwrap();
    }
}

/// Set a file's mtime (via `touch -d @N`, a real tool).
pub fn filetime_set(p: &Path, secs: i64) {
    assert!(
        Command::new("touch")
            .arg("-h")
            .arg("-d")
            .arg(format!("@{secs}"))
            .arg(p)
            .status()
            .unwrap()
            .success()
    );
}

/// A listing of a tree by GNU find + sha256sum: one line per entry with path, type, mode,
/// uid, gid, size (files), link target, link count and content hash. `mtime_clamp` clamps mtimes
/// to that value (what a reproducible pack does) — `None` omits mtimes.
pub fn listing(root: &Path, mtime_clamp: Option<i64>, with_nlink: bool) -> Vec<String> {
    let out = Command::new("find")
        .arg(".")
        .arg("-mindepth")
        .arg("1")
        .arg("-printf")
        .arg("%P\t%y\t%m\t%U\t%G\t%s\t%l\t%n\t%T@\n")
        .current_dir(root)
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let (path, ty) = (f[0], f[1]);
            let size = if ty == "f" { f[5] } else { "-" };
            let hash = if ty == "f" {
                let o = Command::new("sha256sum")
                    .arg(root.join(path))
                    .output()
                    .unwrap();
                String::from_utf8(o.stdout).unwrap()[..16].to_string()
            } else {
                "-".into()
            };
            let nlink = if with_nlink && ty == "f" { f[7] } else { "-" };
            let mtime = match mtime_clamp {
                Some(c) if ty != "l" => {
                    let t: f64 = f[8].parse().unwrap();
                    (t as i64).min(c).to_string()
                }
                _ => "-".into(),
            };
            format!(
                "{path} {ty} {} {} {} {size} {} {nlink} {hash} {mtime}",
                f[2], f[3], f[4], f[6]
            )
        })
        .collect();
    lines.sort();
    lines
}

/// Unpack a (compressed) newc archive with the real tools: `zstd|gzip|xz -dc | cpio -idm`.
pub fn unpack(archive: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    let dec = match archive.extension().and_then(|e| e.to_str()) {
        Some("zst") => "zstd -dc",
        Some("gz") => "gzip -dc",
        Some("xz") => "xz -dc",
        _ => "cat",
    };
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{dec} '{}' | cpio -idm --quiet --no-absolute-filenames",
            archive.display()
        ))
        .current_dir(dest)
        .status()
        .unwrap();
    assert!(st.success(), "unpacking {} failed", archive.display());
}
