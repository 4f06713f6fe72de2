//! `sync`: apply the plain `src… -> dst` synclist entries into the tree, as xCAT's packimage
//! does with `xdcp -i`. Noderange lines and the `EXECUTE:`, `EXECUTEALWAYS:`, `APPEND:` and
//! `MERGE:` sections are kept but not applied (they act at boot in xCAT); `plan` says so.
//!
//! A source directory is copied recursively. Copied files keep their permission bits, are
//! root-owned, and get the pack `source_date_epoch` as mtime, so the output depends only on
//! the sources' content (which is in the key).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::error::Error;
use crate::graph::step::{Inputs, NodeKind, Output, Step, StepCtx};
use crate::lists::Synclist;
use crate::spec::Spec;
use crate::store::Store;
use crate::tree::{Entry, Kind, Manifest};

/// The sync step.
pub struct Sync {
    list: Synclist,
    epoch: i64,
}

impl Sync {
    /// From the parsed synclists.
    pub fn new(spec: &Spec, list: Synclist) -> Sync {
        Sync {
            list,
            epoch: spec.pack.source_date_epoch,
        }
    }

    fn entry(&self, path: String, kind: Kind, mode: u32) -> Entry {
        Entry {
            path,
            kind,
            mode: mode & 0o7777,
            uid: 0,
            gid: 0,
            mtime: self.epoch,
            xattrs: BTreeMap::new(),
        }
    }

    fn add(&self, store: &Store, m: &mut Manifest, src: &Path, dst: &str) -> Result<(), Error> {
        let meta = std::fs::symlink_metadata(src).map_err(|e| Error::io(src, e))?;
        let mode = meta.permissions().mode();
        if meta.is_dir() {
            m.insert(self.entry(dst.to_string(), Kind::Dir, mode));
            let mut names: Vec<_> = std::fs::read_dir(src)
                .map_err(|e| Error::io(src, e))?
                .flatten()
                .map(|e| e.file_name())
                .collect();
            names.sort();
            for n in names {
                let name = n.to_str().ok_or_else(|| Error::Step {
                    node: "sync".into(),
                    message: format!("{}: file name is not UTF-8", src.join(&n).display()),
                })?;
                self.add(store, m, &src.join(name), &format!("{dst}/{name}"))?;
            }
        } else if meta.file_type().is_symlink() {
            let t = std::fs::read_link(src).map_err(|e| Error::io(src, e))?;
            let target = t.to_string_lossy().into_owned();
            m.insert(self.entry(dst.to_string(), Kind::Symlink { target }, 0o777));
        } else {
            let (blob, size) = store.put_file(src)?;
            if m.get(dst).is_some_and(Entry::is_dir) {
                m.remove_tree(dst);
            }
            let kind = Kind::File {
                blob,
                size,
                link: None,
            };
            m.insert(self.entry(dst.to_string(), kind, mode));
        }
        Ok(())
    }

    /// Apply every plain entry to a manifest.
    pub fn apply(&self, store: &Store, m: &mut Manifest) -> Result<(), Error> {
        for e in &self.list.entries {
            for src in &e.srcs {
                let mut dst = self.list.dest_path(e, src);
                // rsync semantics: copying onto an existing directory puts the file inside it
                if !e.dst_is_dir
                    && m.get(&dst).is_some_and(Entry::is_dir)
                    && !src.is_dir()
                    && let Some(name) = src.file_name()
                {
                    dst = format!("{dst}/{}", name.to_string_lossy());
                }
                self.add(store, m, src, &dst).map_err(|err| Error::Step {
                    node: "sync".into(),
                    message: format!("{}: {err}", e.origin),
                })?;
            }
        }
        Ok(())
    }
}

impl Step for Sync {
    fn kind(&self) -> NodeKind {
        NodeKind::Sync
    }

    fn version(&self) -> u32 {
        1
    }

    fn inputs(&self) -> Result<Inputs, Error> {
        let mut i = Inputs::default();
        i.option("source_date_epoch", self.epoch);
        for f in &self.list.files_read {
            i.file(format!("synclist {}", f.display()), f);
        }
        for e in &self.list.entries {
            for s in &e.srcs {
                if s.is_dir() {
                    i.tree(format!("synclist source {}", s.display()), s);
                } else {
                    i.file(format!("synclist source {}", s.display()), s);
                }
            }
        }
        Ok(i)
    }

    fn run(&self, ctx: &StepCtx<'_>, parents: &[&Output]) -> Result<Output, Error> {
        let mut m = super::util::parent_tree(ctx, parents)?;
        self.apply(ctx.store, &mut m)?;
        super::util::tree_output(ctx.store, &m)
    }

    fn notes(&self) -> Vec<String> {
        let mut v = Vec::new();
        for (origin, line) in &self.list.skipped {
            v.push(format!(
                "{origin}: noderange line kept for boot time, not applied to the image: {line}"
            ));
        }
        for s in &self.list.sections {
            v.push(format!(
                "{:?} section ({} lines) kept, not applied to the image (xCAT applies it at boot)",
                s.kind,
                s.lines.len()
            ));
        }
        v
    }
}
