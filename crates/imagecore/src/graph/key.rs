//! Node keys: blake3 over (kind, implementation version, canonical options, the content hash of
//! every declared input file and tree, parents' output digests). No mtimes ever enter a key.
//!
//! Parents enter a key by the digest of what they produced ([`output_digest`]), not by their own
//! keys: a parent that re-ran and produced the same output (a comment changed in a postinstall
//! script, a file the exlist removes anyway) leaves its children cached. This is "early cutoff"
//! (Shake, Bazel): a child's key is only known once its parents are cached or built.
//!
//! Alongside the key, a [`NodeRecord`] keeps the individual input hashes so that `plan` can say
//! which input changed since the last build.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::graph::step::{Inputs, NodeKind, Output};
use crate::hash::Hash;
use crate::store::Store;

/// Everything that went into one node's key, kept to explain the next plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Node name.
    pub name: String,
    /// Node kind.
    pub kind: NodeKind,
    /// The step's implementation version.
    pub version: u32,
    /// Canonical options.
    pub options: BTreeMap<String, String>,
    /// Input files: label → content hash (`None` when the file is missing).
    pub files: Vec<(String, Option<Hash>)>,
    /// Input trees: label → content hash.
    pub trees: Vec<(String, Hash)>,
    /// Parents: name → output digest ([`output_digest`]).
    pub parents: Vec<(String, Hash)>,
    /// The resulting key.
    pub key: Hash,
}

/// Content hash of a file (read whole when small; in bounded chunks, hashed in parallel, when
/// large).
pub fn hash_file(path: &Path) -> Result<Hash, Error> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    if meta.len() > 16 * 1024 * 1024 {
        return Hash::of_reader(&mut f)
            .map(|(h, _)| h)
            .map_err(|e| Error::io(path, e));
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    f.read_to_end(&mut buf).map_err(|e| Error::io(path, e))?;
    Ok(Hash::of(&buf))
}

/// Files at least this large have their content hash remembered in the store, keyed by a
/// (device, inode, size, mtime, ctime) stamp, so an unchanged ISO is not re-read on every plan.
pub const REMEMBER_HASH_OVER: u64 = 64 << 20;

fn stamp(meta: &std::fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    format!(
        "{} {} {} {}.{} {}.{}",
        meta.dev(),
        meta.ino(),
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec()
    )
}

/// Content hash of an input file; large files go through the store's remembered hashes.
pub fn hash_input(store: &Store, path: &Path) -> Result<Hash, Error> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.len() < REMEMBER_HASH_OVER {
        return hash_file(path);
    }
    let name = format!(
        "filehash-{}",
        Hash::of(path.to_string_lossy().as_bytes()).to_hex()
    );
    let st = stamp(&meta);
    if let Some(rec) = store.get_record(&name)?
        && let Ok(text) = String::from_utf8(rec)
        && let Some((s, h)) = text.rsplit_once(' ')
        && s == st
        && let Some(h) = Hash::from_hex(h.trim())
    {
        return Ok(h);
    }
    let h = hash_file(path)?;
    store.put_record(&name, format!("{st} {h}").as_bytes())?;
    Ok(h)
}

/// The digest of a step's output (tree manifest id, artifacts, meta), which children hash into
/// their keys. Length-prefixed canonical encoding; `BTreeMap`s iterate in key order.
pub fn output_digest(out: &Output) -> Hash {
    let mut h = blake3::Hasher::new();
    put(&mut h, b"osimage-output-v1");
    match &out.tree {
        Some(t) => put(&mut h, &t.0),
        None => put(&mut h, b""),
    }
    h.update(&(out.artifacts.len() as u64).to_le_bytes());
    for (k, v) in &out.artifacts {
        put(&mut h, k.as_bytes());
        put(&mut h, &v.0);
    }
    h.update(&(out.meta.len() as u64).to_le_bytes());
    for (k, v) in &out.meta {
        put(&mut h, k.as_bytes());
        put(&mut h, v.as_bytes());
    }
    h.finalize().into()
}

fn put(h: &mut blake3::Hasher, s: &[u8]) {
    h.update(&(s.len() as u64).to_le_bytes());
    h.update(s);
}

/// Compute a node's record (and key) from its declared inputs and its parents' output digests.
pub fn compute(
    store: &Store,
    name: &str,
    kind: NodeKind,
    version: u32,
    inputs: &Inputs,
    parents: &[(String, Hash)],
) -> Result<NodeRecord, Error> {
    let mut files = Vec::with_capacity(inputs.files.len());
    for f in &inputs.files {
        let h = match hash_input(store, &f.path) {
            Ok(h) => Some(h),
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        files.push((f.label.clone(), h));
    }
    let mut trees = Vec::with_capacity(inputs.trees.len());
    for t in &inputs.trees {
        let cache = store.stat_cache_path(&t.path);
        let h = crate::tree::hash_tree_cached(&t.path, Some(&cache), t.mtime_clamp)?;
        trees.push((t.label.clone(), h));
    }
    let mut rec = NodeRecord {
        name: name.to_string(),
        kind,
        version,
        options: inputs.options.clone(),
        files,
        trees,
        parents: parents.to_vec(),
        key: Hash::default(),
    };
    rec.key = key_of(&rec);
    Ok(rec)
}

/// The key of a record: a length-prefixed canonical encoding hashed with blake3. The node name
/// is not part of the key (two specs sharing a step share its output).
pub fn key_of(rec: &NodeRecord) -> Hash {
    let mut h = blake3::Hasher::new();
    put(&mut h, b"osimage-node-key-v2");
    put(&mut h, rec.kind.name().as_bytes());
    h.update(&rec.version.to_le_bytes());
    h.update(&(rec.options.len() as u64).to_le_bytes());
    for (k, v) in &rec.options {
        put(&mut h, k.as_bytes());
        put(&mut h, v.as_bytes());
    }
    h.update(&(rec.files.len() as u64).to_le_bytes());
    // Labels (which name paths) are not hashed: the same content under another checkout
    // directory gives the same key.
    for (_, fh) in &rec.files {
        match fh {
            Some(fh) => put(&mut h, &fh.0),
            None => put(&mut h, b"<missing>"),
        }
    }
    h.update(&(rec.trees.len() as u64).to_le_bytes());
    for (_, th) in &rec.trees {
        put(&mut h, &th.0);
    }
    h.update(&(rec.parents.len() as u64).to_le_bytes());
    for (_, pk) in &rec.parents {
        put(&mut h, &pk.0);
    }
    h.finalize().into()
}

/// Why a node is dirty, comparing this plan's record with the last build's (if any).
pub fn why_dirty(now: &NodeRecord, last: Option<&NodeRecord>) -> String {
    let Some(last) = last else {
        return "never built".to_string();
    };
    if last.key == now.key {
        return "output missing from the cache (evicted by gc?)".to_string();
    }
    if let Some(why) = own_inputs_changed(now, last) {
        return why;
    }
    for (name, k) in &now.parents {
        match last.parents.iter().find(|(n, _)| n == name) {
            Some((_, old)) if old == k => {}
            _ => return format!("parent {name} changed"),
        }
    }
    "inputs changed".to_string()
}

/// The first of a node's own inputs (implementation, options, files, trees — not parents)
/// that differs from the last build's record, if any.
pub fn own_inputs_changed(now: &NodeRecord, last: &NodeRecord) -> Option<String> {
    if last.kind != now.kind || last.version != now.version {
        return Some(format!(
            "{} step implementation changed (version {} -> {})",
            now.kind, last.version, now.version
        ));
    }
    for (k, v) in &now.options {
        match last.options.get(k) {
            Some(old) if old == v => {}
            Some(old) => return Some(format!("option {k} changed ({old} -> {v})")),
            None => return Some(format!("option {k} added")),
        }
    }
    if let Some(k) = last.options.keys().find(|k| !now.options.contains_key(*k)) {
        return Some(format!("option {k} removed"));
    }
    for (label, h) in &now.files {
        match last.files.iter().find(|(l, _)| l == label) {
            Some((_, old)) if old == h => {}
            Some(_) if h.is_none() => return Some(format!("{label} is missing")),
            Some(_) => return Some(format!("{label} changed")),
            None => return Some(format!("{label} added")),
        }
    }
    if let Some((label, _)) = last
        .files
        .iter()
        .find(|(l, _)| !now.files.iter().any(|(n, _)| n == l))
    {
        return Some(format!("{label} removed"));
    }
    for (label, h) in &now.trees {
        match last.trees.iter().find(|(l, _)| l == label) {
            Some((_, old)) if old == h => {}
            Some(_) => return Some(format!("{label} changed")),
            None => return Some(format!("{label} added")),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(opt: &str, file: Option<Hash>, parent: Hash) -> NodeRecord {
        let mut r = NodeRecord {
            name: "n".into(),
            kind: NodeKind::Postinstall,
            version: 1,
            options: [("a".to_string(), opt.to_string())].into(),
            files: vec![("postinstall script x".into(), file)],
            trees: vec![],
            parents: vec![("install".into(), parent)],
            key: Hash::default(),
        };
        r.key = key_of(&r);
        r
    }

    #[test]
    fn key_depends_on_each_input_and_explains() {
        let base = rec("1", Some(Hash::of(b"x")), Hash::of(b"p"));
        assert_eq!(base.key, rec("1", Some(Hash::of(b"x")), Hash::of(b"p")).key);
        let o = rec("2", Some(Hash::of(b"x")), Hash::of(b"p"));
        let f = rec("1", Some(Hash::of(b"y")), Hash::of(b"p"));
        let p = rec("1", Some(Hash::of(b"x")), Hash::of(b"q"));
        for r in [&o, &f, &p] {
            assert_ne!(r.key, base.key);
        }
        assert_eq!(why_dirty(&o, Some(&base)), "option a changed (1 -> 2)");
        assert_eq!(why_dirty(&f, Some(&base)), "postinstall script x changed");
        assert_eq!(why_dirty(&p, Some(&base)), "parent install changed");
        assert_eq!(why_dirty(&base, None), "never built");
    }

    #[test]
    fn key_is_stable_across_runs() {
        // A fixed record must always give this key (guards against accidental encoding changes,
        // which would invalidate every cache).
        let r = rec("1", Some(Hash([7; 32])), Hash([9; 32]));
        assert_eq!(r.key, key_of(&r));
        let again = rec("1", Some(Hash([7; 32])), Hash([9; 32]));
        assert_eq!(r.key.to_hex(), again.key.to_hex());
    }
}

#[cfg(test)]
mod golden {
    use super::*;

    /// Keys must be the same on every machine and every run: a fixed record has a fixed key.
    /// If this fails, the key encoding changed, which invalidates every cache: bump the
    /// `osimage-node-key-vN` tag on purpose instead.
    #[test]
    fn key_encoding_is_pinned() {
        let mut r = NodeRecord {
            name: "pack".into(),
            kind: NodeKind::Pack,
            version: 1,
            options: [("compress".to_string(), "zstd".to_string())].into(),
            files: vec![("f".into(), Some(Hash([1; 32]))), ("g".into(), None)],
            trees: vec![("t".into(), Hash([2; 32]))],
            parents: vec![("trim".into(), Hash([3; 32]))],
            key: Hash::default(),
        };
        r.key = key_of(&r);
        assert_eq!(
            r.key.to_hex(),
            "d705d12c2c4cee24c60bac85f65cbb4866bf38d587c3793b7019496f1db9f3f3"
        );
    }
}
