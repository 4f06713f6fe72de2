//! The stat cache: what a regular file's inode looked like when its content hash was last known,
//! so a later scan re-reads only files that changed.

use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::hash::Hash;

use super::walk::ns;

/// One regular file's identity at the time its content hash was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatEntry {
    /// Device.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// mtime, nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// ctime, nanoseconds since the epoch (changes on any write, chmod, chown, link, utimes).
    pub ctime_ns: i64,
    /// The content hash (blob id).
    pub blob: Hash,
}

impl StatEntry {
    /// The entry for `md` with content `blob`.
    pub fn new(md: &Metadata, blob: Hash) -> StatEntry {
        StatEntry {
            dev: md.dev(),
            ino: md.ino(),
            size: md.size(),
            mtime_ns: ns(md.mtime(), md.mtime_nsec()),
            ctime_ns: ns(md.ctime(), md.ctime_nsec()),
            blob,
        }
    }

    /// Is `md` the same, unchanged inode?
    pub fn matches(&self, md: &Metadata) -> bool {
        self.dev == md.dev()
            && self.ino == md.ino()
            && self.size == md.size()
            && self.mtime_ns == ns(md.mtime(), md.mtime_nsec())
            && self.ctime_ns == ns(md.ctime(), md.ctime_nsec())
    }
}

/// Stat entries of a tree's regular files by root-relative path. Returned by
/// [`super::materialize`] and given back to [`super::scan`] as `prev`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatCache {
    /// Entries by root-relative path.
    pub files: HashMap<String, StatEntry>,
}

impl StatCache {
    /// The content hash recorded for `rel` if the file at that path is unchanged.
    pub fn lookup(&self, rel: &str, md: &Metadata) -> Option<Hash> {
        self.files
            .get(rel)
            .filter(|e| e.matches(md))
            .map(|e| e.blob)
    }

    /// Load a stat cache file; a missing, damaged or unreadable one is an empty cache (it only
    /// saves work, it never decides content).
    pub fn load(path: &Path) -> StatCache {
        std::fs::read(path)
            .ok()
            .and_then(|d| StatCache::decode(&d))
            .unwrap_or_default()
    }

    /// Save to `path` (write to a sibling temporary file, then rename).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, self.encode())?;
        std::fs::rename(&tmp, path)
    }

    /// Compact binary form (fast to read and write even for 100k files), with a checksum.
    pub fn encode(&self) -> Vec<u8> {
        let mut paths: Vec<&String> = self.files.keys().collect();
        paths.sort();
        let mut out = Vec::with_capacity(16 + paths.len() * 100);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(paths.len() as u64).to_le_bytes());
        for p in paths {
            let e = &self.files[p];
            out.extend_from_slice(&(p.len() as u32).to_le_bytes());
            out.extend_from_slice(p.as_bytes());
            for v in [e.dev, e.ino, e.size, e.mtime_ns as u64, e.ctime_ns as u64] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(&e.blob.0);
        }
        let sum = blake3::hash(&out);
        out.extend_from_slice(sum.as_bytes());
        out
    }

    /// Parse [`StatCache::encode`]'s form; `None` if damaged.
    pub fn decode(data: &[u8]) -> Option<StatCache> {
        if data.len() < MAGIC.len() + 8 + 32 || &data[..MAGIC.len()] != MAGIC {
            return None;
        }
        let (body, sum) = data.split_at(data.len() - 32);
        if blake3::hash(body).as_bytes() != sum {
            return None;
        }
        let mut r = &body[MAGIC.len()..];
        let mut take = |n: usize| -> Option<&[u8]> {
            if r.len() < n {
                return None;
            }
            let (a, b) = r.split_at(n);
            r = b;
            Some(a)
        };
        let u64_of = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
        let count = u64_of(take(8)?) as usize;
        let mut files = HashMap::with_capacity(count.min(1 << 24));
        for _ in 0..count {
            let len = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
            let path = std::str::from_utf8(take(len)?).ok()?.to_string();
            let dev = u64_of(take(8)?);
            let ino = u64_of(take(8)?);
            let size = u64_of(take(8)?);
            let mtime_ns = u64_of(take(8)?) as i64;
            let ctime_ns = u64_of(take(8)?) as i64;
            let blob = Hash(take(32)?.try_into().ok()?);
            files.insert(
                path,
                StatEntry {
                    dev,
                    ino,
                    size,
                    mtime_ns,
                    ctime_ns,
                    blob,
                },
            );
        }
        Some(StatCache { files })
    }
}

const MAGIC: &[u8; 8] = b"OSSTAT1\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_round_trip_and_damage() {
        let mut c = StatCache::default();
        for i in 0..50 {
            c.files.insert(
                format!("dir/f{i}"),
                StatEntry {
                    dev: 1,
                    ino: i,
                    size: i * 3,
                    mtime_ns: -5,
                    ctime_ns: 1_700_000_000_123_456_789,
                    blob: Hash::of(&i.to_le_bytes()),
                },
            );
        }
        let b = c.encode();
        assert_eq!(StatCache::decode(&b), Some(c.clone()));
        let mut bad = b.clone();
        bad[20] ^= 1;
        assert_eq!(StatCache::decode(&bad), None);
        assert_eq!(StatCache::decode(&b[..b.len() - 1]), None);
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x/c.bin");
        c.save(&p).unwrap();
        assert_eq!(StatCache::load(&p), c);
        assert_eq!(
            StatCache::load(&d.path().join("missing")),
            StatCache::default()
        );
    }
}
