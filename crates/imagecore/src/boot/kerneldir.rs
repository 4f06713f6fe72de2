//! Kernels from a `kerneldir` (a repository or a plain directory of kernel RPMs) and driver
//! RPMs: choosing the kernel packages by the same `-k`/`-g` rules as in an image root, and
//! unpacking RPM payloads with the install engine (no scriptlets, no rpmdb in the result).
//!
//! A kernel here is the set of kernel-family packages (`kernel`, `kernel-core`,
//! `kernel-modules*`, and their `-debug`/`-rt`/`-64k` variants) of one version-release whose
//! files name one `uname -r` (`lib/modules/<kver>/…` or `boot/vmlinuz-<kver>`). Packages
//! without such files (the RHEL `kernel` meta package) are left out: they carry nothing to
//! unpack.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use walkdir::WalkDir;

use super::BootError;
use super::kernel::kver_cmp;
use crate::rpm::Evr;

/// The kernel chosen from a kerneldir.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelRpms {
    /// The `uname -r` string.
    pub version: String,
    /// The packages' `version-release` (e.g. `5.14.0-70.el9`).
    pub version_release: String,
    /// The RPM files to unpack, sorted by path.
    pub rpms: Vec<PathBuf>,
    /// Their NEVRAs, in the same order.
    pub nevras: Vec<String>,
}

/// One candidate kernel: (kver, package EVR) → its packages.
#[derive(Clone, Debug)]
struct Candidate {
    evr: Evr,
    rpms: Vec<(PathBuf, String)>,
}

/// True for the package names that make up a kernel (not devel, headers, tools, docs).
fn kernel_family(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("kernel") else {
        return false;
    };
    let mut parts: Vec<&str> = rest.split('-').skip(1).collect();
    if rest.is_empty() {
        return true;
    }
    if !rest.starts_with('-') {
        return false;
    }
    // optional flavour, then optional sub-package
    if matches!(
        parts.first(),
        Some(&("debug" | "rt" | "64k" | "zfcpdump" | "uki"))
    ) {
        parts.remove(0);
        if parts.first() == Some(&"debug") {
            parts.remove(0);
        }
    }
    matches!(
        parts.as_slice(),
        [] | ["core"] | ["modules"] | ["modules", "core"] | ["modules", "extra"]
    )
}

/// The `uname -r` strings a package's files belong to.
pub(crate) fn kvers_of_files(files: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for f in files {
        let f = f.trim_start_matches('/');
        let v = f
            .strip_prefix("usr/lib/modules/")
            .or_else(|| f.strip_prefix("lib/modules/"))
            .and_then(|r| r.split_once('/').map(|(v, _)| v))
            .or_else(|| f.strip_prefix("boot/vmlinuz-"));
        if let Some(v) = v
            && !v.is_empty()
            && !out.iter().any(|o| o == v)
        {
            out.push(v.to_string());
        }
    }
    out
}

/// Every `.rpm` under `dir` (recursively, so `Packages/` of a repository is found too).
fn rpm_files(dir: &Path) -> Result<Vec<PathBuf>, BootError> {
    let mut out = Vec::new();
    for e in WalkDir::new(dir).follow_links(true).sort_by_file_name() {
        let e = e.map_err(|e| {
            let p = e.path().unwrap_or(dir).to_path_buf();
            BootError::io(p, std::io::Error::other(e.to_string()))
        })?;
        if e.file_type().is_file()
            && e.file_name().to_string_lossy().ends_with(".rpm")
            && !e.file_name().to_string_lossy().ends_with(".src.rpm")
        {
            out.push(e.into_path());
        }
    }
    Ok(out)
}

/// Read the kernels in `dir`: (kver, EVR) → packages. Only headers are read.
fn candidates(dir: &Path) -> Result<BTreeMap<(String, String), Candidate>, BootError> {
    let mut map: BTreeMap<(String, String), Candidate> = BTreeMap::new();
    for path in rpm_files(dir)? {
        let f = crate::rpm::payload::RpmFile::open(&path).map_err(|e| BootError::Rpm {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let meta = crate::rpm::header::from_metadata(&f.meta).map_err(|e| BootError::Rpm {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if !kernel_family(&meta.name) {
            continue;
        }
        let kvers = kvers_of_files(&meta.files);
        let [kver] = kvers.as_slice() else {
            if kvers.len() > 1 {
                tracing::warn!(
                    "{}: files for several kernels ({}), ignored",
                    path.display(),
                    kvers.join(", ")
                );
            }
            continue;
        };
        let evr = meta.evr();
        let c = map
            .entry((kver.clone(), format!("{}-{}", meta.version, meta.release)))
            .or_insert_with(|| Candidate {
                evr,
                rpms: Vec::new(),
            });
        c.rpms.push((path, meta.nevra()));
    }
    Ok(map)
}

/// Choose the kernel packages in `dir`.
///
/// - `kernelver` (`-k`): this `uname -r`; the highest package version-release among those.
/// - `krpmver` (`-g`): the packages whose `version-release` is `krpmver`, or whose `uname -r`
///   is `krpmver` or starts with `krpmver.` (as in an image root); ignored with `kernelver`.
/// - neither: the highest `uname -r` by rpm version order, then the highest package EVR.
pub fn choose_kerneldir(
    dir: &Path,
    kernelver: Option<&str>,
    krpmver: Option<&str>,
) -> Result<KernelRpms, BootError> {
    let all = candidates(dir)?;
    let mut keys: Vec<(&(String, String), &Candidate)> = all.iter().collect();
    keys.sort_by(|((ka, _), a), ((kb, _), b)| kver_cmp(ka, kb).then_with(|| a.evr.cmp(&b.evr)));
    let available = || {
        if keys.is_empty() {
            "none (no kernel, kernel-core or kernel-modules RPM with lib/modules/<version> files)"
                .to_string()
        } else {
            keys.iter()
                .map(|((k, vr), _)| format!("{k} (packages {vr})"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let (wanted, pick) = match (kernelver, krpmver) {
        (Some(k), _) => (
            format!("kernelver {k}"),
            keys.iter().rev().find(|((v, _), _)| v == k),
        ),
        (None, Some(g)) => (
            format!("krpmver {g}"),
            keys.iter().rev().find(|((v, vr), _)| {
                vr == g || v == g || v.strip_prefix(g).is_some_and(|r| r.starts_with('.'))
            }),
        ),
        (None, None) => ("any kernel package".to_string(), keys.last()),
    };
    let ((version, vr), c) = pick.ok_or_else(|| BootError::KernelNotFound {
        root: dir.to_path_buf(),
        wanted,
        available: available(),
    })?;
    let mut rpms = c.rpms.clone();
    rpms.sort();
    Ok(KernelRpms {
        version: version.clone(),
        version_release: vr.clone(),
        nevras: rpms.iter().map(|(_, n)| n.clone()).collect(),
        rpms: rpms.into_iter().map(|(p, _)| p).collect(),
    })
}

/// Where [`unpack_rpms`] lets the install engine keep its database (removed afterwards).
const SCRATCH_DB: &str = "/.osimage-unpack-rpmdb";

/// Unpack the payloads of `rpms` into `root` (created if needed) with the install engine:
/// digests verified, owners/modes/mtimes as packaged, no scriptlets, no dependency check, and
/// no rpmdb left behind.
pub fn unpack_rpms(root: &Path, rpms: &[PathBuf]) -> Result<(), BootError> {
    let opts = crate::install::InstallOptions {
        scriptlets: crate::install::ScriptletMode::Skip,
        dbpath: Some(SCRATCH_DB.into()),
        nodeps: true,
        jobs: 0,
        gpgkeys: None,
    };
    crate::install::install_packages(root, rpms, &opts).map_err(|e| BootError::Install {
        rpms: rpms
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        message: e.to_string(),
    })?;
    let db = root.join(SCRATCH_DB.trim_start_matches('/'));
    std::fs::remove_dir_all(&db).map_err(|e| BootError::io(&db, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family() {
        for n in [
            "kernel",
            "kernel-core",
            "kernel-modules",
            "kernel-modules-core",
            "kernel-modules-extra",
            "kernel-debug-core",
            "kernel-rt-debug-modules",
        ] {
            assert!(kernel_family(n), "{n}");
        }
        for n in [
            "kernel-devel",
            "kernel-headers",
            "kernel-tools",
            "kernelx",
            "kernel-doc",
            "kmod-e1000e",
        ] {
            assert!(!kernel_family(n), "{n}");
        }
    }

    #[test]
    fn kvers() {
        let f = |v: &[&str]| kvers_of_files(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            f(&[
                "/lib/modules/6.1.0-9-amd64/kernel/a.ko",
                "/boot/vmlinuz-6.1.0-9-amd64"
            ]),
            vec!["6.1.0-9-amd64"]
        );
        assert_eq!(
            f(&["/usr/lib/modules/5.14.0-70.el9.x86_64/vmlinuz"]).len(),
            1
        );
        assert!(f(&["/usr/share/doc/kernel"]).is_empty());
    }
}
