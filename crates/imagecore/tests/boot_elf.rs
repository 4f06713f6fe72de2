//! `elf_closure` against the real dynamic loader's view (`ldd`) on the build host's own root,
//! for binaries with few and with many libraries.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use imagecore::boot::elf_closure;

fn which(b: &str) -> Option<PathBuf> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {b}"))
        .output()
        .ok()?;
    let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && p.starts_with('/')).then(|| PathBuf::from(p))
}

/// ldd's files (real paths) plus the binary itself.
fn ldd(bin: &Path) -> BTreeSet<PathBuf> {
    let out = Command::new("ldd").arg(bin).output().unwrap();
    assert!(out.status.success(), "ldd {}", bin.display());
    let mut set: BTreeSet<PathBuf> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with('/')))
        .map(|p| std::fs::canonicalize(p).unwrap())
        .collect();
    set.insert(std::fs::canonicalize(bin).unwrap());
    set
}

#[test]
fn closure_matches_ldd_on_host_binaries() {
    if which("ldd").is_none() {
        eprintln!("SKIPPED: ldd missing");
        return;
    }
    let mut checked = 0;
    for b in [
        "zstd",
        "ls",
        "cpio",
        "rpm",
        "qemu-system-x86_64",
        "dnf",
        "python3",
    ] {
        let Some(path) = which(b) else {
            eprintln!("{b}: not installed, skipped");
            continue;
        };
        let real = std::fs::canonicalize(&path).unwrap();
        // a script (dnf) has no ELF closure: only itself
        let ours: BTreeSet<PathBuf> = elf_closure(Path::new("/"), &[path.to_str().unwrap()])
            .unwrap()
            .into_iter()
            .map(|rel| Path::new("/").join(rel))
            .filter(|p| {
                !std::fs::symlink_metadata(p)
                    .unwrap()
                    .file_type()
                    .is_symlink()
            })
            .collect();
        let is_elf = std::fs::read(&real).unwrap().starts_with(b"\x7fELF");
        let theirs = if is_elf {
            ldd(&real)
        } else {
            BTreeSet::from([real.clone()])
        };
        assert_eq!(ours, theirs, "{b}");
        // every symlink we return resolves inside the set
        for rel in elf_closure(Path::new("/"), &[path.to_str().unwrap()]).unwrap() {
            let p = Path::new("/").join(&rel);
            if std::fs::symlink_metadata(&p)
                .unwrap()
                .file_type()
                .is_symlink()
            {
                assert!(p.exists(), "dangling {}", p.display());
            }
        }
        eprintln!("{b}: {} files, same as ldd", ours.len());
        checked += 1;
    }
    assert!(checked >= 2, "too few host binaries to compare");
}
