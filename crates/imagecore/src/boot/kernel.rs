//! Kernel selection in an image root (xCAT `genimage` `-k kernelver` / `-g krpmver`).
//!
//! xCAT takes the *last* `boot/vmlinuz-*` in lexical glob order, so `5.14.0-70` wins over
//! `5.14.0-162`. We take the highest by rpm's version comparison (`rpmvercmp` on the whole
//! `uname -r` string), which orders numeric segments numerically.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::BootError;

/// The kernel picked for an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelChoice {
    /// The `uname -r` string, e.g. `5.14.0-427.el9.x86_64`.
    pub version: String,
    /// The kernel image (absolute path inside the root).
    pub vmlinuz: PathBuf,
    /// `<root>/lib/modules/<version>` (absolute; may not exist for a kernel without modules).
    pub modules_dir: PathBuf,
}

/// Compare two `uname -r` strings with rpm's version comparison.
pub(crate) fn kver_cmp(a: &str, b: &str) -> Ordering {
    rpm_version::rpm_evr_compare(a, b).then_with(|| a.cmp(b))
}

/// Every kernel version present in `root`, sorted ascending by rpm version order: the
/// `boot/vmlinuz-*` suffixes and the `lib/modules/*` directories (also under `usr/lib/modules`).
pub fn list_kernels(root: &Path) -> Result<Vec<String>, BootError> {
    let mut found = BTreeSet::new();
    let boot = root.join("boot");
    for name in read_names(&boot)? {
        for prefix in ["vmlinuz-", "vmlinux-", "image-"] {
            if let Some(v) = name.strip_prefix(prefix)
                && !v.is_empty()
                && !v.starts_with("rescue")
                && !v.ends_with(".hmac")
            {
                found.insert(v.to_string());
            }
        }
    }
    for dir in modules_roots(root) {
        for name in read_names(&dir)? {
            if dir.join(&name).join("vmlinuz").is_file() || dir.join(&name).join("kernel").is_dir()
            {
                found.insert(name);
            }
        }
    }
    let mut v: Vec<String> = found.into_iter().collect();
    v.sort_by(|a, b| kver_cmp(a, b));
    Ok(v)
}

/// Pick the kernel of `root`.
///
/// - `kernelver` (`-k`): exactly this `uname -r`; an error listing the kernels present otherwise.
/// - `krpmver` (`-g`, the kernel package's version-release, e.g. `5.14.0-70.el9`): the highest
///   kernel whose `uname -r` is `krpmver` or starts with `krpmver.` (the arch suffix); ignored
///   when `kernelver` is given.
/// - neither: the highest kernel by rpm version order.
pub fn select_kernel(
    root: &Path,
    kernelver: Option<&str>,
    krpmver: Option<&str>,
) -> Result<KernelChoice, BootError> {
    let all = list_kernels(root)?;
    let available = || {
        if all.is_empty() {
            "none".to_string()
        } else {
            all.join(", ")
        }
    };
    let version = match (kernelver, krpmver) {
        (Some(k), _) => {
            if !all.iter().any(|v| v == k) {
                return Err(BootError::KernelNotFound {
                    root: root.to_path_buf(),
                    wanted: format!("kernelver {k}"),
                    available: available(),
                });
            }
            k.to_string()
        }
        (None, Some(g)) => all
            .iter()
            .rev()
            .find(|v| *v == g || v.strip_prefix(g).is_some_and(|rest| rest.starts_with('.')))
            .cloned()
            .ok_or_else(|| BootError::KernelNotFound {
                root: root.to_path_buf(),
                wanted: format!("krpmver {g}"),
                available: available(),
            })?,
        (None, None) => all.last().cloned().ok_or_else(|| BootError::NoKernel {
            root: root.to_path_buf(),
        })?,
    };
    let modules_dir = modules_roots(root)
        .into_iter()
        .map(|d| d.join(&version))
        .find(|d| d.is_dir())
        .unwrap_or_else(|| root.join("lib/modules").join(&version));
    let candidates = [
        root.join("boot").join(format!("vmlinux-{version}")),
        root.join("boot").join(format!("vmlinuz-{version}")),
        root.join("boot").join(format!("image-{version}")),
        modules_dir.join("vmlinuz"),
    ];
    let vmlinuz = candidates
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| BootError::NoKernelImage {
            root: root.to_path_buf(),
            version: version.clone(),
        })?;
    Ok(KernelChoice {
        version,
        vmlinuz,
        modules_dir,
    })
}

/// `lib/modules` and, when it is a different directory (no usrmerge), `usr/lib/modules`.
fn modules_roots(root: &Path) -> Vec<PathBuf> {
    let a = root.join("lib/modules");
    let b = root.join("usr/lib/modules");
    let same = match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    };
    if same { vec![a] } else { vec![a, b] }
}

/// Names in a directory; an absent directory gives none.
fn read_names(dir: &Path) -> Result<Vec<String>, BootError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(BootError::io(dir, e)),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(|e| BootError::io(dir, e))?;
        if let Some(n) = e.file_name().to_str() {
            out.push(n.to_string());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_root(kernels: &[&str]) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("boot")).unwrap();
        for k in kernels {
            std::fs::write(t.path().join(format!("boot/vmlinuz-{k}")), b"kernel").unwrap();
            std::fs::create_dir_all(t.path().join(format!("lib/modules/{k}/kernel"))).unwrap();
        }
        t
    }

    #[test]
    fn evr_order_not_lexical() {
        let t = fake_root(&[
            "5.14.0-70.el9.x86_64",
            "5.14.0-162.el9.x86_64",
            "5.14.0-9.el9.x86_64",
        ]);
        let k = select_kernel(t.path(), None, None).unwrap();
        assert_eq!(k.version, "5.14.0-162.el9.x86_64");
        assert_eq!(
            k.vmlinuz,
            t.path().join("boot/vmlinuz-5.14.0-162.el9.x86_64")
        );
        assert_eq!(
            k.modules_dir,
            t.path().join("lib/modules/5.14.0-162.el9.x86_64")
        );
        // the lexical "last", which xCAT would take, is the 9 one
        let mut lex = list_kernels(t.path()).unwrap();
        lex.sort();
        assert_eq!(lex.last().unwrap(), "5.14.0-9.el9.x86_64");
    }

    #[test]
    fn kernelver_exact_and_missing() {
        let t = fake_root(&["5.14.0-70.el9.x86_64", "5.14.0-162.el9.x86_64"]);
        let k = select_kernel(t.path(), Some("5.14.0-70.el9.x86_64"), None).unwrap();
        assert_eq!(k.version, "5.14.0-70.el9.x86_64");
        let e = select_kernel(t.path(), Some("5.14.0-71.el9.x86_64"), None).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("kernelver 5.14.0-71.el9.x86_64"), "{msg}");
        assert!(
            msg.contains("5.14.0-162.el9.x86_64, 5.14.0-70.el9.x86_64")
                || msg.contains("5.14.0-70.el9.x86_64, 5.14.0-162.el9.x86_64"),
            "{msg}"
        );
    }

    #[test]
    fn krpmver_prefix() {
        let t = fake_root(&[
            "5.14.0-70.el9.x86_64",
            "5.14.0-70.el9.x86_64+debug",
            "5.14.0-162.el9.x86_64",
        ]);
        let k = select_kernel(t.path(), None, Some("5.14.0-70.el9")).unwrap();
        assert_eq!(k.version, "5.14.0-70.el9.x86_64+debug");
        // -k wins over -g
        let k = select_kernel(
            t.path(),
            Some("5.14.0-162.el9.x86_64"),
            Some("5.14.0-70.el9"),
        )
        .unwrap();
        assert_eq!(k.version, "5.14.0-162.el9.x86_64");
        // a prefix that is not followed by '.' does not match
        assert!(select_kernel(t.path(), None, Some("5.14.0-7")).is_err());
    }

    #[test]
    fn modules_dir_vmlinuz_only_and_none() {
        let t = tempfile::tempdir().unwrap();
        assert!(matches!(
            select_kernel(t.path(), None, None),
            Err(BootError::NoKernel { .. })
        ));
        std::fs::create_dir_all(t.path().join("usr/lib/modules/6.1.0-56-amd64")).unwrap();
        std::fs::write(
            t.path().join("usr/lib/modules/6.1.0-56-amd64/vmlinuz"),
            b"k",
        )
        .unwrap();
        let k = select_kernel(t.path(), None, None).unwrap();
        assert_eq!(k.version, "6.1.0-56-amd64");
        assert_eq!(
            k.vmlinuz,
            t.path().join("usr/lib/modules/6.1.0-56-amd64/vmlinuz")
        );
    }
}
