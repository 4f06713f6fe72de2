//! `resolve`: solve the pkglist passes against the repositories into a lock (issue 3).

use crate::error::Error;
use crate::graph::step::{Inputs, NodeKind, Output, Step, StepCtx};
use crate::lists::Pkglist;
use crate::spec::Spec;

/// The resolve step.
pub struct Resolve {
    pkglist: Pkglist,
    arch: String,
    install: Vec<String>,
    weak_deps: bool,
}

impl Resolve {
    /// From the spec and its parsed pkglist.
    pub fn new(spec: &Spec, pkglist: Pkglist) -> Resolve {
        let p = spec.packages.as_ref();
        Resolve {
            pkglist,
            arch: spec.osimage.arch.clone(),
            install: p.map(|p| p.install.clone()).unwrap_or_default(),
            weak_deps: p.is_some_and(|p| p.weak_deps),
        }
    }
}

impl Step for Resolve {
    fn kind(&self) -> NodeKind {
        NodeKind::Resolve
    }

    fn version(&self) -> u32 {
        1
    }

    fn inputs(&self) -> Result<Inputs, Error> {
        let mut i = Inputs::default();
        i.option("arch", &self.arch)
            .option("install", self.install.join(" "))
            .option("weak_deps", self.weak_deps);
        for f in &self.pkglist.files_read {
            i.file(format!("pkglist {}", f.display()), f);
        }
        Ok(i)
    }

    fn run(&self, _ctx: &StepCtx<'_>, _parents: &[&Output]) -> Result<Output, Error> {
        Err(super::util::not_implemented("resolve", 3))
    }
}
