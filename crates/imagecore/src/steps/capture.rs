//! `capture`: import an existing root tree (xCAT's "capture an image from a running node" path)
//! into the store: every file type, owners, modes, xattrs, hardlinks.
//!
//! The key covers the tree's full content (names, metadata and file contents), so touching a file
//! without changing it does not rebuild, and changing one byte does.

use std::path::PathBuf;

use crate::error::Error;
use crate::graph::step::{Inputs, NodeKind, Output, Step, StepCtx};
use crate::spec::{Source, Spec};

/// The capture step.
pub struct Capture {
    root: PathBuf,
}

impl Capture {
    /// From the spec's `[source]`.
    pub fn new(_spec: &Spec, src: &Source) -> Capture {
        Capture {
            root: src.rootimg.value.clone(),
        }
    }
}

impl Step for Capture {
    fn kind(&self) -> NodeKind {
        NodeKind::Capture
    }

    fn version(&self) -> u32 {
        1
    }

    fn inputs(&self) -> Result<Inputs, Error> {
        let mut i = Inputs::default();
        i.tree(format!("source tree {}", self.root.display()), &self.root);
        Ok(i)
    }

    fn run(&self, ctx: &StepCtx<'_>, _parents: &[&Output]) -> Result<Output, Error> {
        let m = crate::tree::scan(ctx.store, &self.root, None)?;
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
