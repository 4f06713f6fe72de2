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
use std::os::unix::ffi::OsStringExt;
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
///
/// When tmpfs (`/dev/shm`) has room for [`TMPFS_FACTOR`] times the tree's content, the checkout
/// is materialised there and `checkouts/<id>` is a symlink to it: creating thousands of files
/// on a disk filesystem costs far more (on ext4 without a journal, every new inode is checked
/// against recently deleted ones, which a rebuild has many of). Such a checkout holds memory
/// until it is evicted (only the newest [`KEEP_CHECKOUTS`] are kept) or its store is removed
/// (orphans are found by their `.owner` file and removed by the next checkout).
pub fn checkout(store: &Store, m: &Manifest) -> Result<PathBuf, TreeError> {
    let base = store.dir().join("checkouts");
    std::fs::create_dir_all(&base).map_err(io(&base))?;
    let dir = base.join(m.id().to_hex());
    if dir.is_dir() {
        // in use now: no longer to be changed into another checkout
        DONATED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(_, l)| *l != dir);
        // most recently used: keeps it out of the eviction below
        let _ = filetime_now(&dir);
        return Ok(real_dir(&dir));
    }
    drop_checkout(&dir); // a dangling link (tmpfs cleared by a reboot)
    if let Some(d) = derive(store, m, &base, &dir)? {
        return Ok(d);
    }
    remove_stale_dirs(&base, "osimage-root-");
    let shm = Path::new(SHM);
    let on_tmpfs = rustix::fs::statvfs(shm)
        .map(|s| s.f_bavail.saturating_mul(s.f_frsize))
        .is_ok_and(|room| room > m.content_size().saturating_mul(TMPFS_FACTOR));
    let parent = if on_tmpfs {
        remove_stale_dirs(shm, "osimage-root-");
        remove_orphans(shm);
        shm
    } else {
        base.as_path()
    };
    let tmp = tempfile::Builder::new()
        .prefix(&format!("osimage-root-{}-", std::process::id()))
        .tempdir_in(parent)
        .map_err(io(parent))?;
    let root = tmp.path().join("root");
    super::materialize(store, m, &root)?;
    // the rename publishes the checkout whole
    let tmp_path = tmp.keep();
    let res = if on_tmpfs {
        link_tmpfs(&root, &dir, &m.id()).map(|_| ())
    } else {
        std::fs::rename(&root, &dir).map_err(io(&dir))
    };
    let _ = std::fs::remove_dir_all(&tmp_path);
    res?;
    evict(&base, &dir);
    Ok(real_dir(&dir))
}

/// Move the tree `root` (on tmpfs) to its tmpfs checkout directory for manifest `id` and link
/// `dir` (`checkouts/<id>`) to it. Returns the tmpfs directory.
fn link_tmpfs(root: &Path, dir: &Path, id: &crate::hash::Hash) -> Result<PathBuf, TreeError> {
    let abs = std::path::absolute(dir).map_err(io(dir))?;
    let real = Path::new(SHM).join(format!(
        "osimage-checkout-{}-{}",
        crate::hash::Hash::of(abs.as_os_str().as_encoded_bytes()).short(),
        id.to_hex()
    ));
    // owner first, link second (dangling until the rename): an orphan scan never sees the
    // directory without both
    let owner = owner_file(&real);
    std::fs::write(&owner, abs.as_os_str().as_encoded_bytes()).map_err(io(&owner))?;
    super::trash::discard(&real);
    std::os::unix::fs::symlink(&real, dir).map_err(io(dir))?;
    std::fs::rename(root, &real).map_err(io(&real))?;
    Ok(real)
}

/// Checkouts donated by this process ([`donate`]) and not used since: (manifest id, link).
static DONATED: std::sync::Mutex<Vec<(crate::hash::Hash, PathBuf)>> =
    std::sync::Mutex::new(Vec::new());

/// Offer `tree`, a directory holding exactly the manifest `id` (a step's work tree that was
/// just scanned into it), as the checkout of `id`: it is moved (not copied) into the store's
/// checkouts, and until it is used as is, [`checkout`] may turn it into the checkout of a
/// manifest that differs from it in a few files (e.g. a child step's), changing only those.
/// Only as root (the tree's owners must be the manifest's) and when `tree` is on tmpfs.
/// Returns false when `tree` was left in place (the caller removes it).
pub fn donate(store: &Store, id: &crate::hash::Hash, tree: &Path) -> bool {
    if !rustix::process::geteuid().is_root() || !tree.starts_with(SHM) {
        return false;
    }
    let base = store.dir().join("checkouts");
    let dir = base.join(id.to_hex());
    if std::fs::create_dir_all(&base).is_err() || std::fs::symlink_metadata(&dir).is_ok() {
        return false;
    }
    remove_orphans(Path::new(SHM));
    match link_tmpfs(tree, &dir, id) {
        Ok(_) => {
            DONATED
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((*id, dir.clone()));
            evict(&base, &dir);
            true
        }
        Err(e) => {
            tracing::debug!("work tree not donated as a checkout: {e}");
            let _ = std::fs::remove_file(&dir);
            false
        }
    }
}

/// The checkout of `m` made from a donated one by changing the few entries that differ, if
/// there is such a donation.
fn derive(
    store: &Store,
    m: &Manifest,
    base: &Path,
    dir: &Path,
) -> Result<Option<PathBuf>, TreeError> {
    let donated = {
        let mut d = DONATED.lock().unwrap_or_else(|e| e.into_inner());
        d.retain(|(_, link)| link.is_dir());
        d.pop()
    };
    let Some((from_id, link)) = donated else {
        return Ok(None);
    };
    let from = store.get_manifest(&from_id)?;
    let real = real_dir(&link);
    if !super::materialize::patch(store, &from, m, &real)? {
        // partly changed, perhaps: no longer the checkout of `from_id`
        drop_checkout(&link);
        return Ok(None);
    }
    // the new owner and link first, the old ones only once the directory has its new name: an
    // orphan scan (another node's or another build's) must never see it without an owner
    let new = link_tmpfs(&real, dir, &m.id())?;
    let _ = std::fs::remove_file(&link);
    let _ = std::fs::remove_file(owner_file(&real));
    evict(base, dir);
    Ok(Some(new))
}

/// Where tmpfs checkouts live.
const SHM: &str = "/dev/shm";
/// A checkout goes to tmpfs only when tmpfs has this many times its content free.
pub const TMPFS_FACTOR: u64 = 8;

/// The directory a checkout path stands for (the tmpfs directory when it is a link).
fn real_dir(dir: &Path) -> PathBuf {
    match std::fs::read_link(dir) {
        Ok(t) => t,
        Err(_) => dir.to_path_buf(),
    }
}

fn owner_file(real: &Path) -> PathBuf {
    let mut s = real.as_os_str().to_owned();
    s.push(".owner");
    PathBuf::from(s)
}

/// Remove a checkout: a directory, or a link and the tmpfs directory it points to (removed
/// before this returns; the build itself uses [`drop_checkout`]).
pub fn remove_checkout(dir: &Path) -> bool {
    remove_checkout_with(dir, super::trash::remove_now)
}

/// [`remove_checkout`] with the tree renamed away now and removed in the background.
fn drop_checkout(dir: &Path) -> bool {
    remove_checkout_with(dir, super::trash::discard)
}

fn remove_checkout_with(dir: &Path, remove: fn(&Path)) -> bool {
    match std::fs::symlink_metadata(dir) {
        Ok(md) if md.file_type().is_symlink() => {
            if let Ok(t) = std::fs::read_link(dir) {
                remove(&t);
                let _ = std::fs::remove_file(owner_file(&t));
            }
            std::fs::remove_file(dir).is_ok()
        }
        Ok(_) => {
            remove(dir);
            true
        }
        Err(_) => false,
    }
}

/// Remove the trash of finished processes beside the checkouts in `checkouts` and in tmpfs
/// (what their background removal did not finish), before returning.
pub fn remove_trash(checkouts: &Path) {
    super::trash::remove_stale_now(checkouts);
    super::trash::remove_stale_now(Path::new(SHM));
}

/// Remove tmpfs checkouts whose owning link (recorded in their `.owner` file) no longer points
/// at them (their store was removed or evicted them without us): renamed away now, removed in
/// the background ([`super::trash`]), with the trash of earlier processes.
pub(crate) fn remove_orphans(shm: &Path) {
    super::trash::discard_stale(shm);
    let Ok(rd) = std::fs::read_dir(shm) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with("osimage-checkout-") || name.ends_with(".owner") {
            continue;
        }
        let real = e.path();
        let owner = owner_file(&real);
        let owned = std::fs::read(&owner)
            .ok()
            .map(|b| PathBuf::from(std::ffi::OsString::from_vec(b)))
            .and_then(|link| std::fs::read_link(link).ok())
            .is_some_and(|t| t == real);
        if !owned {
            tracing::debug!("removing orphaned checkout {}", real.display());
            super::trash::discard(&real);
            let _ = std::fs::remove_file(&owner);
        }
    }
}

fn filetime_now(dir: &Path) -> std::io::Result<()> {
    let now = std::time::SystemTime::now();
    std::fs::File::open(dir)?.set_modified(now)
}

/// Remove all checkouts but the [`KEEP_CHECKOUTS`] most recently used (never `keep`).
fn evict(base: &Path, keep: &Path) {
    super::trash::discard_stale(base);
    let Ok(rd) = std::fs::read_dir(base) else {
        return;
    };
    let mut dirs: Vec<(std::time::SystemTime, PathBuf)> = rd
        .flatten()
        .filter(|e| e.file_name().len() == 64)
        .filter_map(|e| Some((std::fs::metadata(e.path()).ok()?.modified().ok()?, e.path())))
        .collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.0));
    for (_, d) in dirs.into_iter().skip(KEEP_CHECKOUTS) {
        if d != keep {
            tracing::debug!("removing old checkout {}", d.display());
            drop_checkout(&d);
        }
    }
}

/// Remove `<prefix><pid>-*` directories in `base` whose process is gone (a killed build leaves
/// its work tree behind; on tmpfs that is memory).
pub(crate) fn remove_stale_dirs(base: &Path, prefix: &str) {
    super::trash::discard_stale(base);
    for p in super::trash::stale_entries(base, prefix) {
        tracing::debug!("removing stale work tree {}", p.display());
        super::trash::discard(&p);
    }
}

/// Overlay mount data for `lower`/`upper`/`work`, or `None` when a path cannot be expressed in
/// it (overlayfs splits options on `,` and lower layers on `:`).
///
/// With `volatile` (Linux 5.10+), the overlay never syncs its upper filesystem: otherwise its
/// unmount (when the script's mount namespace goes away) waits for every dirty page of the
/// filesystem holding the upper directory, not just ours. The upper directory is scratch, read
/// back right after the script, so it needs no durability; [`clear_volatile`] must run before
/// the same work directory is mounted again.
pub fn overlay_options(lower: &Path, upper: &Path, work: &Path, volatile: bool) -> Option<CString> {
    let mut s = String::new();
    for (k, p) in [("lowerdir", lower), ("upperdir", upper), ("workdir", work)] {
        let p = p.to_str()?;
        if p.contains([',', ':', '\\']) {
            return None;
        }
        s.push_str(&format!("{k}={p},"));
    }
    s.push_str("redirect_dir=off,index=off,metacopy=off");
    if volatile {
        s.push_str(",volatile");
    }
    CString::new(s).ok()
}

/// Let the work directory `work` of an unmounted volatile overlay be mounted again: overlayfs
/// refuses a work directory holding the marker of an earlier volatile mount (it cannot tell a
/// crash from a clean unmount); here the mount ended with the process that made it.
pub fn clear_volatile(work: &Path) {
    let _ = std::fs::remove_dir_all(work.join("work").join("incompat"));
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
        assert!(overlay_options(p("/a,b"), p("/u"), p("/w"), false).is_none());
        assert!(overlay_options(p("/a:b"), p("/u"), p("/w"), true).is_none());
        let o = overlay_options(p("/l"), p("/u"), p("/w"), false).unwrap();
        assert_eq!(
            o.to_str().unwrap(),
            "lowerdir=/l,upperdir=/u,workdir=/w,redirect_dir=off,index=off,metacopy=off"
        );
        let o = overlay_options(p("/l"), p("/u"), p("/w"), true).unwrap();
        assert!(o.to_str().unwrap().ends_with(",metacopy=off,volatile"));
    }

    #[test]
    fn a_donated_work_tree_becomes_a_nearby_checkout() {
        if !rustix::process::geteuid().is_root() || !Path::new(SHM).is_dir() {
            eprintln!("SKIPPED: needs root and {SHM}");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path()).unwrap();
        let work = tempfile::Builder::new()
            .prefix("osimage-test-donate-")
            .tempdir_in(SHM)
            .unwrap();
        let tree = work.path().join("rootimg");
        std::fs::create_dir_all(tree.join("etc")).unwrap();
        std::fs::create_dir_all(tree.join("usr/lib")).unwrap();
        std::fs::write(tree.join("etc/keep"), b"keep").unwrap();
        std::fs::write(tree.join("etc/fstab"), b"old").unwrap();
        std::fs::write(tree.join("usr/lib/gone"), b"gone").unwrap();
        std::os::unix::fs::symlink("lib", tree.join("usr/lib64")).unwrap();
        let from = crate::tree::scan(&store, &tree, None).unwrap();
        let from_id = store.put_manifest(&from).unwrap();
        assert!(donate(&store, &from_id, &tree));
        assert!(!tree.exists(), "moved, not copied");
        // the child tree: one file changed, one added, one removed, a directory's mode changed
        let mut to = from.clone();
        let mut fstab = to.get("etc/fstab").unwrap().clone();
        fstab.kind = Kind::File {
            blob: store.put_bytes(b"new fstab").unwrap(),
            size: 9,
            link: None,
        };
        fstab.mtime = 7;
        to.insert(fstab.clone());
        let mut added = fstab.clone();
        added.path = "etc/resolv.conf".into();
        to.insert(added);
        to.remove_tree("usr/lib/gone");
        let mut etc = to.get("etc").unwrap().clone();
        etc.mode = 0o700;
        to.insert(etc);
        // other nodes and builds scan for orphans at any time: the donated directory must
        // never look ownerless while it is renamed to the child's checkout
        let stop = std::sync::atomic::AtomicBool::new(false);
        let co = std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    remove_orphans(Path::new(SHM));
                }
            });
            let co = checkout(&store, &to);
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            co
        })
        .unwrap();
        assert!(co.starts_with(SHM), "{}", co.display());
        let again = crate::tree::scan(&store, &co, None).unwrap();
        assert_eq!(
            again, to,
            "the patched checkout holds exactly the child manifest"
        );
        // the donation was used up: the parent's checkout is materialised afresh
        let co2 = checkout(&store, &from).unwrap();
        assert_ne!(co, co2);
        assert_eq!(crate::tree::scan(&store, &co2, None).unwrap(), from);
        // removing the store's links leaves orphans that the next donation removes
        assert!(remove_checkout(
            &store.dir().join("checkouts").join(from.id().to_hex())
        ));
        assert!(!co2.exists());
        std::fs::remove_file(store.dir().join("checkouts").join(to.id().to_hex())).unwrap();
        assert!(co.exists());
        remove_orphans(Path::new(SHM));
        assert!(!co.exists(), "orphaned tmpfs checkout removed");
    }
}
