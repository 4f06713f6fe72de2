//! `repo`: index one package repository (issue 3).

use crate::error::Error;
use crate::graph::step::{Inputs, NodeKind, Output, Step, StepCtx};
use crate::spec::{Located, PkgDir, Spec};

/// The repo step.
pub struct Repo {
    index: usize,
    dir: PkgDir,
}

impl Repo {
    /// For the `index`-th `pkgdir` entry.
    pub fn new(_spec: &Spec, index: usize, dir: &Located<PkgDir>) -> Repo {
        Repo {
            index,
            dir: dir.value.clone(),
        }
    }
}

impl Step for Repo {
    fn kind(&self) -> NodeKind {
        NodeKind::Repo
    }

    fn version(&self) -> u32 {
        1
    }

    fn inputs(&self) -> Result<Inputs, Error> {
        let mut i = Inputs::default();
        i.option("index", self.index);
        match &self.dir {
            PkgDir::Path(p) => {
                i.file(
                    format!("repository metadata {}", p.display()),
                    p.join("repodata/repomd.xml"),
                );
            }
            PkgDir::Media(m) => {
                i.option("media", m);
            }
            PkgDir::Url(u) => {
                i.option("url", u);
            }
        }
        Ok(i)
    }

    fn run(&self, _ctx: &StepCtx<'_>, _parents: &[&Output]) -> Result<Output, Error> {
        Err(super::util::not_implemented("repo", 3))
    }
}
