//! Garbage collection (drop unkept outputs and unreachable blobs, compact packs) and
//! verification (re-hash every blob).

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use rayon::prelude::*;
use serde::Serialize;

use crate::hash::Hash;

use super::pack::{
    FLAG_BARE, FLAG_ZSTD, Loc, PackRef, REC_HDR, fsync_dir, parse_record_header, read_index,
};
use super::writer::IN_MEMORY_LIMIT;
use super::{Store, StoreError};

/// A pack and its index entries.
type PackEntries = (Arc<PackRef>, Vec<(Hash, Loc)>);

/// Packs smaller than this are merged by gc once there are more than [`SMALL_PACKS_MAX`].
const SMALL_PACK: u64 = 256 << 20;
const SMALL_PACKS_MAX: usize = 8;

/// What `gc` did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GcReport {
    /// Outputs kept.
    pub outputs_kept: usize,
    /// Outputs removed (not kept, or referencing missing blobs).
    pub outputs_removed: usize,
    /// Distinct blobs still stored.
    pub blobs_kept: usize,
    /// Blobs dropped.
    pub blobs_removed: usize,
    /// Pack files before.
    pub packs_before: usize,
    /// Pack files after.
    pub packs_after: usize,
    /// Bytes of pack files and indexes before.
    pub bytes_before: u64,
    /// Bytes of pack files and indexes after.
    pub bytes_after: u64,
    /// Postinstall checkouts (`checkouts/`, derived data, rebuilt on demand) removed.
    pub checkouts_removed: usize,
}

/// One problem `verify` found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifyProblem {
    /// The blob (or, for an incomplete output, the output key).
    pub hash: Hash,
    /// The file involved.
    pub path: std::path::PathBuf,
    /// What is wrong.
    pub what: String,
}

/// What `verify` found. `osimage cache verify` exits non-zero unless [`VerifyReport::ok`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Blob records checked (every index entry of every pack).
    pub blobs_checked: usize,
    /// Content bytes re-hashed.
    pub bytes_checked: u64,
    /// Outputs checked for completeness.
    pub outputs_checked: usize,
    /// Damaged blobs.
    pub bad_blobs: Vec<VerifyProblem>,
    /// Outputs that reference a missing or unreadable blob.
    pub incomplete_outputs: Vec<VerifyProblem>,
}

impl VerifyReport {
    /// True when nothing is wrong.
    pub fn ok(&self) -> bool {
        self.bad_blobs.is_empty() && self.incomplete_outputs.is_empty()
    }
}

/// Every run of exactly 64 hex digits in `data` that parses as a hash.
fn hex_keys(data: &[u8]) -> Vec<Hash> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < data.len() {
        if data[i].is_ascii_hexdigit() {
            let start = i;
            while i < data.len() && data[i].is_ascii_hexdigit() {
                i += 1;
            }
            if i - start == 64
                && let Ok(s) = std::str::from_utf8(&data[start..i])
                && let Some(h) = Hash::from_hex(&s.to_ascii_lowercase())
            {
                out.push(h);
            }
        } else {
            i += 1;
        }
    }
    out
}

fn file_len(p: &std::path::Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

impl Store {
    /// Drop every output whose key is not in `keep` (outputs whose keys appear as 64-hex-digit
    /// strings in any record are kept too), then every blob no kept output references; packs
    /// holding dropped blobs are rewritten, and many small packs are merged. Takes the lock
    /// unless this handle holds it; must not run while this process builds.
    pub fn gc(&self, keep: &[Hash]) -> Result<GcReport, StoreError> {
        let _guard = if self.holds_lock() {
            None
        } else {
            Some(self.lock()?)
        };
        self.flush()?;
        self.drop_index();
        let mut rep = GcReport::default();
        let mut keepset: HashSet<Hash> = keep.iter().copied().collect();
        for name in self.record_names()? {
            if let Some(data) = self.get_record(&name)? {
                keepset.extend(hex_keys(&data));
            }
        }
        let mut live: HashSet<Hash> = HashSet::new();
        for k in self.output_keys()? {
            let refs = if keepset.contains(&k) {
                match self.get_output_record(&k) {
                    Ok(Some(r)) => self.referenced_blobs(&r.output).ok(),
                    _ => None,
                }
            } else {
                None
            };
            match refs {
                Some(b) if b.iter().all(|h| self.has(h)) => {
                    live.extend(b);
                    rep.outputs_kept += 1;
                }
                _ => {
                    self.remove_output(&k)?;
                    rep.outputs_removed += 1;
                }
            }
        }
        fsync_dir(&self.dir.join("outputs"))?;

        // Group every indexed entry by pack.
        let packs: Vec<PackEntries> = self.with_index(|s| {
            let mut by: HashMap<u32, Vec<(Hash, Loc)>> = HashMap::new();
            for (h, l) in &s.map {
                by.entry(l.pack).or_default().push((*h, *l));
            }
            s.packs
                .iter()
                .enumerate()
                .map(|(i, p)| (p.clone(), by.remove(&(i as u32)).unwrap_or_default()))
                .collect()
        })?;
        rep.packs_before = packs.len();
        rep.bytes_before = packs
            .iter()
            .map(|(p, _)| file_len(&p.path) + file_len(&p.path.with_extension("idx")))
            .sum();
        let small_full: Vec<usize> = packs
            .iter()
            .enumerate()
            .filter(|(_, (p, es))| {
                !es.is_empty()
                    && es.iter().all(|(h, _)| live.contains(h))
                    && file_len(&p.path) < SMALL_PACK
            })
            .map(|(i, _)| i)
            .collect();
        let merge_small = small_full.len() > SMALL_PACKS_MAX;
        let mut rewrite: Vec<usize> = Vec::new();
        for (i, (_, es)) in packs.iter().enumerate() {
            let n_live = es.iter().filter(|(h, _)| live.contains(h)).count();
            rep.blobs_removed += es.len() - n_live;
            let full = n_live == es.len() && !es.is_empty();
            if !full || (merge_small && small_full.contains(&i)) {
                rewrite.push(i);
            }
        }
        // Forget the rewritten packs' entries, then copy their live blobs into a new pack.
        let moving: Vec<(Hash, Loc, Arc<PackRef>)> = rewrite
            .iter()
            .flat_map(|&i| {
                let p = packs[i].0.clone();
                packs[i]
                    .1
                    .iter()
                    .filter(|(h, _)| live.contains(h))
                    .map(move |(h, l)| (*h, *l, p.clone()))
            })
            .collect();
        let rewrite_ids: HashSet<u32> = self.with_index(|s| {
            rewrite
                .iter()
                .filter_map(|&i| s.by_name.get(&packs[i].0.name).copied())
                .collect()
        })?;
        self.with_index_mut(|s| s.map.retain(|_, l| !rewrite_ids.contains(&l.pack)))?;
        for (h, l, p) in &moving {
            let f = p.handle()?;
            self.append_encoded(h, l, &f, &p.path)?;
        }
        self.flush()?;
        // The new pack is durable: remove the old ones (index first, so no index ever points
        // at a missing pack).
        for &i in &rewrite {
            let p = &packs[i].0;
            let idx = p.path.with_extension("idx");
            std::fs::remove_file(&idx).map_err(|e| StoreError::io(&idx, e))?;
        }
        fsync_dir(&self.packs_dir)?;
        for &i in &rewrite {
            let p = &packs[i].0;
            std::fs::remove_file(&p.path).map_err(|e| StoreError::io(&p.path, e))?;
        }
        fsync_dir(&self.packs_dir)?;
        self.drop_index();
        let (n_packs, n_blobs, bytes) = self.with_index(|s| {
            let bytes: u64 = s
                .packs
                .iter()
                .map(|p| file_len(&p.path) + file_len(&p.path.with_extension("idx")))
                .sum();
            (s.packs.len(), s.map.len(), bytes)
        })?;
        rep.packs_after = n_packs;
        rep.blobs_kept = n_blobs;
        rep.bytes_after = bytes;
        // materialised trees under overlays (crate::tree::overlay) are derived from manifests:
        // drop them whole; the next postinstall run checks its parent out again
        let co = self.dir.join("checkouts");
        if let Ok(rd) = std::fs::read_dir(&co) {
            for e in rd.flatten() {
                if crate::tree::overlay::remove_checkout(&e.path()) {
                    rep.checkouts_removed += 1;
                }
            }
            crate::tree::overlay::remove_trash(&co);
        }
        Ok(rep)
    }

    /// Re-hash every blob of every pack and check that every output's blobs are present.
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        self.refresh_index()?;
        let packs: Vec<Arc<PackRef>> = self.with_index(|s| s.packs.clone())?;
        let mut items: Vec<(Hash, Loc, Arc<PackRef>)> = Vec::new();
        let mut rep = VerifyReport::default();
        for p in &packs {
            let idx = p.path.with_extension("idx");
            match read_index(&idx) {
                Ok(es) => items.extend(es.into_iter().map(|(h, l)| (h, l, p.clone()))),
                // an unsealed pack of this process has no index yet: nothing durable to check
                Err(StoreError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => rep.bad_blobs.push(VerifyProblem {
                    hash: Hash::default(),
                    path: idx,
                    what: e.to_string(),
                }),
            }
        }
        let results: Vec<Result<u64, VerifyProblem>> = items
            .par_iter()
            .map(|(h, l, p)| self.check_blob(h, l, p))
            .collect();
        for r in results {
            rep.blobs_checked += 1;
            match r {
                Ok(n) => rep.bytes_checked += n,
                Err(p) => rep.bad_blobs.push(p),
            }
        }
        let bad: HashSet<Hash> = rep.bad_blobs.iter().map(|p| p.hash).collect();
        for k in self.output_keys()? {
            rep.outputs_checked += 1;
            let path = self
                .dir
                .join("outputs")
                .join(format!("{}.json", k.to_hex()));
            let problem = match self.get_output_record(&k) {
                Ok(Some(r)) => match self.referenced_blobs(&r.output) {
                    Ok(blobs) => blobs
                        .iter()
                        .find(|b| !self.has(b) || bad.contains(b))
                        .map(|b| format!("references missing or damaged blob {b}")),
                    Err(e) => Some(e.to_string()),
                },
                Ok(None) => None,
                Err(e) => Some(e.to_string()),
            };
            if let Some(what) = problem {
                rep.incomplete_outputs.push(VerifyProblem {
                    hash: k,
                    path,
                    what,
                });
            }
        }
        Ok(rep)
    }

    fn check_blob(&self, h: &Hash, l: &Loc, p: &PackRef) -> Result<u64, VerifyProblem> {
        let problem = |what: String| VerifyProblem {
            hash: *h,
            path: p.path.clone(),
            what,
        };
        let f = p.handle().map_err(|e| problem(e.to_string()))?;
        if l.flags & FLAG_BARE != 0 {
            // a bare pack is the blob alone (no record header)
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            if l.offset != 0 || l.flags & FLAG_ZSTD != 0 || l.stored != l.raw || len != l.raw {
                return Err(problem("bare pack does not match the index".into()));
            }
        } else {
            let mut hdr = [0u8; REC_HDR];
            f.read_exact_at(&mut hdr, l.offset.saturating_sub(REC_HDR as u64))
                .map_err(|e| problem(format!("cannot read record header: {e}")))?;
            if parse_record_header(&hdr) != (*h, l.flags, l.raw, l.stored) {
                return Err(problem("record header does not match the index".into()));
            }
        }
        let actual = if l.raw <= IN_MEMORY_LIMIT {
            let data = self.read_loc(l, p).map_err(|e| problem(e.to_string()))?;
            Hash::of(&data)
        } else {
            let rr = super::blobs::range_reader(f, l.offset, l.stored);
            let mut r: Box<dyn Read> = if l.flags & FLAG_ZSTD != 0 {
                Box::new(zstd::stream::read::Decoder::new(rr).map_err(|e| problem(e.to_string()))?)
            } else {
                Box::new(rr)
            };
            let mut hs = blake3::Hasher::new();
            let n =
                std::io::copy(&mut r, &mut hs).map_err(|e| problem(format!("cannot read: {e}")))?;
            if n != l.raw {
                return Err(problem(format!(
                    "content is {n} bytes, index says {}",
                    l.raw
                )));
            }
            Hash::from(hs.finalize())
        };
        if actual != *h {
            return Err(problem(format!("content hashes to {actual}")));
        }
        Ok(l.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_hex_keys_in_records() {
        let a = Hash::of(b"a");
        let b = Hash::of(b"b");
        let text = format!(
            "{{\"x\":\"{a}\",\"y\":[\"{}\"],\"z\":\"{}ff\"}}",
            b.to_hex().to_uppercase(),
            a
        );
        assert_eq!(hex_keys(text.as_bytes()), vec![a, b]);
    }
}
