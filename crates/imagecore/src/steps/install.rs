//! `install`: install the locked packages into a tree, pass by pass (successive transactions,
//! like successive `dnf install` calls), with scriptlets and an rpmdb, then scan the result into
//! the store. Each `.rpm` is checked against the lock's sha256 in the engine's single read of
//! it; unpacked packages are cached in the store by that sha256 (shared across images and
//! passes); the output manifest reuses the content hashes known from staging, so the scan of
//! the finished tree only re-reads files that scriptlets changed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::graph::step::{Inputs, NodeKind, Output, Step, StepCtx};
use crate::install::{
    InstallOptions, InstallStore, RpmInput, ScriptletMode, erase_nevras, erase_packages,
    install_with_store,
};
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

/// The `.rpm` files of a pass with the sha256 the lock expects of each (checked by the engine
/// in the same read that unpacks the payload).
pub fn pass_files(
    node: &str,
    pass: &LockPass,
    repos: &[RepoIndex],
) -> Result<Vec<RpmInput>, Error> {
    let bases: HashMap<&str, &Path> = repos
        .iter()
        .map(|r| (r.name.as_str(), r.base.as_path()))
        .collect();
    pass.packages
        .iter()
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
            if let Err(e) = std::fs::metadata(&path) {
                return Err(Error::Step {
                    node: node.to_string(),
                    message: format!(
                        "{}: {e} (the lock names it for {}; is the repository complete?)",
                        path.display(),
                        p.nvra()
                    ),
                });
            }
            Ok(RpmInput {
                path,
                sha256: (!p.sha256.is_empty()).then(|| p.sha256.clone()),
            })
        })
        .collect()
}

/// Install a lock's passes into `root`. With `link`, unpacked packages are cached in the store
/// and `link.placed` collects the placed files' stat entries (for the scan of the result).
pub fn install_lock(
    node: &str,
    root: &Path,
    lock: &Lock,
    passes: std::ops::Range<usize>,
    repos: &[RepoIndex],
    opts: &InstallOptions,
    mut link: Option<&mut InstallStore<'_>>,
) -> Result<usize, Error> {
    let mut n = 0;
    for pass in &lock.passes[passes] {
        // an upgrade of a package from an earlier pass (`pass.upgraded`) is done by the
        // engine as `rpm -U` does: the new version is installed, then the old one erased
        let files = pass_files(node, pass, repos)?;
        if !files.is_empty() {
            let rep = install_with_store(root, &files, opts, link.as_deref_mut())?;
            for w in &rep.warnings {
                tracing::warn!("{w}");
            }
            n += rep.packages.len();
        }
        // dropped by the solve but replaced by no package of the pass
        erase_nevras(root, &pass.upgraded, opts)?;
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
        let t0 = std::time::Instant::now();
        let work = super::util::work_dir(ctx.scratch, 1 << 30)?;
        let root = work.path().join("rootimg");
        let mut opts = options(self.scriptlets, ctx.jobs);
        opts.gpgkeys = self.gpgkeys.clone();
        let mut link = InstallStore::new(ctx.store);
        let n = install_lock(
            ctx.node,
            &root,
            &lock,
            0..lock.passes.len(),
            &repos,
            &opts,
            Some(&mut link),
        )?;
        let t = std::time::Instant::now();
        let c = crate::install::cpu_secs();
        let (m, stats) = crate::tree::scan_with_stats(ctx.store, &root, Some(&link.placed))?;
        tracing::info!(
            "install: scanned {} entries ({} files re-hashed, {} known from staging) in {:?} ({:.2} CPU-s); stage cache: {} hits, {} misses",
            stats.entries,
            stats.hashed,
            stats.reused,
            t.elapsed(),
            crate::install::cpu_secs() - c,
            link.cache_hits,
            link.cache_misses
        );
        let mut out = super::util::tree_output(ctx.store, &m)?;
        out.meta.insert("packages".into(), n.to_string());
        let t1 = std::time::Instant::now();
        // the tree becomes the checkout a postinstall overlay sits on (else it is removed)
        if let Some(id) = &out.tree {
            crate::tree::overlay::donate(ctx.store, id, &root);
        }
        drop(work);
        tracing::info!(
            "install: node ran {:?} (work tree removed in {:?})",
            t0.elapsed(),
            t1.elapsed()
        );
        Ok(out)
    }
}
