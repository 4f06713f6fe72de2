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

    /// Load a stat cache file; a missing or unreadable one is an empty cache (it only saves
    /// work, it never decides content).
    pub fn load(path: &Path) -> StatCache {
        std::fs::read(path)
            .ok()
            .and_then(|d| serde_json::from_slice(&d).ok())
            .unwrap_or_default()
    }

    /// Save to `path` (write to a sibling temporary file, then rename).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let data = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, data)?;
        std::fs::rename(&tmp, path)
    }
}
