//! `install`: install the locked packages into a tree, with scriptlets and an rpmdb (issue 4).

use crate::error::Error;
use crate::graph::step::{Inputs, NodeKind, Output, Step, StepCtx};
use crate::spec::Spec;

/// The install step.
pub struct Install {
    scriptlets: String,
}

impl Install {
    /// From the spec.
    pub fn new(spec: &Spec) -> Install {
        Install {
            scriptlets: format!("{:?}", spec.packages.as_ref().map(|p| p.scriptlets)),
        }
    }
}

impl Step for Install {
    fn kind(&self) -> NodeKind {
        NodeKind::Install
    }

    fn version(&self) -> u32 {
        1
    }

    fn inputs(&self) -> Result<Inputs, Error> {
        let mut i = Inputs::default();
        i.option("scriptlets", &self.scriptlets);
        Ok(i)
    }

    fn run(&self, _ctx: &StepCtx<'_>, _parents: &[&Output]) -> Result<Output, Error> {
        Err(super::util::not_implemented("install", 4))
    }
}
