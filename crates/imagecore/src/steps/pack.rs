//! `pack`: the deterministic root image archive (newc cpio, zstd by default; gzip or xz for
//! compatibility), streamed from the store without materialising the tree.
//!
//! zstd archives are written as independent frames per group of entries
//! ([`crate::archive::pack_manifest_framed`]); the frames of the last few archives are found
//! again through the store record `pack-frames`, so a rebuild after a small change compresses
//! only the frames whose entries changed. The archive is streamed straight into the store (one
//! write) and exported by hard link when the store and `rootimgdir` share a filesystem.
//!
//! Export writes `rootimgdir/rootimg.cpio.<zst|gz|xz>` atomically, and only after the new
//! archive is complete removes stale `rootimg.*` siblings (xCAT #2225: a node must never boot an
//! old image, and there must never be no image while packing).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::archive::{
    BlobSource, CachedFrame, Compress, FrameCache, FrameRef, PackOptions, PackStats,
};
use crate::error::Error;
use crate::graph::step::{Inputs, NodeKind, Output, Step, StepCtx};
use crate::hash::Hash;
use crate::spec::{self, Spec};
use crate::store::Store;

impl BlobSource for Store {
    fn open_blob(&self, h: &Hash) -> std::io::Result<Box<dyn std::io::Read + Send + '_>> {
        Store::open_blob(self, h).map_err(std::io::Error::other)
    }
}

/// The pack step.
pub struct Pack {
    compress: spec::Compress,
    level: i32,
    epoch: i64,
    rootimgdir: PathBuf,
}

impl Pack {
    /// From the spec's `[pack]`.
    pub fn new(spec: &Spec) -> Pack {
        Pack {
            compress: spec.pack.compress,
            level: spec.pack.level,
            epoch: spec.pack.source_date_epoch,
            rootimgdir: spec.image.rootimgdir.clone(),
        }
    }

    /// The archive file name, e.g. `rootimg.cpio.zst`.
    pub fn file_name(&self) -> &'static str {
        match self.compress {
            spec::Compress::Zstd => "rootimg.cpio.zst",
            spec::Compress::Gzip => "rootimg.cpio.gz",
            spec::Compress::Xz => "rootimg.cpio.xz",
        }
    }

    fn codec(&self) -> Compress {
        match self.compress {
            // Fixed thread count: the compressed bytes must not depend on the machine.
            spec::Compress::Zstd => Compress::Zstd {
                level: self.level,
                threads: 2,
            },
            spec::Compress::Gzip => Compress::Gzip {
                level: self.level.clamp(1, 9) as u32,
            },
            spec::Compress::Xz => Compress::Xz {
                level: self.level.clamp(0, 9) as u32,
            },
        }
    }
}

impl Step for Pack {
    fn kind(&self) -> NodeKind {
        NodeKind::Pack
    }

    fn version(&self) -> u32 {
        // 2: zstd as independent frames per group of entries, path-hash inode numbers;
        // 3: groups up to 32 MiB compressed by one thread each (were multi-threaded over 8 MiB)
        3
    }

    fn inputs(&self) -> Result<Inputs, Error> {
        let mut i = Inputs::default();
        i.option("method", "cpio")
            .option("compress", format!("{:?}", self.codec()))
            .option("source_date_epoch", self.epoch);
        Ok(i)
    }

    fn run(&self, ctx: &StepCtx<'_>, parents: &[&Output]) -> Result<Output, Error> {
        let m = super::util::parent_tree(ctx, parents)?;
        let packed = pack_into_store(ctx.store, &m, &self.codec(), self.epoch)?;
        let mut out = Output::default();
        out.artifacts
            .insert(self.file_name().to_string(), packed.blob);
        out.meta
            .insert("entries".into(), packed.stats.entries.to_string());
        out.meta
            .insert("bytes_in".into(), packed.stats.bytes_in.to_string());
        out.meta
            .insert("bytes_out".into(), packed.stats.bytes_out.to_string());
        if let Some((compressed, reused)) = packed.frames {
            out.meta
                .insert("frames_compressed".into(), compressed.to_string());
            out.meta.insert("frames_reused".into(), reused.to_string());
            tracing::info!(
                "{}: {compressed} archive frames compressed, {reused} reused",
                ctx.node
            );
        }
        Ok(out)
    }

    fn export(
        &self,
        store: &Store,
        out: &Output,
        _opts: &crate::graph::step::ExportOptions,
    ) -> Result<(), Error> {
        let name = self.file_name();
        let Some(blob) = out.artifacts.get(name) else {
            return Err(Error::Step {
                node: "pack".into(),
                message: format!("cached output has no {name}; run `osimage cache verify`"),
            });
        };
        let dest = self.rootimgdir.join(name);
        if !link_export(store, blob, &dest)? {
            super::util::export_blob(store, blob, &dest)?;
        }
        // Only now that the new archive is complete: drop stale images of other formats.
        if let Ok(rd) = std::fs::read_dir(&self.rootimgdir) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                let stale = (n.starts_with("rootimg.") || n.starts_with(".rootimg."))
                    && n != name
                    && n != format!(".{name}.osimage")
                    && e.file_type().is_ok_and(|t| t.is_file());
                if stale {
                    std::fs::remove_file(e.path()).map_err(|err| Error::io(e.path(), err))?;
                }
            }
        }
        Ok(())
    }
}

/// What [`pack_into_store`] stored.
#[derive(Clone, Debug)]
pub struct Packed {
    /// The archive blob.
    pub blob: Hash,
    /// Entries and sizes.
    pub stats: PackStats,
    /// For zstd: (frames compressed, frames reused from earlier archives).
    pub frames: Option<(u64, u64)>,
}

/// Pack the tree `m` (blobs in `store`) with `codec` into a new store blob, written once. zstd
/// goes through the frame cache (record [`FRAMES_RECORD`]); gzip/xz/none are one stream.
pub fn pack_into_store(
    store: &Store,
    m: &crate::tree::Manifest,
    codec: &Compress,
    epoch: i64,
) -> Result<Packed, Error> {
    let Compress::Zstd { level, .. } = codec else {
        let mut w = store.blob_writer()?;
        let opts = PackOptions {
            source_date_epoch: Some(epoch),
            compress: codec.clone(),
            pad_to: None,
        };
        let stats = crate::archive::pack_manifest(store, m, &mut w, &opts)?;
        w.flush().map_err(|e| Error::io(store.dir(), e))?;
        let (blob, _) = w.finish()?;
        return Ok(Packed {
            blob,
            stats,
            frames: None,
        });
    };
    let table = FrameTable::load(store);
    // The same frames as an archive in the store: that archive is the result (nothing is read,
    // compressed or written).
    let (keys, planned) = crate::archive::frame_keys(m, *level, Some(epoch))?;
    if let Some((blob, frames)) = table.whole_archive(&keys) {
        let bytes_out = frames.iter().map(|f| f.len).sum();
        table.save(store, blob, &frames)?;
        return Ok(Packed {
            blob,
            stats: PackStats {
                bytes_out,
                ..planned
            },
            frames: Some((0, frames.len() as u64)),
        });
    }
    let mut w = store.blob_writer()?;
    let st = crate::archive::pack_manifest_framed(store, m, *level, Some(epoch), &table, &mut w)?;
    w.flush().map_err(|e| Error::io(store.dir(), e))?;
    let (blob, _) = w.finish()?;
    table.save(store, blob, &st.frames)?;
    Ok(Packed {
        blob,
        stats: st.pack,
        frames: Some((st.compressed, st.reused)),
    })
}

/// The store record listing the frames of recent zstd archives.
pub const FRAMES_RECORD: &str = "pack-frames";
const FRAMES_MAGIC: &[u8; 8] = b"OSFRM1\n\0";
/// Frames of at most this many archives are remembered (the newest first).
const FRAMES_ARCHIVES: usize = 4;
const FRAME_REC: usize = 32 + 32 + 8 + 8;

/// The frames of earlier archives: frame key → (archive blob, offset, length).
struct FrameTable<'s> {
    store: &'s Store,
    /// (key, archive, offset, len), newest archive first.
    entries: Vec<(Hash, Hash, u64, u64)>,
    by_key: std::collections::HashMap<Hash, usize>,
}

impl<'s> FrameTable<'s> {
    /// Load the record; a missing or damaged one is an empty table (it is only a cache).
    fn load(store: &'s Store) -> FrameTable<'s> {
        let mut entries = Vec::new();
        if let Ok(Some(data)) = store.get_record(FRAMES_RECORD)
            && data.starts_with(FRAMES_MAGIC)
            && (data.len() - FRAMES_MAGIC.len()).is_multiple_of(FRAME_REC)
        {
            for r in data[FRAMES_MAGIC.len()..].chunks_exact(FRAME_REC) {
                let h = |a: usize| {
                    let mut b = [0u8; 32];
                    b.copy_from_slice(&r[a..a + 32]);
                    Hash(b)
                };
                let n = |a: usize| u64::from_le_bytes(r[a..a + 8].try_into().unwrap_or([0; 8]));
                entries.push((h(0), h(32), n(64), n(72)));
            }
        }
        let mut by_key = std::collections::HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            by_key.entry(e.0).or_insert(i);
        }
        FrameTable {
            store,
            entries,
            by_key,
        }
    }

    /// The frames of a stored archive whose frame keys are exactly `keys`, in order.
    fn whole_archive(&self, keys: &[Hash]) -> Option<(Hash, Vec<FrameRef>)> {
        let mut i = 0;
        while i < self.entries.len() {
            let a = self.entries[i].1;
            let mut j = i;
            while j < self.entries.len() && self.entries[j].1 == a {
                j += 1;
            }
            let run = &self.entries[i..j];
            let same = run.len() == keys.len()
                && run.iter().zip(keys).all(|(e, k)| e.0 == *k)
                && run.windows(2).all(|w| w[0].2 + w[0].3 == w[1].2)
                && run.first().is_some_and(|e| e.2 == 0);
            if same {
                let total: u64 = run.iter().map(|e| e.3).sum();
                if self.store.blob_size(&a).is_ok_and(|n| n == total) {
                    let frames = run
                        .iter()
                        .map(|e| FrameRef {
                            key: e.0,
                            offset: e.2,
                            len: e.3,
                        })
                        .collect();
                    return Some((a, frames));
                }
            }
            i = j;
        }
        None
    }

    /// Record the frames of the new archive first, then those of earlier archives still stored.
    fn save(&self, store: &Store, archive: Hash, frames: &[FrameRef]) -> Result<(), Error> {
        let mut data = FRAMES_MAGIC.to_vec();
        let mut push = |k: &Hash, a: &Hash, off: u64, len: u64| {
            data.extend_from_slice(&k.0);
            data.extend_from_slice(&a.0);
            data.extend_from_slice(&off.to_le_bytes());
            data.extend_from_slice(&len.to_le_bytes());
        };
        for f in frames {
            push(&f.key, &archive, f.offset, f.len);
        }
        let mut archives = vec![archive];
        for (k, a, off, len) in &self.entries {
            if !archives.contains(a) {
                if archives.len() >= FRAMES_ARCHIVES || !store.has(a) {
                    continue;
                }
                archives.push(*a);
            }
            if *a != archive {
                push(k, a, *off, *len);
            }
        }
        Ok(store.put_record(FRAMES_RECORD, &data)?)
    }
}

impl FrameCache for FrameTable<'_> {
    fn frame(&self, key: &Hash) -> Option<CachedFrame<'_>> {
        let &i = self.by_key.get(key)?;
        let (_, archive, off, len) = self.entries[i];
        // a frame starts with the zstd magic; anything else is a stale record
        let magic = self.store.read_range(&archive, off, 4.min(len)).ok()?;
        if magic != [0x28, 0xb5, 0x2f, 0xfd] {
            return None;
        }
        let r = self.store.open_range(&archive, off, len).ok()?;
        Some((len, r))
    }
}

/// Export by hard link from the store (no copy, no second write) when possible: same
/// filesystem and a bare archive blob. Returns false when the caller must copy.
fn link_export(store: &Store, blob: &Hash, dest: &Path) -> Result<bool, Error> {
    let t = super::util::ExportTarget::new(dest)?;
    if t.holds(blob) {
        return Ok(true); // already exported
    }
    let tmp = t
        .dir
        .join(format!(".{}.link-{}", t.name, std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    if !store.link_blob(blob, &tmp)? {
        return Ok(false);
    }
    t.publish(&tmp, blob)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::manifest::{Entry, Kind, Manifest};

    fn file(store: &Store, path: &str, content: &[u8]) -> Entry {
        Entry {
            path: path.into(),
            kind: Kind::File {
                blob: store.put_bytes(content).unwrap(),
                size: content.len() as u64,
                link: None,
            },
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 1_600_000_000,
            xattrs: Default::default(),
        }
    }

    fn tree(store: &Store, motd: &[u8]) -> Manifest {
        let mut e = vec![file(store, "etc/motd", motd)];
        for d in 0..6 {
            e.push(Entry {
                path: format!("d{d}"),
                kind: Kind::Dir,
                mode: 0o755,
                uid: 0,
                gid: 0,
                mtime: 0,
                xattrs: Default::default(),
            });
            for i in 0..30 {
                let body: Vec<u8> = format!("{d}/{i} some text of file {i}\n")
                    .repeat(3000 + i * 101)
                    .into_bytes();
                e.push(file(store, &format!("d{d}/f{i}"), &body));
            }
        }
        e.push(Entry {
            path: "etc".into(),
            kind: Kind::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
            mtime: 0,
            xattrs: Default::default(),
        });
        let mut m = Manifest { entries: e };
        m.sort();
        m
    }

    #[test]
    fn a_rebuild_reuses_the_frames_of_the_last_archive_and_exports_by_link() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(&d.path().join("cache")).unwrap();
        let codec = Compress::Zstd {
            level: 3,
            threads: 2,
        };
        let a = pack_into_store(&store, &tree(&store, b"one\n"), &codec, 0).unwrap();
        let (compressed, reused) = a.frames.unwrap();
        assert!(compressed >= 4 && reused == 0, "{compressed} {reused}");
        let b = pack_into_store(&store, &tree(&store, b"two\n"), &codec, 0).unwrap();
        let (c2, r2) = b.frames.unwrap();
        assert_eq!(c2, 1, "only the frame holding etc/motd is compressed again");
        assert_eq!(r2, compressed - 1);
        // the same tree again: the stored archive, nothing compressed nor written
        let again = pack_into_store(&store, &tree(&store, b"two\n"), &codec, 0).unwrap();
        assert_eq!(again.blob, b.blob);
        assert_eq!(again.frames, Some((0, compressed)));
        assert_eq!(again.stats, b.stats);
        // identical to a pack into an empty store
        let fresh = Store::open(&d.path().join("fresh")).unwrap();
        let f = pack_into_store(&fresh, &tree(&fresh, b"two\n"), &codec, 0).unwrap();
        assert_eq!(f.blob, b.blob);
        assert_eq!(f.frames, Some((compressed, 0)));
        // the archive is written once, as a bare pack, and exported by hard link
        let dest = d.path().join("out/rootimg.cpio.zst");
        assert!(link_export(&store, &b.blob, &dest).unwrap());
        assert!(link_export(&store, &b.blob, &dest).unwrap(), "up to date");
        assert_eq!(std::fs::read(&dest).unwrap(), store.read(&b.blob).unwrap());
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&dest).unwrap().nlink(), 2);
        let names: Vec<String> = std::fs::read_dir(d.path().join("out"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "archive and its sidecar only: {names:?}");
        assert!(store.verify().unwrap().ok());
    }
}
