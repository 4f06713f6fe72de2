//! A tree manifest: the sorted list of every entry of a root filesystem tree, with metadata and
//! the blob hash of each regular file's content. Manifests are what tree steps pass to each other.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::hash::Hash;

/// What kind of filesystem object an entry is, with the data specific to that kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "lowercase")]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file whose content is the blob `blob` of `size` bytes.
    File {
        /// blake3 of the content; the blob id in the store.
        blob: Hash,
        /// Content length in bytes.
        size: u64,
        /// Hardlink group: entries with the same `Some(n)` are one inode. Group numbers are
        /// assigned in path order (the first path of a group gets the lowest free number).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        link: Option<u32>,
    },
    /// A symbolic link with its target, verbatim.
    Symlink {
        /// The link target.
        target: String,
    },
    /// A named pipe.
    Fifo,
    /// A unix socket (kept in manifests, never packed into archives).
    Socket,
    /// A character device.
    Char {
        /// Major device number.
        major: u32,
        /// Minor device number.
        minor: u32,
    },
    /// A block device.
    Block {
        /// Major device number.
        major: u32,
        /// Minor device number.
        minor: u32,
    },
}

/// One entry of a tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Path relative to the tree root, `/`-separated, no leading `/` or `./`, never empty.
    pub path: String,
    /// Type and type-specific data.
    #[serde(flatten)]
    pub kind: Kind,
    /// Permission bits including setuid/setgid/sticky (`0o7777` mask), without the type bits.
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// Extended attributes (e.g. `security.capability`), by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

impl Entry {
    /// The full `st_mode` (type bits | permission bits).
    pub fn st_mode(&self) -> u32 {
        let ty = match self.kind {
            Kind::Dir => 0o040000,
            Kind::File { .. } => 0o100000,
            Kind::Symlink { .. } => 0o120000,
            Kind::Fifo => 0o010000,
            Kind::Socket => 0o140000,
            Kind::Char { .. } => 0o020000,
            Kind::Block { .. } => 0o060000,
        };
        ty | (self.mode & 0o7777)
    }

    /// True for directories.
    pub fn is_dir(&self) -> bool {
        matches!(self.kind, Kind::Dir)
    }
}

/// A whole tree: entries sorted by path (byte order), each path unique.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The entries, sorted by [`path_order`], no duplicates.
    pub entries: Vec<Entry>,
}

/// The order of entries in a manifest: plain byte order of the path, so that a directory comes
/// right before its contents only when no sibling sorts between (`a`, `a-b`, `a/c`): use
/// [`Manifest::sort`], which orders by path components, so a directory is always followed by
/// everything below it.
pub fn path_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.split('/').cmp(b.split('/'))
}

impl Manifest {
    /// Sort entries by path components and drop duplicate paths (the last one wins).
    pub fn sort(&mut self) {
        self.entries.sort_by(|a, b| path_order(&a.path, &b.path));
        // keep the last of equal paths: reverse-dedup trick
        let mut out: Vec<Entry> = Vec::with_capacity(self.entries.len());
        for e in self.entries.drain(..) {
            if let Some(last) = out.last_mut()
                && last.path == e.path
            {
                *last = e;
                continue;
            }
            out.push(e);
        }
        self.entries = out;
    }

    /// Look an entry up by path (binary search).
    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries
            .binary_search_by(|e| path_order(&e.path, path))
            .ok()
            .map(|i| &self.entries[i])
    }

    /// Canonical serialisation (JSON, entries in order); its blake3 is the manifest id.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parse the canonical serialisation.
    pub fn from_bytes(data: &[u8]) -> Result<Manifest, serde_json::Error> {
        serde_json::from_slice(data)
    }

    /// The manifest id: blake3 of [`Manifest::to_bytes`].
    pub fn id(&self) -> Hash {
        Hash::of(&self.to_bytes())
    }

    /// Insert or replace an entry, keeping the order. Missing parent directories are created
    /// (mode 0755, root-owned, with the entry's mtime).
    pub fn insert(&mut self, entry: Entry) {
        let mut parents = Vec::new();
        let mut p = entry.path.as_str();
        while let Some((parent, _)) = p.rsplit_once('/') {
            if self.get(parent).is_none() {
                parents.push(parent.to_string());
            }
            p = parent;
        }
        for d in parents {
            let e = Entry {
                path: d,
                kind: Kind::Dir,
                mode: 0o755,
                uid: 0,
                gid: 0,
                mtime: entry.mtime,
                xattrs: BTreeMap::new(),
            };
            self.insert_one(e);
        }
        self.insert_one(entry);
    }

    fn insert_one(&mut self, entry: Entry) {
        match self
            .entries
            .binary_search_by(|e| path_order(&e.path, &entry.path))
        {
            Ok(i) => self.entries[i] = entry,
            Err(i) => self.entries.insert(i, entry),
        }
    }

    /// Clamp every mtime later than `epoch` to `epoch` (the `SOURCE_DATE_EPOCH` rule, as the
    /// archive writer applies it). Steps that run programs on a tree call this on the result,
    /// so a re-run that changes nothing else gives the same manifest (and early cutoff works).
    pub fn clamp_mtimes(&mut self, epoch: i64) {
        for e in &mut self.entries {
            e.mtime = e.mtime.min(epoch);
        }
    }

    /// Remove an entry and everything below it. Returns how many entries were removed.
    pub fn remove_tree(&mut self, path: &str) -> usize {
        let before = self.entries.len();
        let prefix = format!("{path}/");
        self.entries
            .retain(|e| e.path != path && !e.path.starts_with(&prefix));
        before - self.entries.len()
    }

    /// Total size of regular file content (each hardlink group counted once).
    pub fn content_size(&self) -> u64 {
        let mut seen = std::collections::HashSet::new();
        self.entries
            .iter()
            .map(|e| match &e.kind {
                Kind::File { size, link, .. } => match link {
                    Some(l) if !seen.insert(*l) => 0,
                    _ => *size,
                },
                _ => 0,
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(p: &str) -> Entry {
        Entry {
            path: p.into(),
            kind: Kind::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
            mtime: 0,
            xattrs: BTreeMap::new(),
        }
    }

    #[test]
    fn sort_keeps_directories_before_contents() {
        let mut m = Manifest {
            entries: vec![dir("a/c"), dir("a-b"), dir("a"), dir("a")],
        };
        m.sort();
        let paths: Vec<_> = m.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["a", "a/c", "a-b"]);
        assert!(m.get("a/c").is_some());
        assert!(m.get("a/d").is_none());
    }

    #[test]
    fn insert_creates_parents_in_order() {
        let mut m = Manifest::default();
        m.insert(dir("a"));
        let mut f = dir("a/b/c");
        f.kind = Kind::Symlink { target: "x".into() };
        m.insert(f);
        let paths: Vec<_> = m.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["a", "a/b", "a/b/c"]);
        assert_eq!(m.remove_tree("a/b"), 2);
        assert_eq!(m.entries.len(), 1);
    }

    #[test]
    fn round_trip() {
        let mut e = dir("x");
        e.kind = Kind::File {
            blob: Hash::of(b"hi"),
            size: 2,
            link: Some(1),
        };
        e.xattrs.insert("security.capability".into(), vec![1, 2]);
        let m = Manifest { entries: vec![e] };
        assert_eq!(Manifest::from_bytes(&m.to_bytes()).unwrap(), m);
        assert_eq!(m.id(), Manifest::from_bytes(&m.to_bytes()).unwrap().id());
    }
}
