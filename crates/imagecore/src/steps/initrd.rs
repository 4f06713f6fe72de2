//! `initrd`: build the stateless initrd (issue 6).

use crate::error::Error;
use crate::graph::step::{Inputs, NodeKind, Output, Step, StepCtx};
use crate::spec::Spec;

/// The initrd step.
pub struct Initrd {
    netdrivers: Vec<String>,
    defaults: bool,
    rootlimit: String,
}

impl Initrd {
    /// From the spec's `[kernel]`.
    pub fn new(spec: &Spec) -> Initrd {
        let k = spec.kernel.as_ref();
        Initrd {
            netdrivers: k.map(|k| k.netdrivers.clone()).unwrap_or_default(),
            defaults: k.is_none_or(|k| k.netdrivers_defaults),
            rootlimit: k.map(|k| k.rootlimit.clone()).unwrap_or_default(),
        }
    }
}

impl Step for Initrd {
    fn kind(&self) -> NodeKind {
        NodeKind::Initrd
    }

    fn version(&self) -> u32 {
        1
    }

    fn inputs(&self) -> Result<Inputs, Error> {
        let mut i = Inputs::default();
        i.option("netdrivers", self.netdrivers.join(","))
            .option("netdrivers_defaults", self.defaults)
            .option("rootlimit", &self.rootlimit);
        Ok(i)
    }

    fn run(&self, _ctx: &StepCtx<'_>, _parents: &[&Output]) -> Result<Output, Error> {
        Err(super::util::not_implemented("initrd", 6))
    }
}
