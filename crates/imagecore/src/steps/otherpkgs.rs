//! `otherpkgs`: xCAT's otherpkglist passes on top of the base install (issue 4).

use crate::error::Error;
use crate::graph::step::{Inputs, NodeKind, Output, Step, StepCtx};
use crate::lists::Pkglist;
use crate::spec::Spec;

/// The otherpkgs step.
pub struct Otherpkgs {
    list: Pkglist,
}

impl Otherpkgs {
    /// From the spec and its parsed otherpkglist.
    pub fn new(_spec: &Spec, list: Pkglist) -> Otherpkgs {
        Otherpkgs { list }
    }
}

impl Step for Otherpkgs {
    fn kind(&self) -> NodeKind {
        NodeKind::Otherpkgs
    }

    fn version(&self) -> u32 {
        1
    }

    fn inputs(&self) -> Result<Inputs, Error> {
        let mut i = Inputs::default();
        for f in &self.list.files_read {
            i.file(format!("otherpkglist {}", f.display()), f);
        }
        Ok(i)
    }

    fn run(&self, _ctx: &StepCtx<'_>, _parents: &[&Output]) -> Result<Output, Error> {
        Err(super::util::not_implemented("otherpkgs", 4))
    }
}
