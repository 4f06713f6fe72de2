//! Small helpers shared by the steps: getting a parent's tree, publishing a tree, materialising
//! into a user-visible directory, atomic file export.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::graph::step::{Output, StepCtx};
use crate::hash::Hash;
use crate::store::Store;
use crate::tree::Manifest;

/// The manifest of the first parent that has a tree.
pub fn parent_tree(ctx: &StepCtx<'_>, parents: &[&Output]) -> Result<Manifest, Error> {
    let id = parents
        .iter()
        .find_map(|p| p.tree)
        .ok_or_else(|| Error::Step {
            node: ctx.node.to_string(),
            message: "internal: no parent tree".into(),
        })?;
    Ok(ctx.store.get_manifest(&id)?)
}

/// An output holding just a tree.
pub fn tree_output(store: &Store, m: &Manifest) -> Result<Output, Error> {
    Ok(Output {
        tree: Some(store.put_manifest(m)?),
        ..Output::default()
    })
}

/// Replace `dir` with a fresh materialisation of the tree `id` (materialised beside it, then
/// swapped in, so `dir` is never half-written).
pub fn replace_dir_with_tree(store: &Store, id: &Hash, dir: &Path) -> Result<(), Error> {
    let m = store.get_manifest(id)?;
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let stage = tempfile::Builder::new()
        .prefix(".rootimg-new-")
        .tempdir_in(parent)
        .map_err(|e| Error::io(parent, e))?;
    crate::tree::materialize(store, &m, stage.path())?;
    let old = parent.join(".rootimg-old");
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
    }
    if dir.exists() {
        std::fs::rename(dir, &old).map_err(|e| Error::io(dir, e))?;
    }
    let staged = stage.keep();
    std::fs::rename(&staged, dir).map_err(|e| Error::io(dir, e))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
    }
    Ok(())
}

/// Write blob `h` to `dest` atomically (temp file in the same directory, fsync, rename), unless
/// `dest` already holds exactly that content (checked by a sidecar record of hash, size and
/// mtime, then confirmed by size).
pub fn export_blob(store: &Store, h: &Hash, dest: &Path) -> Result<bool, Error> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let side = dir.join(format!(".{name}.osimage"));
    if let (Ok(meta), Ok(rec)) = (std::fs::metadata(dest), std::fs::read_to_string(&side)) {
        let mtime = filetime::FileTime::from_last_modification_time(&meta);
        let want = format!(
            "{h} {} {}.{}",
            meta.len(),
            mtime.unix_seconds(),
            mtime.nanoseconds()
        );
        if rec.trim() == want {
            return Ok(false);
        }
    }
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    store.blob_to_file(h, &tmp)?;
    let f = std::fs::File::open(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, dest).map_err(|e| Error::io(dest, e))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    let meta = std::fs::metadata(dest).map_err(|e| Error::io(dest, e))?;
    let mtime = filetime::FileTime::from_last_modification_time(&meta);
    let rec = format!(
        "{h} {} {}.{}\n",
        meta.len(),
        mtime.unix_seconds(),
        mtime.nanoseconds()
    );
    std::fs::write(&side, rec).map_err(|e| Error::io(&side, e))?;
    Ok(true)
}

/// The error every stage that is not built yet returns.
pub fn not_implemented(stage: &str, issue: u32) -> Error {
    Error::NotImplemented(format!(
        "{stage} stage (tracked in issue {issue}); use a [source] rootimg capture spec meanwhile"
    ))
}

/// Materialise only part of a tree: every directory and symlink (cheap, and keeps usrmerge
/// links and parents intact) plus the files and other entries for which `keep` is true.
pub fn materialize_subset(
    store: &Store,
    m: &Manifest,
    dir: &Path,
    keep: impl Fn(&str) -> bool,
) -> Result<(), Error> {
    use crate::tree::Kind;
    let sub = Manifest {
        entries: m
            .entries
            .iter()
            .filter(|e| matches!(e.kind, Kind::Dir | Kind::Symlink { .. }) || keep(&e.path))
            .cloned()
            .collect(),
    };
    crate::tree::materialize(store, &sub, dir)?;
    Ok(())
}

/// `lib/modules/<v>/…` or `usr/lib/modules/<v>/…`: the kernel version `<v>` and the rest.
pub fn modules_path(path: &str) -> Option<(&str, &str)> {
    let rest = path
        .strip_prefix("usr/lib/modules/")
        .or_else(|| path.strip_prefix("lib/modules/"))?;
    Some(rest.split_once('/').unwrap_or((rest, "")))
}

/// Where to materialise a tree of `bytes` content: tmpfs (`/dev/shm`) when it has room for
/// twice the content, else the step's scratch directory.
pub fn work_dir(scratch: &Path, bytes: u64) -> Result<tempfile::TempDir, Error> {
    let shm = Path::new("/dev/shm");
    let room = rustix::fs::statvfs(shm)
        .map(|s| s.f_bavail.saturating_mul(s.f_frsize))
        .unwrap_or(0);
    let base: PathBuf = if room > bytes.saturating_mul(2) + (64 << 20) {
        shm.to_path_buf()
    } else {
        scratch.to_path_buf()
    };
    crate::tree::overlay::remove_stale_dirs(&base, "osimage-root-");
    tempfile::Builder::new()
        .prefix(&format!("osimage-root-{}-", std::process::id()))
        .tempdir_in(&base)
        .map_err(|e| Error::io(&base, e))
}
