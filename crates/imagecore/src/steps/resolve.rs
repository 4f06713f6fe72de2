//! `resolve`: solve the pkglist passes (and the spec's inline `install` entries, as one extra
//! final pass) against the repository indexes into a lock.
//!
//! The lock is also written next to the spec as `osimage.lock`. When that file exists, answers
//! the same request and was solved against the same repository checksums, it is used as is (no
//! solve); otherwise the solve runs again — or, with `--locked`, the build fails.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::error::Error;
use crate::graph::step::{Inputs, NodeKind, Output, Step, StepCtx};
use crate::lists::Pkglist;
use crate::repo::RepoIndex;
use crate::solve::{Lock, PassRequest, SolveRequest, solve};
use crate::spec::Spec;
use crate::store::Store;

/// The artifact name of the lock (TOML).
pub const LOCK: &str = "osimage.lock";

/// The solver passes of a pkglist: each `#NEW_INSTALL_LIST#` pass in order, `-pkg`/`--pkg`
/// removals honoured in both lists; then the inline entries as one extra pass.
pub fn passes(list: &Pkglist, inline: &[String]) -> Vec<PassRequest> {
    let mut v: Vec<PassRequest> = list
        .passes
        .iter()
        .map(|p| PassRequest {
            install: p.install.iter().map(|e| e.name.clone()).collect(),
            remove: p
                .pre_remove
                .iter()
                .chain(&p.post_remove)
                .map(|e| e.name.clone())
                .collect(),
        })
        .filter(|p| !p.install.is_empty() || !p.remove.is_empty())
        .collect();
    if !inline.is_empty() {
        v.push(PassRequest {
            install: inline.to_vec(),
            remove: Vec::new(),
        });
    }
    v
}

/// The resolve step.
pub struct Resolve {
    pkglist: Pkglist,
    arch: String,
    install: Vec<String>,
    weak_deps: bool,
    lockfile: PathBuf,
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
            lockfile: spec.dir.join(LOCK),
        }
    }

    fn request_digest(&self, passes: &[PassRequest]) -> String {
        let mut h = blake3::Hasher::new();
        h.update(format!("arch={} weak={}\n", self.arch, self.weak_deps).as_bytes());
        for p in passes {
            h.update(format!("pass install={:?} remove={:?}\n", p.install, p.remove).as_bytes());
        }
        format!("blake3:{}", h.finalize().to_hex())
    }

    /// Solve (or reuse the lock file) for these repositories.
    pub fn lock(&self, repos: &[RepoIndex], locked: bool) -> Result<Lock, Error> {
        let passes = passes(&self.pkglist, &self.install);
        let digest = self.request_digest(&passes);
        let existing = std::fs::read_to_string(&self.lockfile)
            .ok()
            .and_then(|s| Lock::from_toml(&s).ok());
        if let Some(l) = &existing
            && l.request == digest
            && l.matches(repos)
        {
            tracing::info!("using {}", self.lockfile.display());
            return Ok(l.clone());
        }
        if locked {
            let why = match &existing {
                None => "it does not exist".to_string(),
                Some(l) if l.request != digest => "the package lists changed".to_string(),
                Some(l) => l.mismatch(repos).unwrap_or_default(),
            };
            return Err(Error::Step {
                node: "resolve".into(),
                message: format!(
                    "--locked: {} cannot be used: {why}; run `osimage lock` to update it",
                    self.lockfile.display()
                ),
            });
        }
        let req = SolveRequest {
            repos,
            arch: self.arch.clone(),
            passes,
            weak_deps: self.weak_deps,
            multilib: false,
            excludes: Vec::new(),
        };
        let mut lock = solve(&req)?;
        lock.request = digest;
        Ok(lock)
    }
}

/// The lock a resolve node produced.
pub fn lock_of(store: &Store, out: &Output) -> Result<Lock, Error> {
    let h = out.artifacts.get(LOCK).ok_or_else(|| Error::Step {
        node: "resolve".into(),
        message: "internal: resolve output has no lock".into(),
    })?;
    let text = String::from_utf8_lossy(&store.read(h)?).into_owned();
    Ok(Lock::from_toml(&text)?)
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

    fn run(&self, ctx: &StepCtx<'_>, parents: &[&Output]) -> Result<Output, Error> {
        let mut repos = Vec::new();
        for p in parents {
            repos.extend(super::repo::indexes(ctx, p)?);
        }
        let lock = self.lock(&repos, ctx.locked)?;
        let mut out = Output::default();
        out.artifacts.insert(
            LOCK.to_string(),
            ctx.store.put_bytes(lock.to_toml().as_bytes())?,
        );
        let mut counts = BTreeMap::new();
        counts.insert("packages", lock.all_packages().count());
        counts.insert("passes", lock.passes.len());
        for (k, v) in counts {
            out.meta.insert(k.into(), v.to_string());
        }
        Ok(out)
    }

    fn export(
        &self,
        store: &Store,
        out: &Output,
        _opts: &crate::graph::step::ExportOptions,
    ) -> Result<(), Error> {
        let Some(h) = out.artifacts.get(LOCK) else {
            return Ok(());
        };
        let new = store.read(h)?;
        if std::fs::read(&self.lockfile).ok().as_deref() == Some(&new[..]) {
            return Ok(());
        }
        let tmp = self.lockfile.with_extension("lock.tmp");
        std::fs::write(&tmp, &new).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &self.lockfile).map_err(|e| Error::io(&self.lockfile, e))?;
        Ok(())
    }
}
