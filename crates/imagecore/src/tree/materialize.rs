//! Recreating a manifest's tree in a directory: copies of the blobs (never hardlinks into the
//! store), owners (when root), modes after owners, xattrs, devices and fifos, hardlinks,
//! symlinks, mtimes (directories last, deepest first). Files are written in parallel.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use filetime::FileTime;
use rayon::prelude::*;
use rustix::fs::{FileType, Gid, Mode, Uid};

use crate::store::Store;

use super::TreeError;
use super::manifest::{Entry, Kind, Manifest};
use super::statcache::{StatCache, StatEntry};

/// What a materialise did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MaterializeStats {
    /// Entries created.
    pub entries: usize,
    /// Regular-file inodes written.
    pub files: usize,
    /// Content bytes written.
    pub bytes: u64,
    /// Entries not created because we are not root (device nodes), by path.
    pub skipped: Vec<String>,
}

fn io(path: &Path, source: std::io::Error) -> TreeError {
    TreeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Recreate `m` under `dir` (created if missing; must be empty). Returns the stat cache of the
/// regular files written, for a later [`super::scan`] of the same directory.
pub fn materialize(store: &Store, m: &Manifest, dir: &Path) -> Result<StatCache, TreeError> {
    materialize_with_stats(store, m, dir).map(|(c, _)| c)
}

/// Check that every path is a plain relative path whose parent is a directory of the manifest,
/// so nothing is written through a symlink or outside `dir`.
fn validate(m: &Manifest, dir: &Path) -> Result<(), TreeError> {
    let dirs: HashSet<&str> = m
        .entries
        .iter()
        .filter(|e| e.is_dir())
        .map(|e| e.path.as_str())
        .collect();
    for e in &m.entries {
        let bad = |what: &str| TreeError::BadEntry {
            path: dir.join(&e.path),
            what: what.to_string(),
        };
        if e.path.is_empty()
            || e.path.starts_with('/')
            || e.path
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
            || e.path.contains('\0')
        {
            return Err(bad("path is not a plain relative path"));
        }
        if let Some((parent, _)) = e.path.rsplit_once('/')
            && !dirs.contains(parent)
        {
            return Err(bad("its parent is not a directory of the manifest"));
        }
    }
    Ok(())
}

/// [`materialize`], also returning what it did.
pub fn materialize_with_stats(
    store: &Store,
    m: &Manifest,
    dir: &Path,
) -> Result<(StatCache, MaterializeStats), TreeError> {
    let root = is_root();
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    if std::fs::read_dir(dir)
        .map_err(|e| io(dir, e))?
        .next()
        .is_some()
    {
        return Err(TreeError::NotEmpty(dir.to_path_buf()));
    }
    validate(m, dir)?;
    let abs = |e: &Entry| dir.join(&e.path);

    // 1. Directories, parents first, writable by us until their metadata is set at the end.
    let mut builder = std::fs::DirBuilder::new();
    builder.mode(0o700);
    for e in m.entries.iter().filter(|e| e.is_dir()) {
        let p = abs(e);
        builder.create(&p).map_err(|err| io(&p, err))?;
    }

    // 2. Everything else, in parallel; a hardlink group is written once, then linked.
    let mut groups: HashMap<u32, Vec<usize>> = HashMap::new();
    for (i, e) in m.entries.iter().enumerate() {
        if let Kind::File { link: Some(l), .. } = e.kind {
            groups.entry(l).or_default().push(i);
        }
    }
    let mut followers: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut is_follower: HashSet<usize> = HashSet::new();
    for members in groups.values() {
        followers.insert(members[0], members[1..].to_vec());
        is_follower.extend(members[1..].iter().copied());
    }
    let jobs: Vec<usize> = (0..m.entries.len())
        .filter(|i| !m.entries[*i].is_dir() && !is_follower.contains(i))
        .collect();
    let results: Vec<Result<Option<String>, TreeError>> = jobs
        .par_iter()
        .map(|&i| {
            let e = &m.entries[i];
            let p = abs(e);
            let created = create_entry(store, e, &p, root)?;
            for &j in followers.get(&i).map(|v| v.as_slice()).unwrap_or(&[]) {
                let q = abs(&m.entries[j]);
                std::fs::hard_link(&p, &q).map_err(|err| io(&q, err))?;
            }
            Ok(if created { None } else { Some(e.path.clone()) })
        })
        .collect();
    let mut stats = MaterializeStats::default();
    for r in results {
        if let Some(skipped) = r? {
            stats.skipped.push(skipped);
        }
    }
    if !stats.skipped.is_empty() {
        tracing::warn!(
            "not root: {} device node(s) not created under {} (first: {})",
            stats.skipped.len(),
            dir.display(),
            stats.skipped[0]
        );
    }

    // 3. Directory metadata, deepest first (children's changes never touch a parent's mtime
    //    after this point).
    let dirs: Vec<&Entry> = m.entries.iter().filter(|e| e.is_dir()).rev().collect();
    dirs.par_iter()
        .try_for_each(|e| set_path_meta(e, &abs(e), root, true))?;

    // 4. Stat what we wrote, after every link and chmod (they change ctime).
    let files: Vec<(String, StatEntry, u64)> = m
        .entries
        .par_iter()
        .filter_map(|e| match &e.kind {
            Kind::File { blob, size, .. } => Some((e, *blob, *size)),
            _ => None,
        })
        .map(|(e, blob, size)| {
            let p = abs(e);
            let md = std::fs::symlink_metadata(&p).map_err(|err| io(&p, err))?;
            Ok((e.path.clone(), StatEntry::new(&md, blob), size))
        })
        .collect::<Result<_, TreeError>>()?;
    let mut cache = StatCache::default();
    let mut inodes = HashSet::new();
    for (path, se, size) in files {
        if inodes.insert((se.dev, se.ino)) {
            stats.files += 1;
            stats.bytes += size;
        }
        cache.files.insert(path, se);
    }
    stats.entries = m.entries.len() - stats.skipped.len();
    Ok((cache, stats))
}

fn mtime(e: &Entry) -> FileTime {
    FileTime::from_unix_time(e.mtime, 0)
}

/// Set xattrs on a path (not following symlinks) or an open file.
fn set_xattrs(e: &Entry, p: &Path, file: Option<&File>, root: bool) -> Result<(), TreeError> {
    for (name, value) in &e.xattrs {
        let r = match file {
            Some(f) => xattr::FileExt::set_xattr(f, name, value),
            None => xattr::set(p, name, value),
        };
        if let Err(err) = r {
            let denied = matches!(
                err.raw_os_error(),
                Some(c) if c == rustix::io::Errno::PERM.raw_os_error()
                    || c == rustix::io::Errno::NOTSUP.raw_os_error()
            );
            if denied && !root {
                tracing::warn!(
                    "not root: cannot set xattr {name} on {}: {err}",
                    p.display()
                );
                continue;
            }
            return Err(TreeError::BadEntry {
                path: p.to_path_buf(),
                what: format!("cannot set extended attribute {name}: {err}"),
            });
        }
    }
    Ok(())
}

/// Owner, xattrs, mode and mtime of an existing non-regular entry, by path.
fn set_path_meta(e: &Entry, p: &Path, root: bool, is_dir: bool) -> Result<(), TreeError> {
    let symlink = matches!(e.kind, Kind::Symlink { .. });
    if root {
        std::os::unix::fs::lchown(p, Some(e.uid), Some(e.gid)).map_err(|err| io(p, err))?;
    }
    set_xattrs(e, p, None, root)?;
    if !symlink {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(e.mode & 0o7777))
            .map_err(|err| io(p, err))?;
    }
    let t = mtime(e);
    if is_dir {
        filetime::set_file_times(p, t, t).map_err(|err| io(p, err))
    } else {
        filetime::set_symlink_file_times(p, t, t).map_err(|err| io(p, err))
    }
}

/// Create one non-directory entry with its metadata. Returns false if skipped (device nodes
/// when not root).
fn create_entry(store: &Store, e: &Entry, p: &Path, root: bool) -> Result<bool, TreeError> {
    let node = |ft: FileType, dev: u64| -> Result<(), TreeError> {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            p,
            ft,
            Mode::from_raw_mode(e.mode & 0o777),
            dev,
        )
        .map_err(|err| io(p, err.into()))
    };
    match &e.kind {
        Kind::Dir => return Ok(true),
        Kind::File { blob, .. } => {
            let mut f = File::options()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(p)
                .map_err(|err| io(p, err))?;
            store
                .write_blob_into(blob, &mut f, p)
                .map_err(|err| TreeError::BadEntry {
                    path: p.to_path_buf(),
                    what: err.to_string(),
                })?;
            if root {
                rustix::fs::fchown(&f, Some(Uid::from_raw(e.uid)), Some(Gid::from_raw(e.gid)))
                    .map_err(|err| io(p, err.into()))?;
            }
            set_xattrs(e, p, Some(&f), root)?;
            rustix::fs::fchmod(&f, Mode::from_raw_mode(e.mode & 0o7777))
                .map_err(|err| io(p, err.into()))?;
            let t = mtime(e);
            filetime::set_file_handle_times(&f, Some(t), Some(t)).map_err(|err| io(p, err))?;
            return Ok(true);
        }
        Kind::Symlink { target } => {
            std::os::unix::fs::symlink(target, p).map_err(|err| io(p, err))?;
        }
        Kind::Fifo => node(FileType::Fifo, 0)?,
        Kind::Socket => node(FileType::Socket, 0)?,
        Kind::Char { major, minor } | Kind::Block { major, minor } => {
            if !root {
                return Ok(false);
            }
            let ft = if matches!(e.kind, Kind::Char { .. }) {
                FileType::CharacterDevice
            } else {
                FileType::BlockDevice
            };
            node(ft, rustix::fs::makedev(*major, *minor))?;
        }
    }
    set_path_meta(e, p, root, false)?;
    Ok(true)
}

/// At most this many entries are changed by [`patch`]; a larger difference is materialised.
const MAX_PATCH: usize = 512;

/// Turn the tree at `dir`, which holds exactly `from` (e.g. a step's work tree just scanned
/// into `from`), into `to` by changing only the entries that differ. Returns `Ok(false)` when
/// the difference is not a small one among non-directory entries (a directory added, removed
/// or changing kind, hardlinked files, more than [`MAX_PATCH`] entries): the tree may then be
/// partly changed and must be discarded.
pub(crate) fn patch(
    store: &Store,
    from: &Manifest,
    to: &Manifest,
    dir: &Path,
) -> Result<bool, TreeError> {
    validate(to, dir)?;
    let root = is_root();
    let simple = |e: &Entry| !e.is_dir() && !matches!(e.kind, Kind::File { link: Some(_), .. });
    let (mut remove, mut create, mut dirs) = (Vec::new(), Vec::new(), Vec::new());
    for y in &to.entries {
        match from.get(&y.path) {
            Some(x) if x == y => {}
            Some(x) if x.is_dir() && y.is_dir() => dirs.push(y),
            Some(x) if simple(x) && simple(y) => {
                remove.push(x);
                create.push(y);
            }
            None if simple(y) => create.push(y),
            _ => return Ok(false),
        }
    }
    for x in &from.entries {
        if to.get(&x.path).is_none() {
            if !simple(x) {
                return Ok(false);
            }
            remove.push(x);
        }
    }
    if remove.len() + create.len() + dirs.len() > MAX_PATCH {
        return Ok(false);
    }
    for x in &remove {
        let p = dir.join(&x.path);
        match std::fs::remove_file(&p) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(io(&p, err)),
            _ => {}
        }
    }
    for y in &create {
        create_entry(store, y, &dir.join(&y.path), root)?;
    }
    // parents of what changed get their metadata (mtime) back, deepest first
    let mut touched: Vec<&Entry> = dirs;
    for e in remove.iter().chain(&create) {
        if let Some((parent, _)) = e.path.rsplit_once('/')
            && let Some(d) = to.get(parent)
        {
            touched.push(d);
        }
    }
    touched.sort_by(|a, b| b.path.cmp(&a.path));
    touched.dedup_by(|a, b| a.path == b.path);
    for d in touched {
        set_path_meta(d, &dir.join(&d.path), root, true)?;
    }
    Ok(true)
}
