//! Scanning a directory into the store ([`scan`]) and hashing a directory's content for node
//! keys ([`hash_tree`]).

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::hash::Hash;
use crate::store::Store;

use super::TreeError;
use super::manifest::{Kind, Manifest};
use super::statcache::{StatCache, StatEntry};
use super::walk::{Walked, build_manifest, walk};

/// What a scan did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Entries in the manifest.
    pub entries: usize,
    /// Distinct regular-file inodes.
    pub files: usize,
    /// Files whose content was read and hashed.
    pub hashed: usize,
    /// Files whose hash came from the stat cache.
    pub reused: usize,
    /// Bytes read and hashed.
    pub bytes_hashed: u64,
}

/// Scan `dir` into the store: every entry's type, owner, mode, mtime, xattrs (all namespaces),
/// hardlink groups and device numbers, and every regular file's content as a blob (hashed in
/// parallel). With `prev` (from [`super::materialize`]), files whose (dev, ino, size, mtime_ns,
/// ctime_ns) are unchanged are not read again. Names must be UTF-8.
pub fn scan(store: &Store, dir: &Path, prev: Option<&StatCache>) -> Result<Manifest, TreeError> {
    scan_with_stats(store, dir, prev).map(|(m, _)| m)
}

/// [`scan`], also returning what it did.
pub fn scan_with_stats(
    store: &Store,
    dir: &Path,
    prev: Option<&StatCache>,
) -> Result<(Manifest, ScanStats), TreeError> {
    let walked = walk(dir)?;
    let hashed = AtomicU64::new(0);
    let reused = AtomicU64::new(0);
    let bytes = AtomicU64::new(0);
    let m = build_manifest(&walked, |w: &Walked| {
        if let Some(prev) = prev
            && let Some(blob) = prev.lookup(&w.rel, &w.md)
            && store.has(&blob)
        {
            reused.fetch_add(1, Ordering::Relaxed);
            return Ok((blob, w.md.len()));
        }
        let (h, n) = store.put_file(&w.abs)?;
        hashed.fetch_add(1, Ordering::Relaxed);
        bytes.fetch_add(n, Ordering::Relaxed);
        Ok((h, n))
    })?;
    let stats = ScanStats {
        entries: m.entries.len(),
        files: (hashed.load(Ordering::Relaxed) + reused.load(Ordering::Relaxed)) as usize,
        hashed: hashed.load(Ordering::Relaxed) as usize,
        reused: reused.load(Ordering::Relaxed) as usize,
        bytes_hashed: bytes.load(Ordering::Relaxed),
    };
    Ok((m, stats))
}

/// Hash a file's content without storing it.
fn hash_file(path: &Path) -> Result<(Hash, u64), TreeError> {
    let io = |e| TreeError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    if len > (16 << 20) {
        return Hash::of_reader(&mut f).map_err(io);
    }
    let mut buf = Vec::with_capacity(len as usize);
    f.read_to_end(&mut buf).map_err(io)?;
    Ok((Hash::of(&buf), buf.len() as u64))
}

/// Content hash of the directory tree at `dir`: names, types, modes, owners, xattrs, link
/// targets, device numbers, hardlink groups and file contents; not mtimes. Reads every file;
/// see [`hash_tree_cached`] to skip unchanged ones.
pub fn hash_tree(dir: &Path) -> Result<Hash, TreeError> {
    hash_tree_cached(dir, None, None)
}

/// [`hash_tree`] with a stat cache file (e.g. [`Store::stat_cache_path`]): files whose inode is
/// unchanged since the cache was written are not read again. The cache only saves work: the
/// result is always the content hash. The cache file is rewritten afterwards.
///
/// `mtime_clamp`: `Some(epoch)` includes every mtime, clamped to `epoch` (what an archive built
/// with that `source_date_epoch` would hold); `None` leaves mtimes out.
pub fn hash_tree_cached(
    dir: &Path,
    cache_file: Option<&Path>,
    mtime_clamp: Option<i64>,
) -> Result<Hash, TreeError> {
    let walked = walk(dir)?;
    let cache = cache_file.map(StatCache::load).unwrap_or_default();
    let mut m = build_manifest(&walked, |w: &Walked| {
        if let Some(blob) = cache.lookup(&w.rel, &w.md) {
            return Ok((blob, w.md.len()));
        }
        hash_file(&w.abs)
    })?;
    if let Some(path) = cache_file {
        let mut fresh = StatCache::default();
        for (w, e) in walked.iter().zip(m.entries.iter()) {
            if let Kind::File { blob, .. } = &e.kind
                && w.rel == e.path
            {
                fresh
                    .files
                    .insert(w.rel.clone(), StatEntry::new(&w.md, *blob));
            }
        }
        if fresh != cache
            && let Err(e) = fresh.save(path)
        {
            tracing::warn!("cannot save stat cache {}: {e}", path.display());
        }
    }
    match mtime_clamp {
        Some(epoch) => m.clamp_mtimes(epoch),
        None => m.entries.iter_mut().for_each(|e| e.mtime = 0),
    }
    Ok(content_key(&m))
}

/// Hash a manifest's canonical binary form (mtimes included as given).
fn content_key(m: &Manifest) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(b"osimage tree content v1\0");
    let mut buf = Vec::with_capacity(256);
    for e in &m.entries {
        buf.clear();
        buf.extend_from_slice(&(e.path.len() as u64).to_le_bytes());
        buf.extend_from_slice(e.path.as_bytes());
        for v in [e.st_mode(), e.uid, e.gid] {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        buf.extend_from_slice(&e.mtime.to_le_bytes());
        match &e.kind {
            Kind::File { blob, size, link } => {
                buf.extend_from_slice(&blob.0);
                buf.extend_from_slice(&size.to_le_bytes());
                buf.extend_from_slice(&link.map_or(0u64, |l| u64::from(l) + 1).to_le_bytes());
            }
            Kind::Symlink { target } => {
                buf.extend_from_slice(&(target.len() as u64).to_le_bytes());
                buf.extend_from_slice(target.as_bytes());
            }
            Kind::Char { major, minor } | Kind::Block { major, minor } => {
                buf.extend_from_slice(&major.to_le_bytes());
                buf.extend_from_slice(&minor.to_le_bytes());
            }
            Kind::Dir | Kind::Fifo | Kind::Socket => {}
        }
        buf.extend_from_slice(&(e.xattrs.len() as u64).to_le_bytes());
        for (k, v) in &e.xattrs {
            buf.extend_from_slice(&(k.len() as u64).to_le_bytes());
            buf.extend_from_slice(k.as_bytes());
            buf.extend_from_slice(&(v.len() as u64).to_le_bytes());
            buf.extend_from_slice(v);
        }
        h.update(&buf);
    }
    Hash::from(h.finalize())
}
