//! `trim`: apply the exlist to the final tree, where xCAT's packimage applies it (after
//! postinstall and synclists). A pure manifest filter: no file content is read or written.

use crate::error::Error;
use crate::graph::step::{Inputs, NodeKind, Output, Step, StepCtx};
use crate::lists::Exlist;

/// The trim step.
pub struct Trim {
    exlist: Exlist,
}

impl Trim {
    /// From the parsed exlist (with its includes).
    pub fn new(exlist: Exlist) -> Trim {
        Trim { exlist }
    }
}

impl Step for Trim {
    fn kind(&self) -> NodeKind {
        NodeKind::Trim
    }

    fn version(&self) -> u32 {
        1
    }

    fn inputs(&self) -> Result<Inputs, Error> {
        let mut i = Inputs::default();
        for f in &self.exlist.files_read {
            i.file(format!("exlist {}", f.display()), f);
        }
        Ok(i)
    }

    fn run(&self, ctx: &StepCtx<'_>, parents: &[&Output]) -> Result<Output, Error> {
        let m = super::util::parent_tree(ctx, parents)?;
        let before = m.entries.len();
        let kept = self.exlist.filter(&m);
        tracing::info!(before, after = kept.entries.len(), "exlist applied");
        let mut out = super::util::tree_output(ctx.store, &kept)?;
        out.meta
            .insert("removed".into(), (before - kept.entries.len()).to_string());
        Ok(out)
    }
}
