//! Pack files and their indexes: the on-disk format of blob storage.
//!
//! A pack file `packs/<name>.pack` is `PACK_MAGIC` followed by records, each
//! `hash(32) flags(1) raw_len(8 LE) stored_len(8 LE)` then `stored_len` bytes (zstd frame when
//! `flags & FLAG_ZSTD`). A pack is written append-only by one writer and then *sealed*: the pack
//! is fsynced, then its index `packs/<name>.idx` is written to a temporary file, fsynced and
//! renamed into place, then the directory is fsynced. Only packs with an index are ever read:
//! a pack without one (a crashed writer) is ignored and removed once its owner is gone.
//!
//! A *bare* pack (index flag `FLAG_BARE`) is the exception: the file is one raw blob and
//! nothing else, so it can be hard-linked out of the store (see `store/stream.rs`).
//!
//! An index is `IDX_MAGIC`, `count(8)`, `pack_len(8)`, then `count` entries
//! `hash(32) offset(8) stored(8) raw(8) flags(1)` (offset = start of the data, after the record
//! header), then the blake3 of everything before it.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::hash::Hash;

use super::StoreError;

pub(crate) const PACK_MAGIC: &[u8; 8] = b"OSPACK1\n";
pub(crate) const IDX_MAGIC: &[u8; 8] = b"OSIDX1\n\0";
/// Record header length: hash, flags, raw length, stored length.
pub(crate) const REC_HDR: usize = 32 + 1 + 8 + 8;
/// Blob is a zstd frame.
pub(crate) const FLAG_ZSTD: u8 = 1;
/// The pack file holds this blob alone, raw, from offset 0, with no magic nor record header
/// (written by [`super::BlobWriter`], so it can be hard-linked out of the store).
pub(crate) const FLAG_BARE: u8 = 2;
const IDX_ENTRY: usize = 32 + 8 + 8 + 8 + 1;

/// Where a blob lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Loc {
    /// Index into [`PackSet::packs`].
    pub pack: u32,
    /// Offset of the stored bytes in the pack file.
    pub offset: u64,
    /// Stored length.
    pub stored: u64,
    /// Content length.
    pub raw: u64,
    /// Record flags.
    pub flags: u8,
}

/// One known pack file.
pub(crate) struct PackRef {
    /// File stem (`<name>.pack`, `<name>.idx`).
    pub name: String,
    /// Path of the pack file.
    pub path: PathBuf,
    /// Read handle, opened on first read.
    pub file: OnceLock<Arc<File>>,
}

impl PackRef {
    pub(crate) fn new(packs_dir: &Path, name: &str) -> PackRef {
        PackRef {
            name: name.to_string(),
            path: packs_dir.join(format!("{name}.pack")),
            file: OnceLock::new(),
        }
    }

    /// The read handle (opened lazily).
    pub(crate) fn handle(&self) -> Result<Arc<File>, StoreError> {
        if let Some(f) = self.file.get() {
            return Ok(f.clone());
        }
        let f = Arc::new(File::open(&self.path).map_err(|e| StoreError::io(&self.path, e))?);
        Ok(self.file.get_or_init(|| f).clone())
    }
}

/// All blobs the store knows: loaded lazily from the indexes on first blob access.
#[derive(Default)]
pub(crate) struct PackSet {
    /// Pack files by id.
    pub packs: Vec<Arc<PackRef>>,
    /// Pack ids by name.
    pub by_name: HashMap<String, u32>,
    /// Blob locations.
    pub map: HashMap<Hash, Loc>,
}

impl PackSet {
    /// Register a pack, returning its id (existing id if already known).
    pub(crate) fn add_pack(&mut self, packs_dir: &Path, name: &str) -> u32 {
        if let Some(id) = self.by_name.get(name) {
            return *id;
        }
        let id = self.packs.len() as u32;
        self.packs.push(Arc::new(PackRef::new(packs_dir, name)));
        self.by_name.insert(name.to_string(), id);
        id
    }

    /// Load every index in `packs_dir` not loaded yet. Returns how many were added.
    pub(crate) fn load_new(&mut self, packs_dir: &Path) -> Result<usize, StoreError> {
        let rd = match std::fs::read_dir(packs_dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(StoreError::io(packs_dir, e)),
        };
        let mut names = Vec::new();
        for ent in rd {
            let ent = ent.map_err(|e| StoreError::io(packs_dir, e))?;
            let fname = ent.file_name();
            let Some(fname) = fname.to_str() else {
                continue;
            };
            if let Some(stem) = fname.strip_suffix(".idx")
                && !self.by_name.contains_key(stem)
            {
                names.push(stem.to_string());
            }
        }
        names.sort();
        let mut added = 0;
        for name in names {
            let idx_path = packs_dir.join(format!("{name}.idx"));
            let entries = match read_index(&idx_path) {
                Ok(e) => e,
                // Removed by a concurrent gc between readdir and open: nothing to load.
                Err(StoreError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    continue;
                }
                Err(e) => return Err(e),
            };
            let id = self.add_pack(packs_dir, &name);
            for (h, mut loc) in entries {
                loc.pack = id;
                self.map.entry(h).or_insert(loc);
            }
            added += 1;
        }
        Ok(added)
    }
}

/// Encode a record header.
pub(crate) fn record_header(h: &Hash, flags: u8, raw: u64, stored: u64) -> [u8; REC_HDR] {
    let mut b = [0u8; REC_HDR];
    b[..32].copy_from_slice(&h.0);
    b[32] = flags;
    b[33..41].copy_from_slice(&raw.to_le_bytes());
    b[41..49].copy_from_slice(&stored.to_le_bytes());
    b
}

/// Decode a record header: (hash, flags, raw, stored).
pub(crate) fn parse_record_header(b: &[u8; REC_HDR]) -> (Hash, u8, u64, u64) {
    let mut h = [0u8; 32];
    h.copy_from_slice(&b[..32]);
    let raw = u64::from_le_bytes(b[33..41].try_into().unwrap_or([0; 8]));
    let stored = u64::from_le_bytes(b[41..49].try_into().unwrap_or([0; 8]));
    (Hash(h), b[32], raw, stored)
}

/// Serialise an index.
pub(crate) fn encode_index(entries: &[(Hash, Loc)], pack_len: u64) -> Vec<u8> {
    let mut sorted: Vec<&(Hash, Loc)> = entries.iter().collect();
    sorted.sort_by_key(|e| e.0);
    let mut out = Vec::with_capacity(24 + entries.len() * IDX_ENTRY + 32);
    out.extend_from_slice(IDX_MAGIC);
    out.extend_from_slice(&(sorted.len() as u64).to_le_bytes());
    out.extend_from_slice(&pack_len.to_le_bytes());
    for (h, l) in sorted {
        out.extend_from_slice(&h.0);
        out.extend_from_slice(&l.offset.to_le_bytes());
        out.extend_from_slice(&l.stored.to_le_bytes());
        out.extend_from_slice(&l.raw.to_le_bytes());
        out.push(l.flags);
    }
    let sum = blake3::hash(&out);
    out.extend_from_slice(sum.as_bytes());
    out
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Read and check an index file; the `pack` field of every returned Loc is 0.
pub(crate) fn read_index(path: &Path) -> Result<Vec<(Hash, Loc)>, StoreError> {
    let data = std::fs::read(path).map_err(|e| StoreError::io(path, e))?;
    let bad = |what: &str| StoreError::Corrupt {
        path: path.to_path_buf(),
        what: what.to_string(),
    };
    if data.len() < 24 + 32 || &data[..8] != IDX_MAGIC {
        return Err(bad("not a pack index (bad magic or too short)"));
    }
    let body = &data[..data.len() - 32];
    if blake3::hash(body).as_bytes() != &data[data.len() - 32..] {
        return Err(bad("index checksum mismatch"));
    }
    let count = u64_at(body, 8) as usize;
    let pack_len = u64_at(body, 16);
    if body.len() != 24 + count * IDX_ENTRY {
        return Err(bad("index length does not match its entry count"));
    }
    let pack_path = path.with_extension("pack");
    let actual = std::fs::metadata(&pack_path)
        .map_err(|e| StoreError::io(&pack_path, e))?
        .len();
    if actual < pack_len {
        return Err(StoreError::Corrupt {
            path: pack_path,
            what: format!("pack is {actual} bytes, its index says {pack_len}"),
        });
    }
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let e = &body[24 + i * IDX_ENTRY..24 + (i + 1) * IDX_ENTRY];
        let mut h = [0u8; 32];
        h.copy_from_slice(&e[..32]);
        let loc = Loc {
            pack: 0,
            offset: u64_at(e, 32),
            stored: u64_at(e, 40),
            raw: u64_at(e, 48),
            flags: e[56],
        };
        if loc.offset + loc.stored > pack_len {
            return Err(bad("an entry points past the end of its pack"));
        }
        out.push((Hash(h), loc));
    }
    Ok(out)
}

/// Fsync a directory so a rename/unlink inside it is durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(dir, e))
}

/// Write `data` to `dst` atomically and durably: tmp file in `tmp_dir`, fsync, rename, fsync dir.
pub(crate) fn atomic_write(tmp: &Path, dst: &Path, data: &[u8]) -> Result<(), StoreError> {
    let mut f = File::create(tmp).map_err(|e| StoreError::io(tmp, e))?;
    f.write_all(data).map_err(|e| StoreError::io(tmp, e))?;
    f.sync_all().map_err(|e| StoreError::io(tmp, e))?;
    drop(f);
    std::fs::rename(tmp, dst).map_err(|e| StoreError::io(dst, e))?;
    if let Some(parent) = dst.parent() {
        fsync_dir(parent)?;
    }
    Ok(())
}

/// Read exactly `len` bytes at `offset`.
pub(crate) fn read_at(f: &File, path: &Path, offset: u64, len: u64) -> Result<Vec<u8>, StoreError> {
    let mut buf = vec![0u8; len as usize];
    f.read_exact_at(&mut buf, offset)
        .map_err(|e| StoreError::io(path, e))?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_round_trip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let pack = dir.path().join("p.pack");
        std::fs::write(&pack, vec![0u8; 200]).unwrap();
        let l = Loc {
            pack: 0,
            offset: 57,
            stored: 10,
            raw: 20,
            flags: FLAG_ZSTD,
        };
        let entries = vec![(Hash::of(b"b"), l), (Hash::of(b"a"), l)];
        let idx = dir.path().join("p.idx");
        std::fs::write(&idx, encode_index(&entries, 200)).unwrap();
        let back = read_index(&idx).unwrap();
        assert_eq!(back.len(), 2);
        assert!(back.iter().any(|(h, x)| *h == Hash::of(b"a") && *x == l));
        let mut data = std::fs::read(&idx).unwrap();
        data[30] ^= 1;
        std::fs::write(&idx, &data).unwrap();
        assert!(matches!(read_index(&idx), Err(StoreError::Corrupt { .. })));
        // a pack shorter than its index says is refused
        std::fs::write(&idx, encode_index(&entries, 300)).unwrap();
        assert!(matches!(read_index(&idx), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn header_round_trip() {
        let h = Hash::of(b"x");
        let b = record_header(&h, 1, 7, 5);
        assert_eq!(parse_record_header(&b), (h, 1, 7, 5));
    }
}
