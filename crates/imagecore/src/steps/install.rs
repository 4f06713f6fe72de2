//! `install`: install the locked packages into a tree, pass by pass (successive transactions,
//! like successive `dnf install` calls), with scriptlets and an rpmdb, then scan the result into
//! the store. Each `.rpm` is checked against the lock's sha256 before anything is unpacked.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use sha2::Digest;

use crate::error::Error;
use crate::graph::step::{Inputs, NodeKind, Output, Step, StepCtx};
use crate::install::{InstallOptions, ScriptletMode, erase_packages, install_packages};
use crate::repo::RepoIndex;
use crate::solve::{Lock, LockPass};
use crate::spec::{ScriptletPolicy, Spec};

/// The install step.
pub struct Install {
    scriptlets: ScriptletPolicy,
    gpgkeys: Option<Vec<PathBuf>>,
}

impl Install {
    /// From the spec.
    pub fn new(spec: &Spec) -> Install {
        Install {
            scriptlets: spec
                .packages
                .as_ref()
                .map(|p| p.scriptlets)
                .unwrap_or_default(),
            gpgkeys: crate::install::gpg::spec_keys(spec),
        }
    }
}

fn sha256_file(p: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(p)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// The `.rpm` paths of a pass, each checked against the lock's sha256 (in parallel).
pub fn pass_files(node: &str, pass: &LockPass, repos: &[RepoIndex]) -> Result<Vec<PathBuf>, Error> {
    let bases: HashMap<&str, &Path> = repos
        .iter()
        .map(|r| (r.name.as_str(), r.base.as_path()))
        .collect();
    pass.packages
        .par_iter()
        .map(|p| {
            let base = bases.get(p.repo.as_str()).ok_or_else(|| Error::Step {
                node: node.to_string(),
                message: format!(
                    "{}: repository {} of the lock is not configured; run `osimage lock` again",
                    p.nvra(),
                    p.repo
                ),
            })?;
            let path = base.join(&p.location);
            let got = sha256_file(&path).map_err(|e| Error::Step {
                node: node.to_string(),
                message: format!(
                    "{}: {e} (the lock names it for {}; is the repository complete?)",
                    path.display(),
                    p.nvra()
                ),
            })?;
            if !p.sha256.is_empty() && got != p.sha256 {
                return Err(Error::Step {
                    node: node.to_string(),
                    message: format!(
                        "{}: sha256 {got} does not match the lock's {} — the file changed under the same repository metadata; re-run createrepo and `osimage lock`",
                        path.display(),
                        p.sha256
                    ),
                });
            }
            Ok(path)
        })
        .collect()
}

/// Install a lock's passes into `root`.
pub fn install_lock(
    node: &str,
    root: &Path,
    lock: &Lock,
    passes: std::ops::Range<usize>,
    repos: &[RepoIndex],
    opts: &InstallOptions,
) -> Result<usize, Error> {
    let mut n = 0;
    for pass in &lock.passes[passes] {
        // an upgrade of a package from an earlier pass: the old version goes first (files end
        // up as `rpm -U` leaves them; its erase scriptlets run)
        let old: Vec<String> = pass
            .upgraded
            .iter()
            .filter_map(|nevra| {
                let mut it = nevra.rsplitn(3, '-');
                let (_rel_arch, _ver, name) = (it.next()?, it.next()?, it.next()?);
                Some(name.to_string())
            })
            .collect();
        if !old.is_empty() {
            erase_packages(root, &old, opts)?;
        }
        let files = pass_files(node, pass, repos)?;
        if !files.is_empty() {
            let rep = install_packages(root, &files, opts)?;
            for w in &rep.warnings {
                tracing::warn!("{w}");
            }
            n += rep.packages.len();
        }
        if !pass.removed.is_empty() {
            erase_packages(root, &pass.removed, opts)?;
        }
    }
    Ok(n)
}

/// Options for the install engine from the spec policy.
pub fn options(policy: ScriptletPolicy, jobs: usize) -> InstallOptions {
    InstallOptions {
        scriptlets: match policy {
            ScriptletPolicy::Run => ScriptletMode::Run,
            ScriptletPolicy::Skip => ScriptletMode::Skip,
        },
        dbpath: None,
        nodeps: false,
        jobs,
        gpgkeys: None,
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
        i.option("scriptlets", format!("{:?}", self.scriptlets));
        crate::install::gpg::key_inputs(&mut i, self.gpgkeys.as_deref());
        Ok(i)
    }

    fn run(&self, ctx: &StepCtx<'_>, parents: &[&Output]) -> Result<Output, Error> {
        let lock = super::resolve::lock_of(ctx.store, parents[0])?;
        let mut repos = Vec::new();
        for p in &parents[1..] {
            repos.extend(super::repo::indexes(ctx, p)?);
        }
        let work = super::util::work_dir(ctx.scratch, 1 << 30)?;
        let root = work.path().join("rootimg");
        let mut opts = options(self.scriptlets, ctx.jobs);
        opts.gpgkeys = self.gpgkeys.clone();
        let n = install_lock(ctx.node, &root, &lock, 0..lock.passes.len(), &repos, &opts)?;
        let m = crate::tree::scan(ctx.store, &root, None)?;
        let mut out = super::util::tree_output(ctx.store, &m)?;
        out.meta.insert("packages".into(), n.to_string());
        Ok(out)
    }
}
