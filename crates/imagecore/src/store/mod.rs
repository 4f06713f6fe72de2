//! The content-addressed cache: blobs in pack files, manifests, step outputs, build records.
//!
//! Layout under the store directory:
//! - `lock`: the build lock ([`Store::lock`], an exclusive `flock`).
//! - `packs/<name>.pack` + `packs/<name>.idx`: blobs (file contents, manifests, artifacts),
//!   deduplicated by blake3, in a few large append-only pack files (format in `store/pack.rs`).
//!   Writing one file per blob would cost a file creation per blob, which dominates on disk.
//!   Blobs are stored raw by default; [`Store::set_compression`] (or `OSIMAGE_STORE_COMPRESS=1`)
//!   stores them as zstd-1 frames when that saves at least 10 %. Raw blobs of 1 MiB and more
//!   start block-aligned, so `copy_file_range` can reflink them on btrfs/xfs.
//!   Large artifacts streamed in with [`Store::blob_writer`] are *bare* packs (the file is the
//!   blob alone), which [`Store::link_blob`] can hard-link out of the store.
//! - `outputs/<key>.json`: step outputs by node key, written only after every blob they
//!   reference is durable.
//! - `records/<name>`: small named records (e.g. the last build's node keys per spec).
//! - `checkouts/<manifest id>/`: read-only materialised trees that postinstall overlays sit on
//!   ([`crate::tree::overlay`]); derived data, removed by `gc`.
//! - `tmp/`: staging files, named after the writing process; stale ones are removed at open.
//!
//! Crash safety: every file that a reader trusts appears by an atomic rename after its content
//! was fsynced, and a pack file is only read through its index, which is written after the pack
//! is fsynced. So a process killed at any point leaves at worst an unindexed pack or a temporary
//! file, both ignored and later removed.

mod blobs;
mod durable;
mod gc;
mod lock;
mod outputs;
pub(crate) mod pack;
mod stream;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, RwLock};

use crate::hash::Hash;

pub use gc::{GcReport, VerifyReport};
pub use lock::StoreLock;
pub use outputs::OutputInfo;
pub use stream::BlobWriter;

use pack::PackSet;
use writer::PackWriter;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An I/O error on a named path.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A store file is damaged.
    #[error(
        "{path}: damaged cache file: {what}; run `osimage cache verify`, then `osimage cache gc` or remove the cache directory"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// A blob is not in the store.
    #[error(
        "blob {hash} is not in the cache at {dir}; the cache is incomplete: run `osimage cache verify` and rebuild"
    )]
    MissingBlob {
        /// The blob id.
        hash: Hash,
        /// The store directory.
        dir: PathBuf,
    },
    /// A blob's content does not hash to its id.
    #[error(
        "blob {hash} in {path} is damaged ({what}); run `osimage cache verify` and `osimage cache gc`"
    )]
    BadBlob {
        /// The blob id.
        hash: Hash,
        /// The pack file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// A stored manifest or output record does not parse.
    #[error("{path}: cannot parse cache record: {source}; remove it or run `osimage cache gc`")]
    BadRecord {
        /// The record (or the pack holding the manifest blob).
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// A record name is not a plain file name.
    #[error(
        "invalid record name {0:?}: use letters, digits, '.', '_' and '-' only, not starting with '.'"
    )]
    BadRecordName(String),
    /// Writing the target file failed because it exists.
    #[error("{0}: already exists; remove it first")]
    Exists(PathBuf),
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: path.into(),
            source,
        }
    }
}

/// The store. `Send + Sync`: steps put blobs concurrently from several threads.
pub struct Store {
    dir: PathBuf,
    packs_dir: PathBuf,
    tmp_dir: PathBuf,
    /// All known blobs, loaded from the indexes on first blob access.
    index: RwLock<Option<PackSet>>,
    /// The pack currently being appended to.
    writer: Mutex<Option<PackWriter>>,
    /// Order of pack seals (a flush waits for the seals started before it).
    seals: durable::SealOrder,
    /// How many [`StoreLock`]s this handle holds (gc takes the lock itself when zero).
    held: Arc<AtomicUsize>,
    /// For unique temporary names.
    counter: AtomicU64,
    /// Compress new blobs with zstd.
    compress: AtomicBool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("dir", &self.dir).finish()
    }
}

impl Store {
    /// Open (and create if needed) the store at `dir`. Cheap: indexes are loaded on first blob
    /// access. Unless a build holds the lock, removes temporary files and unindexed packs left
    /// by processes that are gone (taking the lock does the same).
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let packs_dir = dir.join("packs");
        let tmp_dir = dir.join("tmp");
        for d in [
            dir.to_path_buf(),
            packs_dir.clone(),
            tmp_dir.clone(),
            dir.join("outputs"),
            dir.join("records"),
        ] {
            std::fs::create_dir_all(&d).map_err(|e| StoreError::io(&d, e))?;
        }
        let store = Store {
            dir: dir.to_path_buf(),
            packs_dir,
            tmp_dir,
            index: RwLock::new(None),
            writer: Mutex::new(None),
            seals: durable::SealOrder::default(),
            held: Arc::new(AtomicUsize::new(0)),
            counter: AtomicU64::new(0),
            compress: AtomicBool::new(writer::compression_default()),
        };
        // Clean only while no build holds the lock: then nothing is writing.
        // (A read-only cache cannot be locked nor cleaned: just read it.)
        if let Ok(Some(guard)) = store.try_lock() {
            store.clean_stale()?;
            drop(guard);
        }
        raise_fd_limit();
        Ok(store)
    }

    /// The default store directory: `$OSIMAGE_CACHE`, else `$XDG_CACHE_HOME/osimage`, else
    /// `~/.cache/osimage`.
    pub fn default_dir() -> PathBuf {
        let nonempty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        if let Some(d) = nonempty("OSIMAGE_CACHE") {
            return PathBuf::from(d);
        }
        if let Some(d) = nonempty("XDG_CACHE_HOME") {
            return PathBuf::from(d).join("osimage");
        }
        let home = nonempty("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| "/root".into());
        home.join(".cache").join("osimage")
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A path inside the store where a stat cache for the tree at `tree_dir` may be kept (used
    /// with [`crate::tree::hash_tree_cached`]). One file per absolute source path.
    pub fn stat_cache_path(&self, tree_dir: &Path) -> PathBuf {
        let abs = std::path::absolute(tree_dir).unwrap_or_else(|_| tree_dir.to_path_buf());
        let h = Hash::of(abs.as_os_str().as_encoded_bytes());
        self.dir
            .join("statcache")
            .join(format!("{}.json", h.to_hex()))
    }

    /// The directory for step scratch space (on the store's filesystem, so renames into the
    /// store are cheap). Entries must be named `<pid>-…`: those of dead processes are removed
    /// when a store is opened.
    pub fn scratch_dir(&self) -> &Path {
        &self.tmp_dir
    }

    /// A fresh temporary path in `tmp/`, named after this process so cleaners know its owner.
    pub(crate) fn tmp_path(&self, ext: &str) -> PathBuf {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        self.tmp_dir
            .join(format!("{}-{nanos:x}-{n}.{ext}", std::process::id()))
    }

    /// A fresh pack name (pid first, so cleaners know its owner).
    pub(crate) fn new_pack_name(&self) -> String {
        let p = self.tmp_path("x");
        let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("0-0-0");
        stem.to_string()
    }

    /// Remove temporary files and unindexed packs whose writing process is gone.
    pub(crate) fn clean_stale(&self) -> Result<(), StoreError> {
        let me = std::process::id();
        let owner_gone = |name: &str| -> bool {
            let Some(pid) = name.split('-').next().and_then(|p| p.parse::<i32>().ok()) else {
                return true;
            };
            if pid as u32 == me {
                return false;
            }
            match rustix::process::Pid::from_raw(pid) {
                Some(p) => matches!(
                    rustix::process::test_kill_process(p),
                    Err(rustix::io::Errno::SRCH)
                ),
                None => true,
            }
        };
        for (dir, only_unindexed) in [(&self.tmp_dir, false), (&self.packs_dir, true)] {
            let rd = std::fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))?;
            for ent in rd.flatten() {
                let name = ent.file_name();
                let Some(name) = name.to_str() else { continue };
                if only_unindexed {
                    let Some(stem) = name.strip_suffix(".pack") else {
                        continue;
                    };
                    if dir.join(format!("{stem}.idx")).exists() {
                        continue;
                    }
                }
                if owner_gone(name) {
                    let p = ent.path();
                    tracing::debug!("removing stale cache file {}", p.display());
                    if ent.file_type().is_ok_and(|t| t.is_dir()) {
                        let _ = std::fs::remove_dir_all(&p);
                    } else {
                        let _ = std::fs::remove_file(&p);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Each pack read keeps one descriptor open; raise the soft descriptor limit to the hard one
/// (at most 65536) so a store with many packs (before `gc` merges them) cannot run out.
fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let lim = getrlimit(Resource::Nofile);
    let want = lim.maximum.unwrap_or(65536).min(65536);
    if lim.current.is_some_and(|c| c < want) {
        let _ = setrlimit(
            Resource::Nofile,
            rustix::process::Rlimit {
                current: Some(want),
                maximum: lim.maximum,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_is_send_sync() {
        fn check<T: Send + Sync>() {}
        check::<Store>();
    }

    #[test]
    fn open_creates_layout_and_cleans_dead_tmp() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        for sub in ["packs", "tmp", "outputs", "records"] {
            assert!(d.path().join(sub).is_dir(), "{sub}");
        }
        // pid 0x7ffffff0 cannot exist; our own pid's files are kept
        let dead = d.path().join("tmp/2147483632-1-1.tmp");
        let mine = s.tmp_path("tmp");
        std::fs::write(&dead, b"x").unwrap();
        std::fs::write(&mine, b"x").unwrap();
        let dead_pack = d.path().join("packs/2147483632-1-2.pack");
        std::fs::write(&dead_pack, b"x").unwrap();
        drop(s);
        let _s = Store::open(d.path()).unwrap();
        assert!(!dead.exists());
        assert!(!dead_pack.exists());
        assert!(mine.exists());
    }

    #[test]
    fn no_cleaning_while_a_build_holds_the_lock() {
        let d = tempfile::tempdir().unwrap();
        let builder = Store::open(d.path()).unwrap();
        let lock = builder.lock().unwrap();
        let stale = d.path().join("tmp/2147483632-1-1.tmp");
        std::fs::write(&stale, b"x").unwrap();
        let _reader = Store::open(d.path()).unwrap();
        assert!(
            stale.exists(),
            "a reader must not clean while the lock is held"
        );
        drop(lock);
        let _l = builder.lock().unwrap();
        assert!(!stale.exists(), "taking the lock cleans");
    }
}
