//! Copy-on-write work trees: a step that runs programs on a tree (postinstall) can run them on
//! an overlayfs whose lower layer is a persistent, read-only checkout of its parent tree, instead
//! of materialising the whole tree again every time. Afterwards only the upper layer (what the
//! programs created, changed or deleted) is scanned and applied to the parent's manifest.
//!
//! - [`checkout`] materialises a manifest once under `<store>/checkouts/<manifest id>` (built in
//!   a temporary directory and renamed, so a killed build never leaves a partial checkout that
//!   looks complete). The newest [`KEEP_CHECKOUTS`] are kept; older ones are removed.
//!   Overlayfs never writes to a lower layer, so a checkout stays equal to its manifest.
//! - [`overlay_options`] builds the mount data (`redirect_dir=off,index=off,metacopy=off`: every
//!   change is a full copy-up or a whiteout in the upper directory, nothing is hidden in xattrs).
//! - [`apply_upper`] folds an upper directory into the base manifest: whiteouts (char 0:0, or
//!   the `trusted.overlay.whiteout` xattr) delete, opaque directories replace the lower
//!   subtree, everything else replaces the entry; `trusted.overlay.*` xattrs are dropped and
//!   hardlink groups renumbered.
//!
//! Known difference from a plain copy: a program that modifies one member of a hardlink group
//! *in place* breaks the link (overlayfs copies up that name only); tools that replace files
//! (`sed -i`, package managers) break such links on any filesystem.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::path::{Path, PathBuf};

use crate::store::Store;

use super::TreeError;
use super::manifest::{Entry, Kind, Manifest};

/// How many checkouts [`checkout`] keeps (most recently used first).
pub const KEEP_CHECKOUTS: usize = 2;

const OVERLAY_XATTR: &str = "trusted.overlay.";

fn io(path: &Path) -> impl Fn(std::io::Error) -> TreeError + '_ {
    move |source| TreeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The read-only checkout of `m` (materialised on first use), usable as an overlay lower layer.
pub fn checkout(store: &Store, m: &Manifest) -> Result<PathBuf, TreeError> {
    let base = store.dir().join("checkouts");
    std::fs::create_dir_all(&base).map_err(io(&base))?;
    let dir = base.join(m.id().to_hex());
    if dir.is_dir() {
        // most recently used: keeps it out of the eviction below
        let _ = filetime_now(&dir);
        return Ok(dir);
    }
    remove_stale_dirs(&base, "osimage-root-");
    let tmp = tempfile::Builder::new()
        .prefix(&format!("osimage-root-{}-", std::process::id()))
        .tempdir_in(&base)
        .map_err(io(&base))?;
    let root = tmp.path().join("root");
    super::materialize(store, m, &root)?;
    // the rename publishes the checkout whole
    let tmp_path = tmp.keep();
    std::fs::rename(&root, &dir).map_err(io(&dir))?;
    let _ = std::fs::remove_dir(&tmp_path);
    evict(&base, &dir);
    Ok(dir)
}

fn filetime_now(dir: &Path) -> std::io::Result<()> {
    let now = std::time::SystemTime::now();
    std::fs::File::open(dir)?.set_modified(now)
}

/// Remove all checkouts but the [`KEEP_CHECKOUTS`] most recently used (never `keep`).
fn evict(base: &Path, keep: &Path) {
    let Ok(rd) = std::fs::read_dir(base) else {
        return;
    };
    let mut dirs: Vec<(std::time::SystemTime, PathBuf)> = rd
        .flatten()
        .filter(|e| e.file_name().len() == 64)
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.0));
    for (_, d) in dirs.into_iter().skip(KEEP_CHECKOUTS) {
        if d != keep {
            tracing::debug!("removing old checkout {}", d.display());
            let _ = std::fs::remove_dir_all(&d);
        }
    }
}

/// Remove `<prefix><pid>-*` directories in `base` whose process is gone (a killed build leaves
/// its work tree behind; on tmpfs that is memory).
pub(crate) fn remove_stale_dirs(base: &Path, prefix: &str) {
    let Ok(rd) = std::fs::read_dir(base) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(prefix)
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        let gone = rustix::process::Pid::from_raw(pid).is_none_or(|p| {
            matches!(
                rustix::process::test_kill_process(p),
                Err(rustix::io::Errno::SRCH)
            )
        });
        if gone {
            tracing::debug!("removing stale work tree {}", e.path().display());
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Overlay mount data for `lower`/`upper`/`work`, or `None` when a path cannot be expressed in
/// it (overlayfs splits options on `,` and lower layers on `:`).
pub fn overlay_options(lower: &Path, upper: &Path, work: &Path) -> Option<CString> {
    let mut s = String::new();
    for (k, p) in [("lowerdir", lower), ("upperdir", upper), ("workdir", work)] {
        let p = p.to_str()?;
        if p.contains([',', ':', '\\']) {
            return None;
        }
        s.push_str(&format!("{k}={p},"));
    }
    s.push_str("redirect_dir=off,index=off,metacopy=off");
    CString::new(s).ok()
}

fn is_whiteout(e: &Entry) -> bool {
    matches!(e.kind, Kind::Char { major: 0, minor: 0 })
        || e.xattrs.contains_key("trusted.overlay.whiteout")
}

fn is_opaque(e: &Entry) -> bool {
    e.is_dir()
        && e.xattrs
            .get("trusted.overlay.opaque")
            .is_some_and(|v| v.as_slice() == b"y")
}

/// `base` with the overlay upper directory `upper` (already scanned into the store as
/// `upper_m`) applied: the tree a program saw through the overlay, as a manifest.
pub fn apply_upper(base: &Manifest, upper_m: &Manifest) -> Manifest {
    let mut m = base.clone();
    // upper hardlink groups are numbered on their own: move them past the base's
    let offset = base
        .entries
        .iter()
        .filter_map(|e| match e.kind {
            Kind::File { link: Some(n), .. } => Some(n + 1),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    for e in &upper_m.entries {
        if is_whiteout(e) {
            m.remove_tree(&e.path);
            continue;
        }
        let mut e = e.clone();
        e.xattrs.retain(|k, _| !k.starts_with(OVERLAY_XATTR));
        if let Kind::File { link: Some(n), .. } = &mut e.kind {
            *n += offset;
        }
        let replaces_subtree = match m.get(&e.path) {
            Some(old) => !(old.is_dir() && e.is_dir()) || is_opaque_path(upper_m, &e.path),
            None => false,
        };
        if replaces_subtree {
            m.remove_tree(&e.path);
        }
        m.insert(e);
    }
    renumber_links(&mut m);
    m
}

fn is_opaque_path(upper_m: &Manifest, path: &str) -> bool {
    upper_m.get(path).is_some_and(is_opaque)
}

/// Renumber hardlink groups in path order (first path of a group gets the lowest number) and
/// drop groups left with a single member.
fn renumber_links(m: &mut Manifest) {
    let mut count: BTreeMap<u32, usize> = BTreeMap::new();
    for e in &m.entries {
        if let Kind::File { link: Some(n), .. } = e.kind {
            *count.entry(n).or_default() += 1;
        }
    }
    let mut new: BTreeMap<u32, u32> = BTreeMap::new();
    for e in &mut m.entries {
        if let Kind::File { link, .. } = &mut e.kind
            && let Some(n) = *link
        {
            if count.get(&n).copied().unwrap_or(0) < 2 {
                *link = None;
            } else {
                let next = new.len() as u32;
                *link = Some(*new.entry(n).or_insert(next));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::Hash;

    fn ent(path: &str, kind: Kind) -> Entry {
        Entry {
            path: path.into(),
            kind,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 1,
            xattrs: BTreeMap::new(),
        }
    }

    fn file(path: &str, c: &[u8], link: Option<u32>) -> Entry {
        ent(
            path,
            Kind::File {
                blob: Hash::of(c),
                size: c.len() as u64,
                link,
            },
        )
    }

    fn manifest(entries: Vec<Entry>) -> Manifest {
        let mut m = Manifest { entries };
        m.sort();
        m
    }

    #[test]
    fn whiteouts_opaque_dirs_and_replacements() {
        let base = manifest(vec![
            ent("etc", Kind::Dir),
            file("etc/a", b"a", None),
            file("etc/gone", b"g", None),
            ent("opt", Kind::Dir),
            file("opt/x", b"x", None),
            ent("opt/sub", Kind::Dir),
            file("opt/sub/y", b"y", None),
            file("usr-file", b"f", None),
            file("h1", b"h", Some(0)),
            file("h2", b"h", Some(0)),
        ]);
        let mut opaque = ent("opt", Kind::Dir);
        opaque
            .xattrs
            .insert("trusted.overlay.opaque".into(), b"y".to_vec());
        let mut etc = ent("etc", Kind::Dir);
        etc.mtime = 9;
        etc.xattrs
            .insert("trusted.overlay.origin".into(), b"zz".to_vec());
        let upper = manifest(vec![
            etc,
            file("etc/a", b"A", None),
            ent("etc/gone", Kind::Char { major: 0, minor: 0 }),
            file("etc/new", b"n", None),
            opaque,
            file("opt/z", b"z", None),
            ent("usr-file", Kind::Dir),
            file("usr-file/inner", b"i", None),
            file("h1", b"H", None),
        ]);
        let m = apply_upper(&base, &upper);
        let paths: Vec<&str> = m.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "etc",
                "etc/a",
                "etc/new",
                "h1",
                "h2",
                "opt",
                "opt/z",
                "usr-file",
                "usr-file/inner"
            ]
        );
        let etc = m.get("etc").unwrap();
        assert_eq!(etc.mtime, 9);
        assert!(etc.xattrs.is_empty(), "overlay xattrs dropped");
        assert!(m.get("opt").unwrap().xattrs.is_empty());
        assert_eq!(m.get("etc/a").unwrap().kind, file("", b"A", None).kind);
        // h1 was copied up alone: h2 is no longer in a group
        assert_eq!(m.get("h2").unwrap().kind, file("", b"h", None).kind);
    }

    #[test]
    fn options_refuse_separators() {
        let p = Path::new;
        assert!(overlay_options(p("/a,b"), p("/u"), p("/w")).is_none());
        assert!(overlay_options(p("/a:b"), p("/u"), p("/w")).is_none());
        let o = overlay_options(p("/l"), p("/u"), p("/w")).unwrap();
        assert_eq!(
            o.to_str().unwrap(),
            "lowerdir=/l,upperdir=/u,workdir=/w,redirect_dir=off,index=off,metacopy=off"
        );
    }
}
