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

/// An exported file in `rootimgdir` and its sidecar record (`.<name>.osimage`: blob hash, size
/// and mtime), which lets a rebuild skip an export whose file still holds that blob.
pub(crate) struct ExportTarget<'a> {
    /// The exported file.
    pub dest: &'a Path,
    /// Its directory (created by [`ExportTarget::new`]).
    pub dir: PathBuf,
    /// Its file name.
    pub name: String,
    side: PathBuf,
}

impl<'a> ExportTarget<'a> {
    /// Create `dest`'s directory.
    pub fn new(dest: &'a Path) -> Result<ExportTarget<'a>, Error> {
        let dir = dest.parent().unwrap_or(Path::new(".")).to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let side = dir.join(format!(".{name}.osimage"));
        Ok(ExportTarget {
            dest,
            dir,
            name,
            side,
        })
    }

    fn record(h: &Hash, meta: &std::fs::Metadata) -> String {
        let mtime = filetime::FileTime::from_last_modification_time(meta);
        format!(
            "{h} {} {}.{}",
            meta.len(),
            mtime.unix_seconds(),
            mtime.nanoseconds()
        )
    }

    /// True when `dest` still is the file recorded as holding blob `h`.
    pub fn holds(&self, h: &Hash) -> bool {
        match (
            std::fs::metadata(self.dest),
            std::fs::read_to_string(&self.side),
        ) {
            (Ok(meta), Ok(rec)) => rec.trim() == Self::record(h, &meta),
            _ => false,
        }
    }

    /// Put `tmp` (complete, in the same directory) in place: the old record goes first (it
    /// must never describe another file), then the rename, the directory fsync and the new
    /// record.
    pub fn publish(&self, tmp: &Path, h: &Hash) -> Result<(), Error> {
        let _ = std::fs::remove_file(&self.side);
        std::fs::rename(tmp, self.dest).map_err(|e| Error::io(self.dest, e))?;
        // (rename does nothing when both names already link the same file)
        let _ = std::fs::remove_file(tmp);
        if let Ok(d) = std::fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
        let meta = std::fs::metadata(self.dest).map_err(|e| Error::io(self.dest, e))?;
        std::fs::write(&self.side, format!("{}\n", Self::record(h, &meta)))
            .map_err(|e| Error::io(&self.side, e))
    }
}

/// Write blob `h` to `dest` atomically (temp file in the same directory, fsync, rename), unless
/// `dest` already holds exactly that content (its [`ExportTarget`] record). Returns whether it
/// wrote.
pub fn export_blob(store: &Store, h: &Hash, dest: &Path) -> Result<bool, Error> {
    let t = ExportTarget::new(dest)?;
    if t.holds(h) {
        return Ok(false);
    }
    let tmp = t
        .dir
        .join(format!(".{}.tmp-{}", t.name, std::process::id()));
    store.blob_to_file(h, &tmp)?;
    let f = std::fs::File::open(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    t.publish(&tmp, h)?;
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
    if base == shm {
        // checkouts of removed stores: their memory is freed in the background while we build
        crate::tree::overlay::remove_orphans(shm);
    }
    tempfile::Builder::new()
        .prefix(&format!("osimage-root-{}-", std::process::id()))
        .tempdir_in(&base)
        .map_err(|e| Error::io(&base, e))
}
