//! `capture`: import an existing root tree (xCAT's "capture an image from a running node" path)
//! into the store: every file type, owners, modes, xattrs, hardlinks.
//!
//! The key covers the tree's full content (names, metadata, file contents and mtimes clamped to
//! `source_date_epoch`, as the archive will hold them), so touching a file whose mtime is
//! already past the epoch does not rebuild, while changing one byte, or giving a file an older
//! mtime (which the archive would show), does. The output's mtimes are clamped the same way.

use std::path::PathBuf;

use crate::error::Error;
use crate::graph::step::{Inputs, NodeKind, Output, Step, StepCtx};
use crate::spec::{Source, Spec};

/// The capture step.
pub struct Capture {
    root: PathBuf,
    epoch: i64,
}

impl Capture {
    /// From the spec's `[source]`.
    pub fn new(spec: &Spec, src: &Source) -> Capture {
        Capture {
            root: src.rootimg.value.clone(),
            epoch: spec.pack.source_date_epoch,
        }
    }
}

impl Step for Capture {
    fn kind(&self) -> NodeKind {
        NodeKind::Capture
    }

    fn version(&self) -> u32 {
        // 2: mtimes clamped to source_date_epoch, and part of the key
        2
    }

    fn inputs(&self) -> Result<Inputs, Error> {
        let mut i = Inputs::default();
        i.option("source_date_epoch", self.epoch).tree_with_mtimes(
            format!("source tree {}", self.root.display()),
            &self.root,
            self.epoch,
        );
        Ok(i)
    }

    fn run(&self, ctx: &StepCtx<'_>, _parents: &[&Output]) -> Result<Output, Error> {
        let mut m = crate::tree::scan(ctx.store, &self.root, None)?;
        m.clamp_mtimes(self.epoch);
        tracing::info!(
            entries = m.entries.len(),
            bytes = m.content_size(),
            "captured"
        );
        let mut out = super::util::tree_output(ctx.store, &m)?;
        out.meta
            .insert("entries".into(), m.entries.len().to_string());
        Ok(out)
    }
}
