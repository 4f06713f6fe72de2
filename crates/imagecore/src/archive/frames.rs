//! Incremental zstd archives: the newc stream cut into groups of entries, each compressed as an
//! independent zstd frame, each frame cached by the identity of its uncompressed bytes.
//!
//! Concatenated zstd frames are one valid zstd stream (RFC 8878 §3.1): GNU `zstd -dc`, busybox's
//! unzstd and the kernel's initramfs decompressor read them all. Group boundaries are
//! content-defined: a group ends after an entry whose path hash hits [`CUT_MASK`], once the group
//! holds [`MIN_GROUP`] bytes (or when it reaches [`MAX_GROUP`]), so an edit changes the frames
//! around it and no others. Inode numbers come from the path hash (probing past collisions)
//! instead of write order, so adding an entry does not renumber every later one.
//!
//! A frame's key is the blake3 of the zstd version, the level and its uncompressed entries, where
//! a file body is represented by its blob id (the blake3 of its content): no file is read for a
//! frame found in the cache. The output depends only on the manifest and the level, never on the
//! cache's content (a cached frame is the bytes the same key compressed to).

use std::collections::HashSet;
use std::io::{self, Read, Write};

use rayon::prelude::*;

use super::newc::{EntryMeta, check_entry, entry_len, pad4, push_header};
use super::pack::{Data, Item, clamp_mtime, manifest_items};
use super::{ArchiveError, BlobSource, PackStats};
use crate::hash::Hash;
use crate::tree::manifest::Manifest;

/// A group ends only once it holds at least this many uncompressed bytes …
pub const MIN_GROUP: u64 = 2 << 20;
/// … after an entry whose path hash has these bits clear (1 in 16 entries) …
pub const CUT_MASK: u32 = 0xf;
/// … or once it reaches this size.
pub const MAX_GROUP: u64 = 16 << 20;
/// Groups larger than this (a group that ends with a large file) are streamed through a
/// multi-threaded encoder instead of being assembled in memory (bounds the memory of files of
/// hundreds of MB); smaller ones are each compressed by one thread of the pool.
const BIG_GROUP: u64 = 2 * MAX_GROUP;
/// Groups being compressed on the pool or waiting to be written hold at most this many
/// uncompressed bytes at once.
const IN_FLIGHT: u64 = 48 << 20;

/// A cached frame: its length and a reader of its bytes.
pub type CachedFrame<'a> = (u64, Box<dyn Read + Send + 'a>);

/// Where previously compressed frames are found.
pub trait FrameCache: Sync {
    /// The compressed frame for `key`, if cached: (length, reader). Must be exactly what
    /// compressing that key's group gave (the store keeps it as a range of an earlier archive).
    fn frame(&self, key: &Hash) -> Option<CachedFrame<'_>>;
}

/// Read a cached frame into memory (frames of small groups), checking its length.
fn read_frame(f: CachedFrame<'_>) -> Result<Vec<u8>, ArchiveError> {
    let (len, r) = f;
    let mut v = Vec::with_capacity(len as usize);
    r.take(len)
        .read_to_end(&mut v)
        .map_err(|e| ArchiveError::io("reading a cached archive frame", e))?;
    if v.len() as u64 != len {
        return Err(ArchiveError::io(
            "reading a cached archive frame",
            io::Error::new(io::ErrorKind::UnexpectedEof, "cached frame is short"),
        ));
    }
    Ok(v)
}

/// A cache that never hits.
pub struct NoFrameCache;

impl FrameCache for NoFrameCache {
    fn frame(&self, _key: &Hash) -> Option<CachedFrame<'_>> {
        None
    }
}

/// One frame of a written archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameRef {
    /// The frame's cache key.
    pub key: Hash,
    /// Byte offset of the frame in the archive.
    pub offset: u64,
    /// Compressed length.
    pub len: u64,
}

/// What [`pack_manifest_framed`] wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FramedStats {
    /// Entries and byte counts.
    pub pack: PackStats,
    /// The frames, in archive order.
    pub frames: Vec<FrameRef>,
    /// Frames compressed in this run.
    pub compressed: u64,
    /// Frames taken from the cache.
    pub reused: u64,
}

struct Group {
    /// Item range.
    start: usize,
    end: usize,
    /// Uncompressed length, trailer included for the last group.
    len: u64,
    trailer: bool,
    key: Hash,
}

/// Inode numbers from the path hash, probing past numbers in use; members of a hardlink group
/// share the number of their first member. Returns the numbers and each name's hash word for
/// the group cuts.
fn assign_inos(items: &[Item]) -> (Vec<u32>, Vec<u32>) {
    let hashes: Vec<[u8; 8]> = items
        .par_iter()
        .map(|it| {
            let h = blake3::hash(&it.name);
            let mut w = [0u8; 8];
            w.copy_from_slice(&h.as_bytes()[..8]);
            w
        })
        .collect();
    let mut used: HashSet<u32> = HashSet::with_capacity(items.len());
    let mut groups: std::collections::HashMap<u64, u32> = std::collections::HashMap::new();
    let mut inos = Vec::with_capacity(items.len());
    let mut cuts = Vec::with_capacity(items.len());
    for (it, h) in items.iter().zip(&hashes) {
        let [a, b, c, d, e, f, g, k] = *h;
        cuts.push(u32::from_le_bytes([e, f, g, k]));
        if let Some(gid) = it.meta.link_group
            && let Some(&i) = groups.get(&gid)
        {
            inos.push(i);
            continue;
        }
        let mut ino = u32::from_le_bytes([a, b, c, d]).max(1);
        while !used.insert(ino) {
            ino = ino.wrapping_add(1).max(1);
        }
        if let Some(gid) = it.meta.link_group {
            groups.insert(gid, ino);
        }
        inos.push(ino);
    }
    (inos, cuts)
}

const TRAILER: &[u8] = b"TRAILER!!!";

fn trailer_meta() -> EntryMeta {
    EntryMeta {
        nlink: 1,
        ..EntryMeta::default()
    }
}

/// The planned archive: items, inode numbers, groups with their keys.
struct Plan {
    items: Vec<Item>,
    blobs: Vec<Hash>,
    inos: Vec<u32>,
    groups: Vec<Group>,
    bytes_in: u64,
}

/// A source that has no blobs (planning never reads any).
struct NoBlobs;

impl BlobSource for NoBlobs {
    fn open_blob(&self, _h: &Hash) -> io::Result<Box<dyn Read + Send + '_>> {
        Err(io::Error::other("internal: planning reads no blob"))
    }
}

fn plan(m: &Manifest, level: i32, sde: Option<i64>) -> Result<Plan, ArchiveError> {
    super::compress::check_zstd_level(level)?;
    let (items, blobs) = manifest_items(m)?;
    let (inos, cuts) = assign_inos(&items);
    // Cut into groups (offsets stay 4-aligned at every entry boundary).
    let mut groups: Vec<Group> = Vec::new();
    let (mut start, mut len, mut offset) = (0usize, 0u64, 0u64);
    for (i, it) in items.iter().enumerate() {
        check_entry(&it.name, &it.meta, offset)?;
        let l = entry_len(&it.name, it.meta.size);
        len += l;
        offset += l;
        if len >= MAX_GROUP || (len >= MIN_GROUP && cuts[i] & CUT_MASK == 0) {
            groups.push(Group {
                start,
                end: i + 1,
                len,
                trailer: false,
                key: Hash([0; 32]),
            });
            (start, len) = (i + 1, 0);
        }
    }
    let tl = entry_len(TRAILER, 0);
    if len > 0 || groups.is_empty() {
        groups.push(Group {
            start,
            end: items.len(),
            len: len + tl,
            trailer: true,
            key: Hash([0; 32]),
        });
    } else if let Some(g) = groups.last_mut() {
        g.trailer = true;
        g.len += tl;
    }
    let ctx = Ctx {
        items: &items,
        inos: &inos,
        blobs: &blobs,
        src: &NoBlobs,
        sde,
        level,
    };
    groups
        .par_iter_mut()
        .for_each(|g| g.key = ctx.key(g.start, g.end, g.trailer));
    Ok(Plan {
        items,
        blobs,
        inos,
        groups,
        bytes_in: offset + tl,
    })
}

/// The frame keys [`pack_manifest_framed`] would write for `m`, in order, with the entry count
/// and uncompressed size, without reading any file: lets a caller find an identical earlier
/// archive instead of writing it again.
pub fn frame_keys(
    m: &Manifest,
    level: i32,
    source_date_epoch: Option<i64>,
) -> Result<(Vec<Hash>, PackStats), ArchiveError> {
    let p = plan(m, level, source_date_epoch)?;
    let stats = PackStats {
        entries: p.items.len() as u64,
        bytes_in: p.bytes_in,
        bytes_out: 0,
    };
    Ok((p.groups.iter().map(|g| g.key).collect(), stats))
}

/// Pack the tree `m` as concatenated zstd frames (see the module doc) into `out`, taking frames
/// from `cache` where it has them. Same entries, order and metadata rules as
/// [`super::pack_manifest`], but inode numbers come from path hashes.
pub fn pack_manifest_framed(
    src: &dyn BlobSource,
    m: &Manifest,
    level: i32,
    source_date_epoch: Option<i64>,
    cache: &dyn FrameCache,
    out: impl Write,
) -> Result<FramedStats, ArchiveError> {
    let Plan {
        items,
        blobs,
        inos,
        groups,
        bytes_in,
    } = plan(m, level, source_date_epoch)?;
    let ctx = Ctx {
        items: &items,
        inos: &inos,
        blobs: &blobs,
        src,
        sde: source_date_epoch,
        level,
    };
    let mut cw = super::pack::CountWriter { inner: out, n: 0 };
    let mut stats = FramedStats::default();
    let streamed = |g: &Group| g.len > BIG_GROUP;
    // Groups are compressed on the pool as the in-flight budget allows and written here in
    // order; a big group is streamed here (its encoder has its own workers).
    super::ordered::ordered_map(
        groups.len(),
        // a streamed group takes the whole budget: its encoder has all cores (and its own
        // buffers) while it runs, and later groups are not compressed ahead meanwhile
        |i| {
            if streamed(&groups[i]) {
                IN_FLIGHT
            } else {
                groups[i].len
            }
        },
        IN_FLIGHT,
        |i| -> Result<Option<(Vec<u8>, bool)>, ArchiveError> {
            let g = &groups[i];
            if streamed(g) {
                return Ok(None);
            }
            match cache.frame(&g.key) {
                Some(f) => read_frame(f).map(|f| Some((f, true))),
                None => ctx.compress_group(g).map(|f| Some((f, false))),
            }
        },
        |i, frame| {
            let g = &groups[i];
            let at = cw.n;
            let hit = match frame? {
                Some((f, hit)) => {
                    write_frame(&mut cw, &f)?;
                    hit
                }
                None => match cache.frame(&g.key) {
                    Some((len, r)) => {
                        // streamed: a big frame is never held in memory
                        let n = io::copy(&mut r.take(len), &mut cw)
                            .map_err(|e| ArchiveError::io("copying a cached archive frame", e))?;
                        if n != len {
                            return Err(ArchiveError::io(
                                "copying a cached archive frame",
                                io::Error::new(
                                    io::ErrorKind::UnexpectedEof,
                                    "cached frame is short",
                                ),
                            ));
                        }
                        true
                    }
                    None => {
                        ctx.stream_group(g, &mut cw)?;
                        false
                    }
                },
            };
            if hit {
                stats.reused += 1;
            } else {
                stats.compressed += 1;
            }
            stats.frames.push(FrameRef {
                key: g.key,
                offset: at,
                len: cw.n - at,
            });
            Ok(())
        },
    )?;
    cw.flush()
        .map_err(|e| ArchiveError::io("writing the archive", e))?;
    stats.pack = PackStats {
        entries: items.len() as u64,
        bytes_in,
        bytes_out: cw.n,
    };
    Ok(stats)
}

fn write_frame(w: &mut impl Write, f: &[u8]) -> Result<(), ArchiveError> {
    w.write_all(f)
        .map_err(|e| ArchiveError::io("writing the archive", e))
}

/// Where a group's bytes go: a frame assembled in memory, or an encoder's buffer.
trait GroupSink: Write {
    /// Append what `r` yields (`size` bytes expected; more or fewer is reported by the count).
    fn fill_from(&mut self, r: &mut dyn Read, size: u64) -> io::Result<u64>;
}

impl GroupSink for Vec<u8> {
    // read straight into the frame (one zeroing of the room; `io::copy` into a `Vec` would zero
    // all of its spare capacity again for every read of a reader without `read_buf`)
    fn fill_from(&mut self, r: &mut dyn Read, size: u64) -> io::Result<u64> {
        let start = self.len();
        self.resize(start + size as usize, 0);
        let n = match crate::ioutil::read_full(r, &mut self[start..]) {
            Ok(n) => n,
            Err(e) => {
                self.truncate(start);
                return Err(e);
            }
        };
        self.truncate(start + n);
        // a longer blob than its entry says is an error too
        let extra = io::copy(r, &mut io::sink())?;
        Ok(n as u64 + extra)
    }
}

impl<W: Write> GroupSink for io::BufWriter<W> {
    fn fill_from(&mut self, r: &mut dyn Read, _size: u64) -> io::Result<u64> {
        io::copy(r, self)
    }
}

struct Ctx<'a> {
    items: &'a [Item],
    inos: &'a [u32],
    blobs: &'a [Hash],
    src: &'a dyn BlobSource,
    sde: Option<i64>,
    level: i32,
}

impl Ctx<'_> {
    fn meta(&self, i: usize) -> EntryMeta {
        let it = &self.items[i];
        let mut m = it.meta.clone();
        m.mtime = clamp_mtime(it.mtime, self.sde);
        m
    }

    /// The key: the frame format version (v2: groups up to [`BIG_GROUP`] compressed by one
    /// thread, larger ones by the multi-threaded encoder), zstd version, level, then each
    /// entry's header and body (a file body by its blob id), then the trailer's header.
    fn key(&self, start: usize, end: usize, trailer: bool) -> Hash {
        let mut h = blake3::Hasher::new();
        h.update(b"osimage newc zstd frame v2\0");
        h.update(&zstd::zstd_safe::version_number().to_le_bytes());
        h.update(&self.level.to_le_bytes());
        let mut buf = Vec::with_capacity(256);
        for i in start..end {
            let it = &self.items[i];
            buf.clear();
            push_header(&mut buf, &it.name, &self.meta(i), self.inos[i], 0);
            h.update(&buf);
            match &it.data {
                Data::None => {}
                Data::Bytes(b) => {
                    h.update(b);
                }
                Data::Open(k) => {
                    h.update(&self.blobs[*k].0);
                }
            }
        }
        if trailer {
            h.update(TRAILER);
        }
        Hash::from(h.finalize())
    }

    fn shown(&self, i: usize) -> String {
        String::from_utf8_lossy(&self.items[i].name).into_owned()
    }

    fn open(&self, i: usize) -> Result<Box<dyn Read + Send + '_>, ArchiveError> {
        let Data::Open(k) = &self.items[i].data else {
            return Ok(Box::new(io::empty()));
        };
        let h = &self.blobs[*k];
        self.src
            .open_blob(h)
            .map_err(|e| ArchiveError::io(format!("reading {} (blob {h})", self.shown(i)), e))
    }

    /// Write the group's uncompressed entries into `w`.
    fn write_group<W: GroupSink + ?Sized>(&self, g: &Group, w: &mut W) -> Result<(), ArchiveError> {
        let mut at = 0u64;
        let mut hdr = Vec::with_capacity(512);
        let werr = |e| ArchiveError::io("writing the archive", e);
        for i in g.start..g.end {
            let it = &self.items[i];
            let meta = self.meta(i);
            hdr.clear();
            push_header(&mut hdr, &it.name, &meta, self.inos[i], 0);
            w.write_all(&hdr).map_err(werr)?;
            at += hdr.len() as u64;
            match &it.data {
                Data::None => {}
                Data::Bytes(b) => w.write_all(b).map_err(werr)?,
                Data::Open(_) => {
                    let mut r = self.open(i)?.take(meta.size + 1);
                    let n = w
                        .fill_from(&mut r, meta.size)
                        .map_err(|e| ArchiveError::io(format!("reading {}", self.shown(i)), e))?;
                    if n != meta.size {
                        return Err(ArchiveError::SizeMismatch {
                            path: self.shown(i),
                            expected: meta.size,
                            got: n,
                        });
                    }
                }
            }
            at += meta.size;
            let p = pad4(at);
            w.write_all(&[0u8; 4][..p]).map_err(werr)?;
            at += p as u64;
        }
        if g.trailer {
            hdr.clear();
            push_header(&mut hdr, TRAILER, &trailer_meta(), 0, 0);
            w.write_all(&hdr).map_err(werr)?;
        }
        Ok(())
    }

    /// Assemble a small group in memory and compress it as one frame.
    fn compress_group(&self, g: &Group) -> Result<Vec<u8>, ArchiveError> {
        let mut raw = Vec::with_capacity(g.len as usize);
        self.write_group(g, &mut raw)?;
        let zerr = |e| ArchiveError::io("compressing an archive frame", e);
        let mut c = zstd::bulk::Compressor::new(self.level).map_err(zerr)?;
        c.set_parameter(zstd::stream::raw::CParameter::ChecksumFlag(true))
            .map_err(zerr)?;
        c.compress(&raw).map_err(zerr)
    }

    /// Stream a big group through a multi-threaded encoder (one frame; the bytes do not depend
    /// on the worker count).
    fn stream_group(&self, g: &Group, w: &mut dyn Write) -> Result<(), ArchiveError> {
        let zerr = |e| ArchiveError::io("compressing an archive frame", e);
        let mut enc = zstd::stream::write::Encoder::new(w, self.level).map_err(zerr)?;
        enc.include_checksum(true).map_err(zerr)?;
        enc.set_pledged_src_size(Some(g.len)).map_err(zerr)?;
        enc.multithread(super::compress::worker_count(0))
            .map_err(zerr)?;
        let mut buf = io::BufWriter::with_capacity(1 << 20, &mut enc);
        self.write_group(g, &mut buf)?;
        buf.flush().map_err(zerr)?;
        drop(buf);
        enc.finish().map_err(zerr)?;
        Ok(())
    }
}
