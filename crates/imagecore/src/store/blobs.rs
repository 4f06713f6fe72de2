//! Putting and getting blobs.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use crate::hash::Hash;

use super::pack::{FLAG_ZSTD, Loc};
use super::writer::{IN_MEMORY_LIMIT, encode_blob};
use super::{Store, StoreError};

/// Reads `len` bytes of a file from `pos` with positional reads (no shared cursor).
struct RangeReader {
    file: Arc<File>,
    pos: u64,
    end: u64,
}

impl Read for RangeReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.end.saturating_sub(self.pos);
        if left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min(left as usize);
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "pack file shorter than its index",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl Store {
    /// Store `data`; returns its blob id. Stored once however often it is put.
    pub fn put_bytes(&self, data: &[u8]) -> Result<Hash, StoreError> {
        let h = if data.len() > (1 << 20) {
            let mut hs = blake3::Hasher::new();
            hs.update_rayon(data);
            Hash::from(hs.finalize())
        } else {
            Hash::of(data)
        };
        if self.has(&h) {
            return Ok(h);
        }
        let (flags, stored) = encode_blob(data, self.compression());
        self.append(&h, data.len() as u64, flags, &stored)?;
        Ok(h)
    }

    /// Store `data` whose blob id `h` the caller computed (`Hash::of(data)`) while writing it
    /// elsewhere: saves hashing it again.
    pub(crate) fn put_hashed(&self, h: &Hash, data: &[u8]) -> Result<(), StoreError> {
        if self.has(h) {
            return Ok(());
        }
        let (flags, stored) = encode_blob(data, self.compression());
        self.append(h, data.len() as u64, flags, &stored)
    }

    /// Store a file's content; returns (blob id, size).
    pub fn put_file(&self, path: &Path) -> Result<(Hash, u64), StoreError> {
        let mut f = File::open(path).map_err(|e| StoreError::io(path, e))?;
        let size = f.metadata().map_err(|e| StoreError::io(path, e))?.len();
        if size <= IN_MEMORY_LIMIT {
            let mut buf = Vec::with_capacity(size as usize);
            f.read_to_end(&mut buf)
                .map_err(|e| StoreError::io(path, e))?;
            let h = self.put_bytes(&buf)?;
            return Ok((h, buf.len() as u64));
        }
        // Large: hash first (in bounded chunks, in parallel) so a blob already stored is not
        // copied again.
        let (h, _) = Hash::of_reader(&mut f).map_err(|e| StoreError::io(path, e))?;
        if self.has(&h) {
            return Ok((h, size));
        }
        f.seek(std::io::SeekFrom::Start(0))
            .map_err(|e| StoreError::io(path, e))?;
        self.put_stream(&[], &mut f)
    }

    /// Store everything `r` yields, streaming (for large blobs); returns (blob id, size).
    pub fn put_reader(&self, r: &mut dyn Read) -> Result<(Hash, u64), StoreError> {
        let mut buf = Vec::new();
        let mut limited = r.take(IN_MEMORY_LIMIT + 1);
        limited
            .read_to_end(&mut buf)
            .map_err(|e| StoreError::io("<reader>", e))?;
        if buf.len() as u64 <= IN_MEMORY_LIMIT {
            let h = self.put_bytes(&buf)?;
            return Ok((h, buf.len() as u64));
        }
        self.put_stream(&buf, r)
    }

    /// Is the blob in the store?
    pub fn has(&self, h: &Hash) -> bool {
        self.locate(h).is_ok()
    }

    /// Find a blob: its location and the pack's read handle and path.
    pub(crate) fn locate(&self, h: &Hash) -> Result<(Loc, Arc<super::pack::PackRef>), StoreError> {
        let found =
            self.with_index(|s| s.map.get(h).map(|l| (*l, s.packs[l.pack as usize].clone())))?;
        if let Some(x) = found {
            return Ok(x);
        }
        // Another process may have added packs since we loaded the index (not while we hold
        // the lock: then no one else writes, and a miss is common while putting new blobs).
        if !self.holds_lock()
            && self.refresh_index()?
            && let Some(x) =
                self.with_index(|s| s.map.get(h).map(|l| (*l, s.packs[l.pack as usize].clone())))?
        {
            return Ok(x);
        }
        Err(StoreError::MissingBlob {
            hash: *h,
            dir: self.dir.clone(),
        })
    }

    /// The whole content of a blob, checked against its id.
    pub fn read(&self, h: &Hash) -> Result<Vec<u8>, StoreError> {
        let (loc, pack) = self.locate(h)?;
        let data = self.read_loc(&loc, &pack)?;
        if Hash::of(&data) != *h {
            return Err(StoreError::BadBlob {
                hash: *h,
                path: pack.path.clone(),
                what: "content does not match its hash".into(),
            });
        }
        Ok(data)
    }

    /// Decode a blob at a known location (unchecked).
    pub(crate) fn read_loc(
        &self,
        loc: &Loc,
        pack: &super::pack::PackRef,
    ) -> Result<Vec<u8>, StoreError> {
        let f = pack.handle()?;
        let stored = super::pack::read_at(&f, &pack.path, loc.offset, loc.stored)?;
        if loc.flags & FLAG_ZSTD == 0 {
            return Ok(stored);
        }
        // bulk API: one call into libzstd (a generic streaming decoder would be compiled in
        // this crate's profile, and is several times slower in debug builds)
        let out =
            zstd::bulk::decompress(&stored, loc.raw as usize).map_err(|e| StoreError::Corrupt {
                path: pack.path.clone(),
                what: format!("cannot decompress blob: {e}"),
            })?;
        if out.len() as u64 != loc.raw {
            return Err(StoreError::Corrupt {
                path: pack.path.clone(),
                what: format!(
                    "blob decompressed to {} bytes, expected {}",
                    out.len(),
                    loc.raw
                ),
            });
        }
        Ok(out)
    }

    /// Stream a blob's content (not checked against its id; `verify` does that).
    pub fn open_blob(&self, h: &Hash) -> Result<Box<dyn Read + Send + '_>, StoreError> {
        let (loc, pack) = self.locate(h)?;
        let rr = RangeReader {
            file: pack.handle()?,
            pos: loc.offset,
            end: loc.offset + loc.stored,
        };
        if loc.flags & FLAG_ZSTD == 0 {
            return Ok(Box::new(rr));
        }
        let d = zstd::stream::read::Decoder::new(rr).map_err(|e| StoreError::io(&pack.path, e))?;
        Ok(Box::new(d))
    }

    /// The content length of a blob.
    pub fn blob_size(&self, h: &Hash) -> Result<u64, StoreError> {
        Ok(self.locate(h)?.0.raw)
    }

    /// Write a blob's content to a new file `dst` (which must not exist).
    pub fn blob_to_file(&self, h: &Hash, dst: &Path) -> Result<(), StoreError> {
        let mut f = File::options()
            .write(true)
            .create_new(true)
            .open(dst)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    StoreError::Exists(dst.to_path_buf())
                } else {
                    StoreError::io(dst, e)
                }
            })?;
        self.write_blob_into(h, &mut f, dst)
    }

    /// Write a blob's content into an open, empty file (kernel-side copy when stored raw).
    pub(crate) fn write_blob_into(
        &self,
        h: &Hash,
        out: &mut File,
        out_path: &Path,
    ) -> Result<(), StoreError> {
        let (loc, pack) = self.locate(h)?;
        if loc.raw == 0 {
            return Ok(());
        }
        let src = pack.handle()?;
        if loc.flags & FLAG_ZSTD == 0 {
            if copy_range(&src, loc.offset, out, loc.stored).is_ok() {
                return Ok(());
            }
            // fall back to a plain copy from the start
            out.set_len(0).map_err(|e| StoreError::io(out_path, e))?;
            let mut rr = RangeReader {
                file: src,
                pos: loc.offset,
                end: loc.offset + loc.stored,
            };
            // a buffer no larger than the blob: `io::copy` zeroes the writer's buffer once per
            // call, which for 1 MiB buffers and small files cost more than the copy
            let cap = (loc.stored as usize).clamp(8 << 10, 1 << 20);
            let mut w = std::io::BufWriter::with_capacity(cap, &mut *out);
            std::io::copy(&mut rr, &mut w).map_err(|e| StoreError::io(out_path, e))?;
            w.flush().map_err(|e| StoreError::io(out_path, e))?;
            return Ok(());
        }
        if loc.raw <= IN_MEMORY_LIMIT {
            let data = self.read_loc(&loc, &pack)?;
            out.write_all(&data)
                .map_err(|e| StoreError::io(out_path, e))?;
            return Ok(());
        }
        let rr = RangeReader {
            file: src,
            pos: loc.offset,
            end: loc.offset + loc.stored,
        };
        let mut d =
            zstd::stream::read::Decoder::new(rr).map_err(|e| StoreError::io(&pack.path, e))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, &mut *out);
        std::io::copy(&mut d, &mut w).map_err(|e| StoreError::io(out_path, e))?;
        w.flush().map_err(|e| StoreError::io(out_path, e))?;
        Ok(())
    }
}

/// copy_file_range `len` bytes from `src` at `off` to the current end of `dst`.
fn copy_range(src: &File, off: u64, dst: &File, len: u64) -> std::io::Result<()> {
    let mut off_in = off;
    let mut off_out = 0u64;
    let mut left = len;
    while left > 0 {
        let chunk = left.min(1 << 30) as usize;
        let n =
            rustix::fs::copy_file_range(src, Some(&mut off_in), dst, Some(&mut off_out), chunk)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "short copy",
            ));
        }
        left -= n as u64;
    }
    Ok(())
}

/// A reader over `len` bytes of `file` from `offset`.
pub(crate) fn range_reader(file: Arc<File>, offset: u64, len: u64) -> impl Read + Send {
    RangeReader {
        file,
        pos: offset,
        end: offset + len,
    }
}
