//! Manifest work of the `initrd-inputs` node: overlay the kerneldir kernel's modules and the
//! driver update RPMs onto the image tree, and cut out the small subset the initrd is made of.
//! Everything here moves manifest entries (blob ids), so no file content is copied.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::store::Store;
use crate::tree::{Entry, Kind, Manifest};

/// `path` with every symlink among its parent components resolved inside `m` (the last
/// component is kept as is), `.`/`..` folded: where the path really lives in the tree.
pub fn canonical(m: &Manifest, path: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut todo: VecDeque<String> = path
        .split('/')
        .filter(|c| !c.is_empty())
        .map(String::from)
        .collect();
    let mut hops = 0;
    while let Some(c) = todo.pop_front() {
        match c.as_str() {
            "." => continue,
            ".." => {
                parts.pop();
                continue;
            }
            _ => parts.push(c),
        }
        if todo.is_empty() {
            break;
        }
        if let Some(Entry {
            kind: Kind::Symlink { target },
            ..
        }) = m.get(&parts.join("/"))
        {
            hops += 1;
            if hops > 40 {
                break;
            }
            parts.pop();
            if target.starts_with('/') {
                parts.clear();
            }
            let mut new: VecDeque<String> = target
                .split('/')
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect();
            new.extend(todo);
            todo = new;
        }
    }
    parts.join("/")
}

/// The (canonical) module directories of `kver` in `m`: `lib/modules/<kver>` and, when it is
/// a different place, `usr/lib/modules/<kver>`.
fn module_dirs(m: &Manifest, kver: &str) -> Vec<String> {
    let mut v = vec![
        canonical(m, &format!("lib/modules/{kver}/x")),
        canonical(m, &format!("usr/lib/modules/{kver}/x")),
    ];
    for d in &mut v {
        d.truncate(d.len().saturating_sub(2));
    }
    v.dedup();
    v
}

/// Files of depmod's output that describe the old module set; removed when modules change, so
/// the closure does its own scan (modinfo `depends=`, `alias=`) as for a kernel without them.
const DEPMOD_FILES: [&str; 9] = [
    "modules.dep",
    "modules.dep.bin",
    "modules.alias",
    "modules.alias.bin",
    "modules.softdep",
    "modules.weakdep",
    "modules.symbols",
    "modules.symbols.bin",
    "modules.devname",
];

/// Replace the kernel `kver` of `tree` (its module directories) by the one in `kernel` (the
/// kerneldir kernel's unpacked packages): module trees and firmware files.
pub fn overlay_kernel(tree: &mut Manifest, kernel: &Manifest, kver: &str) {
    for d in module_dirs(tree, kver) {
        tree.remove_tree(&d);
    }
    let base = module_dirs(kernel, kver);
    for e in &kernel.entries {
        let inside = base.iter().any(|b| e.path.starts_with(&format!("{b}/")))
            || firmware_rel(&e.path).is_some();
        if inside && matches!(e.kind, Kind::File { .. } | Kind::Symlink { .. }) {
            let mut e = e.clone();
            e.path = canonical(tree, &e.path);
            tree.insert(e);
        }
    }
}

fn firmware_rel(path: &str) -> Option<&str> {
    path.strip_prefix("usr/lib/firmware/")
        .or_else(|| path.strip_prefix("lib/firmware/"))
}

/// Apply driver update RPMs (already unpacked, one directory each) to `tree` for kernel
/// `kver`: every module under `lib/modules/<kver>/` (any subdirectory: `extra/`, `updates/`,
/// `weak-updates/`, `kernel/…`; symlinks are followed inside the package) replaces the
/// same-named modules of the tree, firmware goes to `lib/firmware`, and depmod's output files
/// are dropped so the closure rescans. Returns the names of the modules placed.
pub fn overlay_drivers(
    store: &Store,
    tree: &mut Manifest,
    kver: &str,
    unpacked: &[(PathBuf, PathBuf)],
) -> Result<Vec<String>, Error> {
    let mut placed = Vec::new();
    for (rpm, dir) in unpacked {
        let mut files: BTreeMap<String, PathBuf> = BTreeMap::new();
        let mut kvers_found = Vec::new();
        for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
            let e = e.map_err(|e| Error::io(dir, std::io::Error::other(e)))?;
            if e.file_type().is_dir() {
                continue;
            }
            let Ok(rel) = e.path().strip_prefix(dir) else {
                continue;
            };
            let rel = rel.to_string_lossy().into_owned();
            if let Some((v, rest)) = crate::steps::util::modules_path(&rel) {
                if !kvers_found.iter().any(|k| k == v) {
                    kvers_found.push(v.to_string());
                }
                let fname = rest.rsplit('/').next().unwrap_or(rest);
                if v == kver && crate::boot::module_name(fname).is_some() {
                    files.insert(rel.clone(), e.path().to_path_buf());
                }
            } else if firmware_rel(&rel).is_some() {
                files.insert(rel.clone(), e.path().to_path_buf());
            }
        }
        let nmods = files.keys().filter(|r| firmware_rel(r).is_none()).count();
        if nmods == 0 {
            return Err(crate::boot::BootError::DriverRpm {
                path: rpm.clone(),
                version: kver.to_string(),
                found: if kvers_found.is_empty() {
                    "no kernel at all".into()
                } else {
                    kvers_found.join(", ")
                },
            }
            .into());
        }
        let dirs = module_dirs(tree, kver);
        for (rel, src) in files {
            // a symlink (weak-updates) must point inside the unpacked package
            let real = std::fs::canonicalize(&src).map_err(|e| Error::io(&src, e))?;
            let root = std::fs::canonicalize(dir).map_err(|e| Error::io(dir, e))?;
            if !real.starts_with(&root) || !real.is_file() {
                return Err(Error::Step {
                    node: "initrd-inputs".into(),
                    message: format!(
                        "{}: /{rel} points outside the package ({}); driver RPMs must carry their modules",
                        rpm.display(),
                        real.display()
                    ),
                });
            }
            let meta = std::fs::metadata(&real).map_err(|e| Error::io(&real, e))?;
            let (blob, size) = store.put_file(&real)?;
            let path = canonical(tree, &rel);
            let fname = rel.rsplit('/').next().unwrap_or(&rel);
            if firmware_rel(&rel).is_none()
                && let Some(name) = crate::boot::module_name(fname)
            {
                tree.entries.retain(|e| {
                    !(dirs.iter().any(|d| e.path.starts_with(&format!("{d}/")))
                        && matches!(e.kind, Kind::File { .. } | Kind::Symlink { .. })
                        && e.path
                            .rsplit('/')
                            .next()
                            .and_then(crate::boot::module_name)
                            .is_some_and(|n| n == name))
                });
                placed.push(name);
            }
            use std::os::unix::fs::MetadataExt;
            tree.insert(Entry {
                path,
                kind: Kind::File {
                    blob,
                    size,
                    link: None,
                },
                mode: meta.mode() & 0o7777,
                uid: 0,
                gid: 0,
                mtime: meta.mtime(),
                xattrs: BTreeMap::new(),
            });
        }
        for d in &dirs {
            for f in DEPMOD_FILES {
                tree.remove_tree(&format!("{d}/{f}"));
            }
        }
    }
    Ok(placed)
}

/// The subset of `tree` made of `paths` (root-relative, each a real path of the materialised
/// `root`, parents created as plain directories): the `initrd-inputs` output.
pub fn subset(tree: &Manifest, root: &Path, paths: &[PathBuf]) -> Result<Manifest, Error> {
    let mut rels: Vec<String> = paths
        .iter()
        .map(|p| {
            p.strip_prefix(root)
                .unwrap_or(p)
                .to_string_lossy()
                .trim_start_matches('/')
                .to_string()
        })
        .collect();
    rels.sort();
    rels.dedup();
    let mut out = Manifest::default();
    for r in rels {
        let e = tree.get(&r).ok_or_else(|| Error::Step {
            node: "initrd-inputs".into(),
            message: format!("internal: /{r} was materialised but is not in the tree"),
        })?;
        let mut e = e.clone();
        if e.is_dir() {
            continue;
        }
        // parents are plain directories whatever their metadata in the image: the initrd
        // makes its own; keeping them neutral keeps this output stable
        e.xattrs.clear();
        out.insert(e);
    }
    for e in &mut out.entries {
        if e.is_dir() {
            e.mtime = 0;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, kind: Kind) -> Entry {
        Entry {
            path: path.into(),
            kind,
            mode: 0o755,
            uid: 0,
            gid: 0,
            mtime: 1,
            xattrs: BTreeMap::new(),
        }
    }

    #[test]
    fn canonical_follows_links() {
        let mut m = Manifest::default();
        m.insert(entry(
            "lib",
            Kind::Symlink {
                target: "usr/lib".into(),
            },
        ));
        m.insert(entry(
            "usr/lib64",
            Kind::Symlink {
                target: "/usr/lib".into(),
            },
        ));
        m.insert(entry("usr/lib", Kind::Dir));
        assert_eq!(
            canonical(&m, "lib/modules/1/a.ko"),
            "usr/lib/modules/1/a.ko"
        );
        assert_eq!(canonical(&m, "usr/lib64/x"), "usr/lib/x");
        assert_eq!(canonical(&m, "lib"), "lib");
        assert_eq!(canonical(&m, "etc/../lib/x"), "usr/lib/x");
        assert_eq!(module_dirs(&m, "1"), vec!["usr/lib/modules/1".to_string()]);
    }

    fn file(path: &str) -> Entry {
        entry(
            path,
            Kind::File {
                blob: crate::hash::Hash::of(path.as_bytes()),
                size: 1,
                link: None,
            },
        )
    }

    fn usrmerged() -> Manifest {
        let mut m = Manifest::default();
        m.insert(entry("usr/lib", Kind::Dir));
        m.insert(entry(
            "lib",
            Kind::Symlink {
                target: "usr/lib".into(),
            },
        ));
        m.insert(file("usr/lib/modules/1/kernel/net/a.ko"));
        m.insert(file("usr/lib/modules/1/kernel/net/b.ko"));
        m.insert(file("usr/lib/modules/1/modules.dep"));
        m.insert(file("usr/lib/modules/1/modules.builtin"));
        m.insert(file("usr/lib/modules/2/kernel/net/a.ko"));
        m
    }

    #[test]
    fn drivers_replace_same_named_modules_of_this_kernel_only() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(&t.path().join("store")).unwrap();
        let pkg = t.path().join("pkg");
        std::fs::create_dir_all(pkg.join("lib/modules/1/extra")).unwrap();
        std::fs::create_dir_all(pkg.join("lib/firmware")).unwrap();
        std::fs::write(pkg.join("lib/modules/1/extra/a.ko.xz"), b"new a").unwrap();
        std::fs::write(pkg.join("lib/firmware/f.bin"), b"fw").unwrap();
        let mut m = usrmerged();
        let placed = overlay_drivers(
            &store,
            &mut m,
            "1",
            &[(PathBuf::from("d.rpm"), pkg.clone())],
        )
        .unwrap();
        assert_eq!(placed, vec!["a".to_string()]);
        let paths: Vec<&str> = m.entries.iter().map(|e| e.path.as_str()).collect();
        assert!(
            paths.contains(&"usr/lib/modules/1/extra/a.ko.xz"),
            "{paths:?}"
        );
        assert!(!paths.contains(&"usr/lib/modules/1/kernel/net/a.ko"));
        assert!(paths.contains(&"usr/lib/modules/1/kernel/net/b.ko"));
        assert!(paths.contains(&"usr/lib/modules/2/kernel/net/a.ko"));
        assert!(!paths.contains(&"usr/lib/modules/1/modules.dep"));
        assert!(paths.contains(&"usr/lib/modules/1/modules.builtin"));
        assert!(paths.contains(&"usr/lib/firmware/f.bin"));
        let Kind::File { blob, .. } = &m.get("usr/lib/modules/1/extra/a.ko.xz").unwrap().kind
        else {
            panic!()
        };
        assert_eq!(*blob, crate::hash::Hash::of(b"new a"));
        // a package for another kernel only: a clear error naming what it has
        let e = overlay_drivers(&store, &mut m, "3", &[(PathBuf::from("d.rpm"), pkg)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("d.rpm") && e.contains("kernel 3") && e.contains(": 1)"),
            "{e}"
        );
    }

    #[test]
    fn kernel_overlay_replaces_module_tree() {
        let mut m = usrmerged();
        let mut k = Manifest::default();
        k.insert(file("lib/modules/1/kernel/net/c.ko.xz"));
        k.insert(file("boot/vmlinuz-1"));
        overlay_kernel(&mut m, &k, "1");
        let paths: Vec<&str> = m.entries.iter().map(|e| e.path.as_str()).collect();
        assert!(
            paths.contains(&"usr/lib/modules/1/kernel/net/c.ko.xz"),
            "{paths:?}"
        );
        assert!(!paths.contains(&"usr/lib/modules/1/kernel/net/a.ko"));
        assert!(paths.contains(&"usr/lib/modules/2/kernel/net/a.ko"));
        assert!(!paths.iter().any(|p| p.starts_with("boot")));
        assert!(matches!(m.get("lib").unwrap().kind, Kind::Symlink { .. }));
    }
}
