//! `copycds`: a `pkgdir` entry that names an ISO file imports it into the media store
//! (see [`super::repo::media_store`]) on the first build; afterwards the
//! node is a cache hit. Its key is the ISO's content hash (a size+mtime+inode stamp only lets an
//! unchanged file skip re-hashing; it is never the key).

use std::path::PathBuf;

use crate::error::Error;
use crate::graph::step::{Inputs, NodeKind, Output, Step, StepCtx};
use crate::media::{CopyOptions, copycds};
use crate::spec::{Located, PkgDir, Spec};

/// The copycds step.
pub struct Copycds {
    iso: PathBuf,
    store: PathBuf,
}

impl Copycds {
    /// For one `pkgdir` entry that names an ISO file.
    pub fn new(spec: &Spec, dir: &Located<PkgDir>) -> Copycds {
        let iso = match &dir.value {
            PkgDir::Path(p) => p.clone(),
            PkgDir::Media(m) | PkgDir::Url(m) => PathBuf::from(m),
        };
        Copycds {
            iso,
            store: super::repo::media_store(spec),
        }
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
        i.option("store", self.store.display());
        i.file(format!("media {}", self.iso.display()), &self.iso);
        Ok(i)
    }

    fn run(&self, _ctx: &StepCtx<'_>, _parents: &[&Output]) -> Result<Output, Error> {
        let opts = CopyOptions {
            name: None,
            arch: None,
            path: None,
            store: self.store.clone(),
            inspection: false,
            nonoverwrite: false,
            noosimage: true,
            spec_dir: None,
        };
        let reports = copycds(std::slice::from_ref(&self.iso), &opts, &|_, _| {})?;
        let r = reports.into_iter().next().ok_or_else(|| Error::Step {
            node: "copycds".into(),
            message: format!("{}: nothing was imported", self.iso.display()),
        })?;
        let mut out = Output::default();
        out.meta.insert("dest".into(), r.dest.display().to_string());
        out.meta.insert("distname".into(), r.distname);
        out.meta.insert("arch".into(), r.arch);
        out.meta.insert("fingerprint".into(), r.fingerprint);
        Ok(out)
    }

    fn export(
        &self,
        _store: &crate::store::Store,
        out: &Output,
        _opts: &crate::graph::step::ExportOptions,
    ) -> Result<(), Error> {
        // A cache hit must still find the media on disk (someone may have removed it).
        match out.meta.get("dest") {
            Some(d) if std::path::Path::new(d).is_dir() => Ok(()),
            Some(d) => Err(Error::Step {
                node: "copycds".into(),
                message: format!(
                    "{d} (imported from {}) is gone; run `osimage cache gc` or copycds again",
                    self.iso.display()
                ),
            }),
            None => Ok(()),
        }
    }
}
