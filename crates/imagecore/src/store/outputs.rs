//! Manifests, step outputs (published atomically) and named records.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::graph::step::Output;
use crate::hash::Hash;
use crate::tree::manifest::{Kind, Manifest};

use super::pack::atomic_write;
use super::{Store, StoreError};

/// One cached step output, for `osimage cache ls`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputInfo {
    /// The node key.
    pub key: Hash,
    /// Total content bytes the output references (manifest, distinct file blobs, artifacts).
    pub size: u64,
    /// When it was published (seconds since the epoch).
    pub time: i64,
    /// The output's tree manifest id, if any.
    pub tree: Option<Hash>,
    /// The names of its artifacts.
    pub artifacts: Vec<String>,
}

/// The on-disk output record.
#[derive(Serialize, Deserialize)]
pub(crate) struct OutputRecord {
    pub key: Hash,
    pub output: Output,
    pub size: u64,
    pub time: i64,
}

impl Store {
    fn output_path(&self, key: &Hash) -> PathBuf {
        self.dir
            .join("outputs")
            .join(format!("{}.json", key.to_hex()))
    }

    /// Store a manifest as a blob; returns its id (`m.id()`).
    pub fn put_manifest(&self, m: &Manifest) -> Result<Hash, StoreError> {
        self.put_bytes(&m.to_bytes())
    }

    /// Load a manifest by id.
    pub fn get_manifest(&self, id: &Hash) -> Result<Manifest, StoreError> {
        let data = self.read(id)?;
        Manifest::from_bytes(&data).map_err(|e| StoreError::BadRecord {
            path: self.dir.join(format!("packs/<manifest {}>", id.short())),
            source: e,
        })
    }

    /// The output cached under a node key, if any.
    pub fn get_output(&self, key: &Hash) -> Result<Option<Output>, StoreError> {
        Ok(self.get_output_record(key)?.map(|r| r.output))
    }

    pub(crate) fn get_output_record(&self, key: &Hash) -> Result<Option<OutputRecord>, StoreError> {
        let path = self.output_path(key);
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io(&path, e)),
        };
        let rec: OutputRecord =
            serde_json::from_slice(&data).map_err(|e| StoreError::BadRecord { path, source: e })?;
        Ok(Some(rec))
    }

    /// Every blob an output references: its manifest, the manifest's file blobs, artifacts.
    pub(crate) fn referenced_blobs(&self, out: &Output) -> Result<BTreeSet<Hash>, StoreError> {
        let mut set = BTreeSet::new();
        if let Some(t) = &out.tree {
            set.insert(*t);
            let m = self.get_manifest(t)?;
            for e in &m.entries {
                if let Kind::File { blob, .. } = &e.kind {
                    set.insert(*blob);
                }
            }
        }
        set.extend(out.artifacts.values().copied());
        Ok(set)
    }

    /// Publish `out` under `key`, atomically: every blob it references is checked present and
    /// made durable (fsync) before the output record appears (tmp, fsync, rename, fsync dir).
    pub fn publish(&self, key: &Hash, out: &Output) -> Result<(), StoreError> {
        let blobs = self.referenced_blobs(out)?;
        let mut size = 0u64;
        for b in &blobs {
            size += self.locate(b)?.0.raw;
        }
        self.flush()?;
        let rec = OutputRecord {
            key: *key,
            output: out.clone(),
            size,
            time: now_secs(),
        };
        let data = serde_json::to_vec_pretty(&rec).map_err(|e| StoreError::BadRecord {
            path: self.output_path(key),
            source: e,
        })?;
        atomic_write(&self.tmp_path("out"), &self.output_path(key), &data)
    }

    /// Remove a published output (its blobs stay until `gc`).
    pub fn remove_output(&self, key: &Hash) -> Result<(), StoreError> {
        let p = self.output_path(key);
        match std::fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io(&p, e)),
        }
    }

    fn record_path(&self, name: &str) -> Result<PathBuf, StoreError> {
        let ok = !name.is_empty()
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
        if !ok {
            return Err(StoreError::BadRecordName(name.to_string()));
        }
        Ok(self.dir.join("records").join(name))
    }

    /// Store a small named record, replacing any previous one atomically.
    pub fn put_record(&self, name: &str, data: &[u8]) -> Result<(), StoreError> {
        let p = self.record_path(name)?;
        atomic_write(&self.tmp_path("rec"), &p, data)
    }

    /// A named record, if present.
    pub fn get_record(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let p = self.record_path(name)?;
        match std::fs::read(&p) {
            Ok(d) => Ok(Some(d)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io(&p, e)),
        }
    }

    /// Keys of every published output.
    pub(crate) fn output_keys(&self) -> Result<Vec<Hash>, StoreError> {
        let dir = self.dir.join("outputs");
        let mut keys = Vec::new();
        for ent in std::fs::read_dir(&dir).map_err(|e| StoreError::io(&dir, e))? {
            let ent = ent.map_err(|e| StoreError::io(&dir, e))?;
            let name = ent.file_name();
            if let Some(k) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(Hash::from_hex)
            {
                keys.push(k);
            }
        }
        keys.sort();
        Ok(keys)
    }

    /// Every published output, sorted by time then key.
    pub fn list(&self) -> Result<Vec<OutputInfo>, StoreError> {
        let mut out = Vec::new();
        for k in self.output_keys()? {
            if let Some(r) = self.get_output_record(&k)? {
                out.push(OutputInfo {
                    key: k,
                    size: r.size,
                    time: r.time,
                    tree: r.output.tree,
                    artifacts: r.output.artifacts.keys().cloned().collect(),
                });
            }
        }
        out.sort_by(|a, b| a.time.cmp(&b.time).then(a.key.cmp(&b.key)));
        Ok(out)
    }

    /// Names of all records.
    pub(crate) fn record_names(&self) -> Result<Vec<String>, StoreError> {
        let dir = self.dir.join("records");
        let mut names = Vec::new();
        for ent in std::fs::read_dir(&dir).map_err(|e| StoreError::io(&dir, e))? {
            let ent = ent.map_err(|e| StoreError::io(&dir, e))?;
            if let Some(n) = ent.file_name().to_str() {
                names.push(n.to_string());
            }
        }
        Ok(names)
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
