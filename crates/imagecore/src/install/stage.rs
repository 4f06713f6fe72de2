//! Phase 1 (parallel): stream each package's payload through its decompressor and newc reader
//! into a per-package staging directory, checking the payload digest. Only regular-file data is
//! staged (as `<staging>/<file index>`); everything else comes from the header at assembly.
//! The same read computes the sha256 of the whole `.rpm` when asked (the lock's checksum).

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::InstallError;
use super::package::{Pkg, S_IFREG};
use crate::hash::Hash;

/// What staging produced for one package.
pub struct Staged {
    /// The package's staging directory.
    pub dir: PathBuf,
    /// Per file index: the content was staged at `dir/<index>`.
    pub has_data: Vec<bool>,
    /// Per file index: (major, minor) device numbers from the archive.
    pub rdev: Vec<(u32, u32)>,
    /// Per file index: seen in the payload.
    pub in_payload: Vec<bool>,
    /// Per file index: blob id of the staged content, once it is in the store (empty when
    /// the install has no store).
    pub blobs: Vec<Option<crate::hash::Hash>>,
    /// sha256 (hex) of the whole `.rpm` file, when computed.
    pub file_sha256: Option<String>,
}

impl Staged {
    /// Staging path of file `i`.
    pub fn data_path(&self, i: usize) -> PathBuf {
        self.dir.join(i.to_string())
    }
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> InstallError + '_ {
    move |source| InstallError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Staged {
    /// Nothing staged yet for `pkg`, in `dir`.
    pub fn empty(pkg: &Pkg, dir: &Path) -> Staged {
        let n = pkg.files.len();
        Staged {
            dir: dir.to_path_buf(),
            has_data: vec![false; n],
            rdev: vec![(0, 0); n],
            in_payload: vec![false; n],
            blobs: Vec::new(),
            file_sha256: None,
        }
    }
}

/// Unpack `pkg`'s payload into `dir` (created), verifying the payload digest at the end; with
/// `file_digest`, also the sha256 of the whole file (same read) into [`Staged::file_sha256`];
/// with `hash`, the blake3 of each staged file into [`Staged::blobs`] (not stored: the caller
/// stores them once the payload is verified).
///
/// With a `store`, each staged file's content also goes into it from memory as it is written
/// (files up to the store's in-memory limit), so it is not read back from staging. Those blobs
/// may be appended before the payload digest is checked at the end: nothing refers to them (no
/// stage cache entry, no manifest) unless it passes, and `gc` drops them.
pub fn stage_into(
    pkg: &Pkg,
    dir: &Path,
    file_digest: bool,
    hash: bool,
    store: Option<&crate::store::Store>,
) -> Result<Staged, InstallError> {
    let hash = hash || store.is_some();
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let n = pkg.files.len();
    let mut staged = Staged::empty(pkg, dir);
    let rpm_path = &pkg.rpm.path;
    let bad = |message: String| InstallError::Package {
        path: rpm_path.clone(),
        message,
    };
    let payload = if file_digest {
        pkg.rpm.payload_reader_with_file_digest()?
    } else {
        pkg.rpm.payload_reader()?
    };
    let mut payload = std::io::BufReader::with_capacity(256 * 1024, payload);
    let mut buf = vec![0u8; 256 * 1024];
    let stripped = {
        use std::io::BufRead;
        let head = payload
            .fill_buf()
            .map_err(|e| bad(format!("payload: {e}")))?;
        head.starts_with(b"07070X")
    };
    if n > 0 && stripped {
        stage_stripped(pkg, &mut payload, &mut staged, &mut buf)?;
    } else if n > 0 {
        stage_newc(pkg, &mut payload, &mut staged, &mut buf, hash, store)?;
    }
    staged.file_sha256 = payload.into_inner().finish_file_digest()?;
    Ok(staged)
}

/// A staged file on its way to the writer thread.
struct Job {
    idx: usize,
    dest: PathBuf,
    data: Vec<u8>,
}

/// Files up to this size are read whole by the decoding thread and written (and hashed) by a
/// second thread, so that decompression, file creation and hashing overlap; larger ones are
/// handled by the decoding thread itself.
const PIPELINED_MAX: u64 = 4 << 20;
/// Files up to this size are put into the store from memory while staging (one such buffer at
/// a time, on the decoding thread); larger ones are streamed to staging and stored from there
/// afterwards, a second read that would come after the whole payload (a 19 MB kernel module
/// cost 60-80 ms there).
const STORE_FROM_MEMORY: u64 = 64 << 20;

/// Write one staged file; with a store, also put its content (blob id `h`, computed by the
/// caller) into it.
fn write_staged(
    dest: &Path,
    data: &[u8],
    h: Option<&Hash>,
    store: Option<&crate::store::Store>,
) -> Result<(), InstallError> {
    std::fs::write(dest, data).map_err(io_err(dest))?;
    if let (Some(h), Some(store)) = (h, store) {
        store.put_hashed(h, data)?;
    }
    Ok(())
}

/// The regular newc payload: the calling thread decompresses and parses; a scoped writer
/// thread creates the staged files (and hashes them).
fn stage_newc(
    pkg: &Pkg,
    payload: &mut impl Read,
    staged: &mut Staged,
    buf: &mut [u8],
    hash: bool,
    store: Option<&crate::store::Store>,
) -> Result<(), InstallError> {
    let rpm_path = &pkg.rpm.path;
    let bad = |message: String| InstallError::Package {
        path: rpm_path.clone(),
        message,
    };
    if hash {
        staged.blobs = vec![None; pkg.files.len()];
    }
    std::thread::scope(|sc| -> Result<(), InstallError> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(16);
        let writer = sc.spawn(move || -> Result<Vec<(usize, Hash)>, InstallError> {
            let mut hashes = Vec::new();
            for job in rx {
                let h = hash.then(|| Hash::of(&job.data));
                write_staged(&job.dest, &job.data, h.as_ref(), store)?;
                if let Some(h) = h {
                    hashes.push((job.idx, h));
                }
            }
            Ok(hashes)
        });
        let decoded = (|| -> Result<(), InstallError> {
            loop {
                let mut entry = cpio::NewcReader::new(&mut *payload)
                    .map_err(|e| bad(format!("payload archive: {e}")))?;
                if entry.entry().is_trailer() {
                    return Ok(());
                }
                let name = entry.entry().name().to_string();
                let norm = format!("/{}", name.trim_start_matches("./").trim_start_matches('/'));
                let Some(&i) = pkg.index.get(&norm) else {
                    return Err(bad(format!(
                        "payload entry '{name}' is not in the header's file list (corrupted or hostile package)"
                    )));
                };
                let fi = &pkg.files[i];
                staged.in_payload[i] = true;
                let e = entry.entry();
                staged.rdev[i] = (e.rdev_major(), e.rdev_minor());
                let size = e.file_size();
                if fi.ftype() == S_IFREG && size > 0 {
                    let dest = staged.data_path(i);
                    let read_err =
                        |e: std::io::Error| bad(format!("payload data of {}: {e}", fi.path));
                    if u64::from(size) <= PIPELINED_MAX {
                        let mut data = vec![0u8; size as usize];
                        entry.read_exact(&mut data).map_err(read_err)?;
                        if tx.send(Job { idx: i, dest, data }).is_err() {
                            return Ok(()); // the writer failed: its error is reported below
                        }
                    } else if store.is_some() && u64::from(size) <= STORE_FROM_MEMORY {
                        let mut data = vec![0u8; size as usize];
                        entry.read_exact(&mut data).map_err(read_err)?;
                        let mut h = blake3::Hasher::new();
                        h.update_rayon(&data);
                        let h = Hash::from(h.finalize());
                        write_staged(&dest, &data, Some(&h), store)?;
                        staged.blobs[i] = Some(h);
                    } else {
                        let mut out = File::create(&dest).map_err(io_err(&dest))?;
                        let mut h = blake3::Hasher::new();
                        loop {
                            let k = entry.read(buf).map_err(read_err)?;
                            if k == 0 {
                                break;
                            }
                            if hash {
                                h.update(&buf[..k]);
                            }
                            out.write_all(&buf[..k]).map_err(io_err(&dest))?;
                        }
                        if hash {
                            staged.blobs[i] = Some(Hash::from(h.finalize()));
                        }
                    }
                    staged.has_data[i] = true;
                }
                entry
                    .finish()
                    .map_err(|e| bad(format!("payload archive after {}: {e}", fi.path)))?;
            }
        })();
        drop(tx);
        let written = writer
            .join()
            .map_err(|_| bad("payload writer thread panicked".into()))?;
        decoded?;
        for (i, h) in written? {
            staged.blobs[i] = Some(h);
        }
        Ok(())
    })
}

/// rpm's "stripped" payload (`07070X` + 8 hex digits file index, data padded to 4 bytes, sizes
/// from the header; hardlink data with the last member of a set), used for files over 4 GiB.
fn stage_stripped(
    pkg: &Pkg,
    r: &mut impl Read,
    staged: &mut Staged,
    buf: &mut [u8],
) -> Result<(), InstallError> {
    let rpm_path = &pkg.rpm.path;
    let bad = |message: String| InstallError::Package {
        path: rpm_path.clone(),
        message,
    };
    let mut members: std::collections::HashMap<u32, (usize, usize)> = Default::default();
    for f in &pkg.files {
        if f.ftype() == S_IFREG && !f.is_ghost() {
            members.entry(f.inode).or_default().0 += 1;
        }
    }
    let mut pos: u64 = 0;
    loop {
        let mut hdr = [0u8; 14];
        r.read_exact(&mut hdr[..6])
            .map_err(|e| bad(format!("payload archive: {e}")))?;
        if &hdr[..6] == b"070701" {
            return Ok(()); // the regular newc trailer ends a stripped archive
        }
        if &hdr[..6] != b"07070X" {
            return Err(bad("payload archive: bad stripped-cpio magic".into()));
        }
        r.read_exact(&mut hdr[6..14])
            .map_err(|e| bad(format!("payload archive: {e}")))?;
        pos += 14;
        let idx = std::str::from_utf8(&hdr[6..14])
            .ok()
            .and_then(|h| usize::from_str_radix(h, 16).ok())
            .filter(|i| *i < pkg.files.len())
            .ok_or_else(|| bad("payload archive: bad file index in stripped cpio".into()))?;
        skip(r, &mut pos, 4)?;
        let fi = &pkg.files[idx];
        staged.in_payload[idx] = true;
        let size = if fi.ftype() == S_IFREG {
            let m = members.entry(fi.inode).or_default();
            m.1 += 1;
            if m.1 >= m.0 { fi.size } else { 0 }
        } else if fi.ftype() == super::package::S_IFLNK {
            fi.linkto.len() as u64
        } else {
            0
        };
        let mut left = size;
        let mut out = if fi.ftype() == S_IFREG && size > 0 {
            let dest = staged.data_path(idx);
            staged.has_data[idx] = true;
            Some((File::create(&dest).map_err(io_err(&dest))?, dest))
        } else {
            None
        };
        while left > 0 {
            let k = (left.min(buf.len() as u64)) as usize;
            r.read_exact(&mut buf[..k])
                .map_err(|e| bad(format!("payload data of {}: {e}", fi.path)))?;
            if let Some((o, dest)) = &mut out {
                o.write_all(&buf[..k]).map_err(io_err(dest))?;
            }
            left -= k as u64;
        }
        pos += size;
        skip(r, &mut pos, 4)?;
    }
}

fn skip(r: &mut impl Read, pos: &mut u64, align: u64) -> Result<(), InstallError> {
    let pad = (align - *pos % align) % align;
    let mut b = [0u8; 8];
    r.read_exact(&mut b[..pad as usize])
        .map_err(|e| InstallError::Io {
            path: std::path::PathBuf::from("(payload)"),
            source: e,
        })?;
    *pos += pad;
    Ok(())
}
