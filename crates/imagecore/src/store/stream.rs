//! Writing a large blob as a stream (hashed while it is written, stored once), reading ranges of
//! blobs, and hard-linking whole blobs out of the store.
//!
//! A blob written by [`BlobWriter`] becomes a *bare* pack: the pack file holds exactly the
//! blob's bytes (no magic, no record header; its index entry has [`FLAG_BARE`], offset 0). So
//! the pack file can be hard-linked to where the blob is exported (a root image archive in
//! `rootimgdir`): the archive is written to disk once. An exported link shares the store's
//! bytes: a program that rewrites it in place damages the cached blob (`osimage cache verify`
//! reports it); osimage itself only ever replaces exported files by rename.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::hash::Hash;

use super::pack::{FLAG_BARE, FLAG_ZSTD, Loc, atomic_write, encode_index, fsync_dir};
use super::{Store, StoreError};

/// A blob being written: `Write` its content, then [`BlobWriter::finish`] stores it. Dropped
/// unfinished, it leaves nothing behind.
pub struct BlobWriter<'s> {
    store: &'s Store,
    tmp: PathBuf,
    file: Option<BufWriter<File>>,
    hasher: blake3::Hasher,
    len: u64,
    wb: super::durable::Writeback,
}

impl Write for BlobWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let Some(f) = self.file.as_mut() else {
            return Err(std::io::Error::other("blob writer already finished"));
        };
        let n = f.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        self.wb.wrote(n as u64);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for BlobWriter<'_> {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

impl BlobWriter<'_> {
    /// Store what was written (fsynced, indexed); returns (blob id, size). If the store already
    /// had this content, the new copy is dropped.
    pub fn finish(mut self) -> Result<(Hash, u64), StoreError> {
        let tmp = self.tmp.clone();
        let Some(w) = self.file.take() else {
            return Err(StoreError::io(
                &tmp,
                std::io::Error::other("blob writer already finished"),
            ));
        };
        let res = (|| {
            let file = w
                .into_inner()
                .map_err(|e| StoreError::io(&tmp, e.into_error()))?;
            self.wb.finish();
            let h = Hash::from(self.hasher.finalize());
            let loc = Loc {
                pack: 0,
                offset: 0,
                stored: self.len,
                raw: self.len,
                flags: FLAG_BARE,
            };
            self.store.install_single(&tmp, file, h, loc, self.len)?;
            Ok((h, self.len))
        })();
        if res.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        res
    }
}

impl Store {
    /// Start writing a blob as a stream (for large artifacts such as image archives: written
    /// once, hashed on the way, never held in memory).
    pub fn blob_writer(&self) -> Result<BlobWriter<'_>, StoreError> {
        let tmp = self.tmp_path("blob");
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| StoreError::io(&tmp, e))?;
        let wb = super::durable::Writeback::new(&tmp);
        Ok(BlobWriter {
            store: self,
            tmp,
            file: Some(BufWriter::with_capacity(1 << 20, file)),
            hasher: blake3::Hasher::new(),
            len: 0,
            wb,
        })
    }

    /// Make the complete pack file `tmp` (holding only blob `h` at `loc`, `end` bytes long) part
    /// of the store: fsync, rename into `packs/`, write its index. Drops it if `h` is stored.
    pub(crate) fn install_single(
        &self,
        tmp: &Path,
        file: File,
        h: Hash,
        loc: Loc,
        end: u64,
    ) -> Result<(), StoreError> {
        // fsync before taking the writer lock (appends go on meanwhile), then register under
        // the lock so a concurrent put of the same blob dedups.
        file.sync_all().map_err(|e| StoreError::io(tmp, e))?;
        drop(file);
        let _w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if self.with_index(|s| s.map.contains_key(&h))? {
            let _ = std::fs::remove_file(tmp);
            return Ok(());
        }
        let name = self.new_pack_name();
        let pack_path = self.packs_dir.join(format!("{name}.pack"));
        std::fs::rename(tmp, &pack_path).map_err(|e| StoreError::io(&pack_path, e))?;
        fsync_dir(&self.packs_dir)?;
        let idx = encode_index(&[(h, loc)], end);
        let idx_path = self.packs_dir.join(format!("{name}.idx"));
        atomic_write(&self.tmp_path("idx"), &idx_path, &idx)?;
        let dir = self.packs_dir.clone();
        self.with_index_mut(|s| {
            let id = s.add_pack(&dir, &name);
            s.map.insert(h, Loc { pack: id, ..loc });
        })?;
        Ok(())
    }

    /// `len` bytes of blob `h` from `offset` (not checked against the blob id).
    pub fn read_range(&self, h: &Hash, offset: u64, len: u64) -> Result<Vec<u8>, StoreError> {
        let (loc, pack) = self.locate(h)?;
        let end = offset.checked_add(len).filter(|&e| e <= loc.raw);
        if end.is_none() {
            return Err(StoreError::Corrupt {
                path: pack.path.clone(),
                what: format!(
                    "range {offset}+{len} is outside blob {h} of {} bytes",
                    loc.raw
                ),
            });
        }
        if loc.flags & FLAG_ZSTD != 0 {
            let all = self.read_loc(&loc, &pack)?;
            return Ok(all[offset as usize..(offset + len) as usize].to_vec());
        }
        let f = pack.handle()?;
        let mut buf = vec![0u8; len as usize];
        f.read_exact_at(&mut buf, loc.offset + offset)
            .map_err(|e| StoreError::io(&pack.path, e))?;
        Ok(buf)
    }

    /// A reader of `len` bytes of blob `h` from `offset` (streamed for raw blobs).
    pub fn open_range(
        &self,
        h: &Hash,
        offset: u64,
        len: u64,
    ) -> Result<Box<dyn std::io::Read + Send + '_>, StoreError> {
        let (loc, pack) = self.locate(h)?;
        if offset.checked_add(len).is_none_or(|e| e > loc.raw) {
            return Err(StoreError::Corrupt {
                path: pack.path.clone(),
                what: format!(
                    "range {offset}+{len} is outside blob {h} of {} bytes",
                    loc.raw
                ),
            });
        }
        if loc.flags & FLAG_ZSTD != 0 {
            return Ok(Box::new(std::io::Cursor::new(
                self.read_range(h, offset, len)?,
            )));
        }
        Ok(Box::new(super::blobs::range_reader(
            pack.handle()?,
            loc.offset + offset,
            len,
        )))
    }

    /// Hard-link blob `h` to the new path `dst` when it is a bare pack (see the module doc) on
    /// the same filesystem. Returns false (and does nothing) when it cannot: then copy it.
    pub fn link_blob(&self, h: &Hash, dst: &Path) -> Result<bool, StoreError> {
        let (loc, pack) = self.locate(h)?;
        if loc.flags & FLAG_BARE == 0 || loc.offset != 0 {
            return Ok(false);
        }
        match std::fs::hard_link(&pack.path, dst) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(StoreError::Exists(dst.to_path_buf()))
            }
            Err(_) => Ok(false), // other filesystem, no link support: the caller copies
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_blob_is_stored_once_read_by_range_linked_and_verified() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut w = s.blob_writer().unwrap();
        for c in data.chunks(100_000) {
            w.write_all(c).unwrap();
        }
        let (h, n) = w.finish().unwrap();
        assert_eq!((h, n), (Hash::of(&data), data.len() as u64));
        assert_eq!(s.read(&h).unwrap(), data);
        assert_eq!(s.read_range(&h, 10, 5).unwrap(), &data[10..15]);
        let mut v = Vec::new();
        use std::io::Read;
        s.open_range(&h, 7, 100_000)
            .unwrap()
            .read_to_end(&mut v)
            .unwrap();
        assert_eq!(v, &data[7..100_007]);
        assert!(s.read_range(&h, data.len() as u64 - 2, 5).is_err());
        let out = d.path().join("exported");
        assert!(s.link_blob(&h, &out).unwrap());
        assert_eq!(std::fs::read(&out).unwrap(), data);
        // the same content again: deduplicated, no second pack
        let packs = || std::fs::read_dir(d.path().join("packs")).unwrap().count();
        let before = packs();
        let mut w = s.blob_writer().unwrap();
        w.write_all(&data).unwrap();
        assert_eq!(w.finish().unwrap().0, h);
        assert_eq!(packs(), before);
        // an unfinished writer leaves nothing
        let mut w = s.blob_writer().unwrap();
        w.write_all(b"partial").unwrap();
        drop(w);
        assert_eq!(std::fs::read_dir(d.path().join("tmp")).unwrap().count(), 0);
        // verify reads bare packs, also after reopening the store
        assert!(s.verify().unwrap().ok());
        drop(s);
        let s = Store::open(d.path()).unwrap();
        assert_eq!(s.read(&h).unwrap(), data);
        assert!(s.verify().unwrap().ok());
    }
}
