//! Packing a tree (a manifest over a [`BlobSource`], or a directory) into a compressed newc
//! archive, with blob reads running ahead on the rayon pool while this thread writes.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, sync_channel};

use rayon::prelude::*;

use super::compress::{compressor, pad_stream};
use super::newc::{EntryMeta, NewcWriter};
use super::{ArchiveError, BlobSource, PackOptions, PackStats};
use crate::hash::Hash;
use crate::tree::manifest::{Kind, Manifest, path_order};

/// Files up to this size are read ahead into memory; bigger ones are streamed by the writer.
const SMALL: u64 = 4 << 20;
/// A read-ahead batch holds at most this many bytes …
const BATCH_BYTES: u64 = 32 << 20;
/// … and this many files.
const BATCH_FILES: usize = 512;
/// Buffer between the newc writer and the compressor.
const WRITE_BUF: usize = 1 << 20;

pub(super) enum Data {
    None,
    Bytes(Vec<u8>),
    /// Index into the caller's list of contents to open.
    Open(usize),
}

pub(super) struct Item {
    pub(super) name: Vec<u8>,
    pub(super) meta: EntryMeta,
    pub(super) mtime: i64,
    pub(super) data: Data,
}

enum Fetched {
    Bytes(Vec<u8>),
    Stream,
    Err(io::Error),
}

/// Compressed output travels to the writing thread in chunks of this size …
const OUT_CHUNK: usize = 1 << 20;
/// … with at most this many chunks in flight.
const OUT_CHUNKS: usize = 64;

/// A writer that sends its bytes, in `OUT_CHUNK` pieces, to another thread.
struct ChannelWriter {
    tx: std::sync::mpsc::SyncSender<Vec<u8>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(&mut self.buf, Vec::with_capacity(OUT_CHUNK));
        self.tx
            .send(full)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the archive writer stopped"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(OUT_CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= OUT_CHUNK {
            self.send()?;
        }
        Ok(n)
    }
    /// Called once, by the compressor's `finish()`: send what is left.
    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// A writer that counts the bytes passed through it.
pub(crate) struct CountWriter<W> {
    pub(crate) inner: W,
    pub(crate) n: u64,
}

impl<W: Write> Write for CountWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let k = self.inner.write(buf)?;
        self.n += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

pub(super) fn clamp_mtime(mtime: i64, sde: Option<i64>) -> u32 {
    let t = match sde {
        Some(s) => mtime.min(s),
        None => mtime,
    };
    t.clamp(0, u32::MAX as i64) as u32
}

/// Hardlink groups: the first member (in write order) keeps the data, the others get size 0;
/// every member records the group size as its link count.
pub(super) fn settle_links(items: &mut [Item]) {
    let mut count: HashMap<u64, u32> = HashMap::new();
    for it in items.iter() {
        if let Some(g) = it.meta.link_group {
            *count.entry(g).or_default() += 1;
        }
    }
    let mut seen = std::collections::HashSet::new();
    for it in items.iter_mut() {
        if let Some(g) = it.meta.link_group {
            it.meta.nlink = count.get(&g).copied().unwrap_or(1);
            if !seen.insert(g) {
                it.meta.size = 0;
                it.data = Data::None;
            }
        }
    }
}

fn read_small(r: io::Result<Box<dyn Read + Send + '_>>, size: u64) -> Fetched {
    let mut r = match r {
        Ok(r) => r,
        Err(e) => return Fetched::Err(e),
    };
    let mut v = Vec::with_capacity(size as usize);
    // One byte more than expected, so a longer content shows up as a size mismatch.
    match (&mut r).take(size + 1).read_to_end(&mut v) {
        Ok(_) => Fetched::Bytes(v),
        Err(e) => Fetched::Err(e),
    }
}

fn pack_items<'s, F>(
    items: &[Item],
    open: &F,
    out: impl Write,
    opts: &PackOptions,
) -> Result<PackStats, ArchiveError>
where
    F: Fn(usize) -> io::Result<Box<dyn Read + Send + 's>> + Sync,
{
    let fetch: Vec<(usize, u64)> = items
        .iter()
        .filter_map(|it| match it.data {
            Data::Open(src) => Some((src, it.meta.size)),
            _ => None,
        })
        .collect();
    let mut cw = CountWriter { inner: out, n: 0 };
    let bytes_in = std::thread::scope(|s| -> Result<u64, ArchiveError> {
        let (tx, rx) = sync_channel::<Vec<Fetched>>(2);
        let fetch = &fetch;
        s.spawn(move || {
            let mut i = 0;
            while i < fetch.len() {
                let (mut j, mut bytes) = (i, 0u64);
                while j < fetch.len() && j - i < BATCH_FILES && bytes < BATCH_BYTES {
                    if fetch[j].1 <= SMALL {
                        bytes += fetch[j].1;
                    }
                    j += 1;
                }
                let batch: Vec<Fetched> = fetch[i..j]
                    .par_iter()
                    .map(|&(src, size)| match size {
                        0 => Fetched::Bytes(Vec::new()),
                        s if s > SMALL => Fetched::Stream,
                        s => read_small(open(src), s),
                    })
                    .collect();
                if tx.send(batch).is_err() {
                    return; // the writer stopped (error): stop reading ahead
                }
                i = j;
            }
        });
        // Compress on another thread; this one only writes the compressed chunks to `out`, so a
        // stalled output (dirty-page throttling) does not stop the compressor being fed.
        let (otx, orx) = sync_channel::<Vec<u8>>(OUT_CHUNKS);
        let worker = s.spawn(move || {
            let mut chan = ChannelWriter {
                tx: otx,
                buf: Vec::with_capacity(OUT_CHUNK),
            };
            write_items(items, open, rx, &mut chan, opts)
        });
        let mut failed = None;
        for chunk in orx {
            if let Err(e) = cw.write_all(&chunk) {
                failed = Some(ArchiveError::io("writing the archive", e));
                break; // dropping the receiver stops the compressing thread
            }
        }
        let res = match worker.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        match failed {
            Some(e) => Err(e),
            None => res,
        }
    })?;
    let bytes_out_stream = cw.n;
    if let Some(p) = opts.pad_to {
        let pad = pad_stream(bytes_out_stream, p, &opts.compress)?;
        cw.write_all(&pad)
            .and_then(|_| cw.flush())
            .map_err(|e| ArchiveError::io("writing the archive padding", e))?;
    }
    Ok(PackStats {
        entries: items.len() as u64,
        bytes_in,
        bytes_out: cw.n,
    })
}

fn write_items<'s, F, W: Write>(
    items: &[Item],
    open: &F,
    rx: Receiver<Vec<Fetched>>,
    out: &mut W,
    opts: &PackOptions,
) -> Result<u64, ArchiveError>
where
    F: Fn(usize) -> io::Result<Box<dyn Read + Send + 's>> + Sync,
{
    let comp = compressor(out, &opts.compress)?;
    let mut nw = NewcWriter::new(BufWriter::with_capacity(WRITE_BUF, comp));
    let mut batch = Vec::new().into_iter();
    for it in items {
        let mut meta = it.meta.clone();
        meta.mtime = clamp_mtime(it.mtime, opts.source_date_epoch);
        match &it.data {
            Data::None => nw.append_bytes(&it.name, &meta, &[])?,
            Data::Bytes(b) => nw.append_bytes(&it.name, &meta, b)?,
            Data::Open(src) => {
                let f = match batch.next() {
                    Some(f) => f,
                    None => {
                        batch = rx
                            .recv()
                            .map_err(|_| {
                                ArchiveError::io(
                                    "reading ahead file contents",
                                    io::Error::other("the read-ahead thread stopped"),
                                )
                            })?
                            .into_iter();
                        batch.next().ok_or_else(|| {
                            ArchiveError::io(
                                "reading ahead file contents",
                                io::Error::other("empty batch"),
                            )
                        })?
                    }
                };
                let shown = || String::from_utf8_lossy(&it.name).into_owned();
                match f {
                    Fetched::Bytes(v) => nw.append_bytes(&it.name, &meta, &v)?,
                    Fetched::Stream => {
                        let mut r = open(*src)
                            .map_err(|e| ArchiveError::io(format!("reading {}", shown()), e))?;
                        nw.append(&it.name, &meta, &mut r)?
                    }
                    Fetched::Err(e) => {
                        return Err(ArchiveError::io(format!("reading {}", shown()), e));
                    }
                }
            }
        }
    }
    nw.write_trailer()?;
    let bytes_in = nw.bytes_written();
    // BufWriter::into_inner writes out what it holds (the compressor's flush is a no-op).
    let comp = nw
        .into_inner()
        .into_inner()
        .map_err(|e| ArchiveError::io("writing the archive", e.into_error()))?;
    comp.finish()
        .map_err(|e| ArchiveError::io("finishing the compressed stream", e))?;
    Ok(bytes_in)
}

/// Pack the tree `m` (contents from `src`) as a deterministic newc archive into `out`.
///
/// Entries are written in manifest order (which puts parents before children), sockets are
/// skipped, mtimes clamped to `opts.source_date_epoch`, hardlink data goes with the first member
/// of its group. Blobs are read ahead on the rayon pool while this thread writes; zstd compresses
/// on its own worker threads.
pub fn pack_manifest(
    src: &dyn BlobSource,
    m: &Manifest,
    out: impl Write,
    opts: &PackOptions,
) -> Result<PackStats, ArchiveError> {
    let (items, blobs) = manifest_items(m)?;
    let open = |i: usize| -> io::Result<Box<dyn Read + Send + '_>> {
        let h = &blobs[i];
        src.open_blob(h)
            .map_err(|e| io::Error::new(e.kind(), format!("blob {h}: {e}")))
    };
    pack_items(&items, &open, out, opts)
}

/// The archive items of a sorted manifest (sockets skipped, hardlinks settled) and the blobs
/// their `Data::Open` indexes refer to.
pub(super) fn manifest_items(m: &Manifest) -> Result<(Vec<Item>, Vec<Hash>), ArchiveError> {
    for w in m.entries.windows(2) {
        if path_order(&w[0].path, &w[1].path) != std::cmp::Ordering::Less {
            return Err(ArchiveError::Format {
                offset: 0,
                msg: format!(
                    "manifest is not sorted or has duplicates at {:?} / {:?}; call Manifest::sort first",
                    w[0].path, w[1].path
                ),
            });
        }
    }
    let mut blobs: Vec<Hash> = Vec::new();
    let mut items = Vec::with_capacity(m.entries.len());
    for e in &m.entries {
        let mut meta = EntryMeta {
            mode: e.st_mode(),
            uid: e.uid,
            gid: e.gid,
            nlink: 1,
            ..EntryMeta::default()
        };
        let data = match &e.kind {
            Kind::Socket => continue,
            Kind::Dir => {
                meta.nlink = 2;
                Data::None
            }
            Kind::Fifo => Data::None,
            Kind::Char { major, minor } | Kind::Block { major, minor } => {
                meta.rdev_major = *major;
                meta.rdev_minor = *minor;
                Data::None
            }
            Kind::Symlink { target } => {
                meta.size = target.len() as u64;
                Data::Bytes(target.as_bytes().to_vec())
            }
            Kind::File { blob, size, link } => {
                meta.size = *size;
                meta.link_group = link.map(u64::from);
                if *size > u32::MAX as u64 {
                    return Err(ArchiveError::TooLarge {
                        path: e.path.clone(),
                        size: *size,
                    });
                }
                blobs.push(*blob);
                Data::Open(blobs.len() - 1)
            }
        };
        items.push(Item {
            name: e.path.as_bytes().to_vec(),
            meta,
            mtime: e.mtime,
            data,
        });
    }
    settle_links(&mut items);
    Ok((items, blobs))
}

/// Pack the directory `dir` (not following symlinks) with the same deterministic writer:
/// entries in path-component order, names relative to `dir` (no `./`), owners/modes/mtimes
/// from the files, hardlinks detected by inode within the tree, sockets skipped. Used for initrds
/// assembled in a staging directory.
pub fn pack_dir(
    dir: &Path,
    out: impl Write,
    opts: &PackOptions,
) -> Result<PackStats, ArchiveError> {
    let mut paths: Vec<PathBuf> = Vec::new();
    let mut items = Vec::new();
    let mut inodes: HashMap<(u64, u64), u64> = HashMap::new();
    for ent in walkdir::WalkDir::new(dir)
        .follow_links(false)
        .sort_by_file_name()
        .min_depth(1)
    {
        let ent = ent.map_err(|e| {
            let p = e.path().unwrap_or(dir).display().to_string();
            ArchiveError::io(format!("reading {p}"), e.into())
        })?;
        let md = ent
            .metadata()
            .map_err(|e| ArchiveError::io(format!("reading {}", ent.path().display()), e.into()))?;
        let rel = ent.path().strip_prefix(dir).unwrap_or(ent.path());
        let ft = md.file_type();
        let mut meta = EntryMeta {
            mode: md.mode(),
            uid: md.uid(),
            gid: md.gid(),
            nlink: 1,
            ..EntryMeta::default()
        };
        let data = if ft.is_socket() {
            continue;
        } else if ft.is_dir() {
            meta.nlink = 2;
            Data::None
        } else if ft.is_symlink() {
            let t = std::fs::read_link(ent.path()).map_err(|e| {
                ArchiveError::io(format!("reading link {}", ent.path().display()), e)
            })?;
            let t = t.as_os_str().as_bytes().to_vec();
            meta.size = t.len() as u64;
            Data::Bytes(t)
        } else if ft.is_char_device() || ft.is_block_device() {
            let rdev = md.rdev();
            meta.rdev_major = rustix::fs::major(rdev);
            meta.rdev_minor = rustix::fs::minor(rdev);
            Data::None
        } else if ft.is_fifo() {
            Data::None
        } else {
            meta.size = md.len();
            if md.len() > u32::MAX as u64 {
                return Err(ArchiveError::TooLarge {
                    path: ent.path().display().to_string(),
                    size: md.len(),
                });
            }
            if md.nlink() > 1 {
                let next = inodes.len() as u64;
                meta.link_group = Some(*inodes.entry((md.dev(), md.ino())).or_insert(next));
            }
            paths.push(ent.path().to_path_buf());
            Data::Open(paths.len() - 1)
        };
        items.push(Item {
            name: rel.as_os_str().as_bytes().to_vec(),
            meta,
            mtime: md.mtime(),
            data,
        });
    }
    settle_links(&mut items);
    let open = |i: usize| -> io::Result<Box<dyn Read + Send + '_>> {
        let p = &paths[i];
        File::open(p)
            .map(|f| Box::new(f) as Box<dyn Read + Send>)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))
    };
    pack_items(&items, &open, out, opts)
}
