//! `copycds`: import an ISO named directly in `pkgdir` into the media store (issue 5).

use std::path::PathBuf;

use crate::error::Error;
use crate::graph::step::{Inputs, NodeKind, Output, Step, StepCtx};
use crate::spec::{Located, PkgDir, Spec};

/// The copycds step.
pub struct Copycds {
    iso: PathBuf,
}

impl Copycds {
    /// For one `pkgdir` entry that names an ISO file.
    pub fn new(_spec: &Spec, dir: &Located<PkgDir>) -> Copycds {
        let iso = match &dir.value {
            PkgDir::Path(p) => p.clone(),
            PkgDir::Media(m) | PkgDir::Url(m) => PathBuf::from(m),
        };
        Copycds { iso }
    }
}

impl Step for Copycds {
    fn kind(&self) -> NodeKind {
        NodeKind::Copycds
    }

    fn version(&self) -> u32 {
        1
    }

    fn inputs(&self) -> Result<Inputs, Error> {
        let mut i = Inputs::default();
        i.file(format!("media {}", self.iso.display()), &self.iso);
        Ok(i)
    }

    fn run(&self, _ctx: &StepCtx<'_>, _parents: &[&Output]) -> Result<Output, Error> {
        Err(super::util::not_implemented("copycds", 5))
    }
}
