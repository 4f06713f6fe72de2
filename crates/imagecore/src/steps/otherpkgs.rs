//! `otherpkgs`: xCAT's otherpkglist passes on top of the base install, as their own node.
//!
//! The packages come from the `otherpkgdir` repositories (the directory and every
//! sub-directory holding repodata, xCAT's `subdir/pkg` layout) and the base repositories. The
//! solve starts from the exact base package set (pinned by NEVRA), then runs each otherpkglist
//! pass like successive `dnf install` calls; `-pkg` entries are erased before their pass is
//! installed and `--pkg` entries after it, as xCAT does. The new packages are installed into a
//! materialised copy of the base tree, with scriptlets and rpmdb updates.

use crate::error::Error;
use crate::graph::step::{Inputs, NodeKind, Output, Step, StepCtx};
use crate::install::erase_packages;
use crate::lists::Pkglist;
use crate::solve::{PassRequest, SolveRequest, solve};
use crate::spec::{ScriptletPolicy, Spec};

/// The otherpkgs step. Parents: the base tree, `resolve`, then every repo node (base repos
/// first, the otherpkgdir repo last).
pub struct Otherpkgs {
    list: Pkglist,
    arch: String,
    weak_deps: bool,
    scriptlets: ScriptletPolicy,
    gpgkeys: Option<Vec<std::path::PathBuf>>,
}

impl Otherpkgs {
    /// From the spec and its parsed otherpkglist.
    pub fn new(spec: &Spec, list: Pkglist) -> Otherpkgs {
        let p = spec.packages.as_ref();
        Otherpkgs {
            list,
            arch: spec.osimage.arch.clone(),
            weak_deps: p.is_some_and(|p| p.weak_deps),
            scriptlets: p.map(|p| p.scriptlets).unwrap_or_default(),
            gpgkeys: crate::install::gpg::spec_keys(spec),
        }
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
        i.option("arch", &self.arch)
            .option("weak_deps", self.weak_deps)
            .option("scriptlets", format!("{:?}", self.scriptlets));
        crate::install::gpg::key_inputs(&mut i, self.gpgkeys.as_deref());
        for f in &self.list.files_read {
            i.file(format!("otherpkglist {}", f.display()), f);
        }
        Ok(i)
    }

    fn run(&self, ctx: &StepCtx<'_>, parents: &[&Output]) -> Result<Output, Error> {
        let (tree, rest) = parents.split_first().ok_or_else(|| Error::Step {
            node: ctx.node.into(),
            message: "internal: otherpkgs has no parents".into(),
        })?;
        let base = super::resolve::lock_of(ctx.store, rest[0])?;
        let mut repos = Vec::new();
        for p in &rest[1..] {
            repos.extend(super::repo::indexes(ctx, p)?);
        }
        // pass 0 pins the base image exactly; then the otherpkglist passes
        let mut passes = vec![PassRequest {
            install: base
                .all_packages()
                .map(|p| format!("{}-{}-{}.{}", p.name, p.version, p.release, p.arch))
                .collect(),
            remove: base.passes.iter().flat_map(|p| p.removed.clone()).collect(),
        }];
        let mut pre_removes = vec![Vec::new()];
        for p in &self.list.passes {
            passes.push(PassRequest {
                install: p.install.iter().map(|e| e.name.clone()).collect(),
                remove: p
                    .pre_remove
                    .iter()
                    .chain(&p.post_remove)
                    .map(|e| e.name.clone())
                    .collect(),
            });
            pre_removes.push(
                p.pre_remove
                    .iter()
                    .map(|e| e.name.clone())
                    .collect::<Vec<_>>(),
            );
        }
        let mut lock = solve(&SolveRequest {
            repos: &repos,
            arch: self.arch.clone(),
            passes,
            weak_deps: self.weak_deps,
            multilib: false,
            excludes: Vec::new(),
        })?;
        let m = super::util::parent_tree(ctx, &[*tree])?;
        let work = super::util::work_dir(ctx.scratch, m.content_size())?;
        let root = work.path().join("rootimg");
        std::fs::create_dir(&root).map_err(|e| Error::io(&root, e))?;
        let stat = crate::tree::materialize(ctx.store, &m, &root)?;
        let mut opts = super::install::options(self.scriptlets, ctx.jobs);
        opts.gpgkeys = self.gpgkeys.clone();
        let mut link = crate::install::InstallStore::new(ctx.store);
        link.placed = stat;
        let mut n = 0;
        for (i, pre) in pre_removes.iter().enumerate().skip(1) {
            if !pre.is_empty() {
                erase_packages(&root, pre, &opts)?;
                // already gone: the pass's own removals keep only the `--pkg` ones
                lock.passes[i].removed.retain(|r| !pre.contains(r));
            }
            n += super::install::install_lock(
                ctx.node,
                &root,
                &lock,
                i..i + 1,
                &repos,
                &opts,
                Some(&mut link),
            )?;
        }
        let new = crate::tree::scan(ctx.store, &root, Some(&link.placed))?;
        let mut out = super::util::tree_output(ctx.store, &new)?;
        out.meta.insert("packages".into(), n.to_string());
        Ok(out)
    }
}
