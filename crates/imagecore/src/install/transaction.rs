//! The install transaction: verify + stage in parallel, then %pretrans, per package (%pre,
//! place files, %post, file triggers), %posttrans and transaction file triggers, then rpmdb.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::package::Pkg;
use super::place::Placer;
use super::scriptlet::Script;
use super::stage::{self, Staged};
use super::users::IdMaps;
use super::{InstallError, InstallOptions, InstallReport, ScriptletMode, rpmdb, triggers};

/// Removes the staging directory on every exit path.
pub(crate) struct StagingGuard(pub PathBuf);

impl Drop for StagingGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn pool(jobs: usize) -> Result<rayon::ThreadPool, InstallError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .map_err(|e| InstallError::Package {
            path: PathBuf::from("(thread pool)"),
            message: e.to_string(),
        })
}

pub(crate) fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Install `rpms` (in transaction order) into the directory `root`.
///
/// Every package is verified (header and payload digests) and unpacked to staging before
/// anything is written to the root: a corrupted package fails the call naming its file and
/// leaves the root untouched.
pub fn install_packages(
    root: &Path,
    rpms: &[PathBuf],
    opts: &InstallOptions,
) -> Result<InstallReport, InstallError> {
    std::fs::create_dir_all(root).map_err(|source| InstallError::Io {
        path: root.to_path_buf(),
        source,
    })?;
    let pool = pool(opts.jobs)?;
    let t0 = std::time::Instant::now();
    let mut report = InstallReport::default();

    // 1. headers (signature- and digest-checked) in parallel.
    let keys = opts
        .gpgkeys
        .as_deref()
        .map(super::gpg::Keyring::load)
        .transpose()?;
    let pkgs: Vec<Pkg> = pool.install(|| {
        rpms.par_iter()
            .map(|p| Pkg::load_checked(p, keys.as_ref()))
            .collect::<Result<Vec<_>, _>>()
    })?;

    let scripts: Vec<PkgScripts> = pkgs.iter().map(PkgScripts::from_pkg).collect();
    if opts.scriptlets == ScriptletMode::Run {
        if let Some((p, _)) = pkgs.iter().zip(&scripts).find(|(_, s)| s.any())
            && !is_root()
        {
            return Err(InstallError::NotRoot(p.nevra.clone()));
        }
        // Lua scriptlets run through the image's rpm: refuse before unpacking when none
        // can be there
        if let Some((p, sc)) = pkgs
            .iter()
            .zip(&scripts)
            .find_map(|(p, s)| s.all().find(|sc| sc.is_lua()).map(|sc| (p, sc)))
            && !super::lua::runnable(root, &pkgs)
        {
            return Err(super::lua::no_rpm(&p.nevra, &sc.tag));
        }
    } else {
        for (p, s) in pkgs.iter().zip(&scripts) {
            if s.any() {
                report.warnings.push(format!(
                    "{}: scriptlets skipped (scriptlets = \"skip\")",
                    p.nevra
                ));
            }
        }
    }

    // 2. payloads: decompress + verify + stage, in parallel.
    let staging_name = format!(".osimage-staging-{}", std::process::id());
    let staging = root.join(&staging_name);
    let _guard = StagingGuard(staging.clone());
    let staged: Vec<Staged> = pool.install(|| {
        pkgs.par_iter()
            .enumerate()
            .map(|(i, p)| stage::stage(p, &staging.join(i.to_string())))
            .collect::<Result<Vec<_>, _>>()
    })?;

    // Checks against the transaction and the image (after verification, so a corrupted
    // package is reported as such first).
    let dbpath = rpmdb::detect_dbpath(root, opts.dbpath.as_deref(), &pkgs);
    let db_blobs: Vec<Vec<u8>> = if rpmdb::exists(root, &dbpath) {
        rpmdb::all_installed(root, &dbpath)?
            .into_iter()
            .map(|i| i.blob)
            .collect()
    } else {
        Vec::new()
    };
    let installed: Vec<(String, Vec<super::package::FileInfo>)> = db_blobs
        .iter()
        .filter_map(|b| super::package::installed_files(b))
        .collect();
    if !opts.nodeps {
        super::deps::check(&pkgs, &db_blobs, &installed)?;
    }
    let skips = super::conflict::check(&pkgs, &installed)?;
    tracing::info!(
        "install: verified and staged {} packages in {:?}",
        pkgs.len(),
        t0.elapsed()
    );
    let t1 = std::time::Instant::now();
    // 3. assemble in transaction order.
    let run = opts.scriptlets == ScriptletMode::Run;
    let mut counts = rpmdb::installed_counts(root, &dbpath)?;
    let mut ctx = triggers::Ctx {
        root,
        scratch: &staging_name,
        report: &mut report,
        installed: triggers::installed_triggers(&db_blobs),
    };
    let mut done: Vec<usize> = Vec::new();
    // Packages placed before a failure are still recorded in the rpmdb (as rpm does).
    let assembled = (|| -> Result<(), InstallError> {
        if run {
            for (p, s) in pkgs.iter().zip(&scripts) {
                if let Some(sc) = &s.pretrans {
                    let n = counts.get(&p.name).copied().unwrap_or(0) + 1;
                    ctx.run(&p.nevra, sc, &[n.to_string()], None, true)?;
                }
            }
        }
        let mut ids = IdMaps::load(root);
        for (i, (p, st)) in pkgs.iter().zip(&staged).enumerate() {
            let n = counts.get(&p.name).copied().unwrap_or(0) + 1;
            if run && let Some(sc) = &scripts[i].pre {
                ctx.run(&p.nevra, sc, &[n.to_string()], None, true)?;
                ids = IdMaps::load(root);
            }
            let mut placer = Placer::new(root, &ids, &mut ctx.report.warnings);
            placer.place(p, st, &skips[i])?;
            *counts.entry(p.name.clone()).or_default() += 1;
            done.push(i);
            if run {
                triggers::file_triggers_in(&mut ctx, &pkgs, &done, i, &counts)?;
                if let Some(sc) = &scripts[i].post {
                    ctx.run(&p.nevra, sc, &[n.to_string()], None, false)?;
                }
                triggers::after_install(&mut ctx, &pkgs, &done, i, &counts)?;
                ids = IdMaps::load(root);
            }
            ctx.report.packages.push(p.nevra.clone());
        }
        if run {
            for (p, s) in pkgs.iter().zip(&scripts) {
                if let Some(sc) = &s.posttrans {
                    let n = counts.get(&p.name).copied().unwrap_or(1);
                    ctx.run(&p.nevra, sc, &[n.to_string()], None, false)?;
                }
            }
            triggers::end_of_transaction(&mut ctx, &pkgs, &counts)?;
        }
        Ok(())
    })();
    tracing::info!("install: assembled (with scriptlets) in {:?}", t1.elapsed());
    let t2 = std::time::Instant::now();
    // 4. rpmdb.
    let placed: Vec<&Pkg> = done.iter().map(|&i| &pkgs[i]).collect();
    rpmdb::add_packages(root, &dbpath, &placed)?;
    assembled?;
    tracing::info!("install: rpmdb written in {:?}", t2.elapsed());
    Ok(report)
}

/// The install-side scriptlets of one package.
pub(crate) struct PkgScripts {
    pub pretrans: Option<Script>,
    pub pre: Option<Script>,
    pub post: Option<Script>,
    pub posttrans: Option<Script>,
    pub has_triggers: bool,
}

impl PkgScripts {
    pub fn from_pkg(p: &Pkg) -> PkgScripts {
        let h = &p.rpm.meta.header;
        let get = |tag: &str, body: u32, prog: u32| -> Option<Script> {
            let body_s = tag_strings(h, body).and_then(|v| v.into_iter().next());
            let prog_v = tag_strings(h, prog);
            if body_s.is_none() && prog_v.is_none() {
                return None;
            }
            Some(Script {
                tag: tag.to_string(),
                prog: prog_v.unwrap_or_else(|| vec!["/bin/sh".into()]),
                body: body_s.unwrap_or_default(),
            })
        };
        PkgScripts {
            pretrans: get("%pretrans", 1151, 1153),
            pre: get("%pre", 1023, 1085),
            post: get("%post", 1024, 1086),
            posttrans: get("%posttrans", 1152, 1154),
            has_triggers: !triggers::file_triggers(p).is_empty()
                || !triggers::pkg_triggers(p).is_empty(),
        }
    }

    fn all(&self) -> impl Iterator<Item = &Script> {
        [&self.pretrans, &self.pre, &self.post, &self.posttrans]
            .into_iter()
            .flatten()
    }

    fn any(&self) -> bool {
        self.all().next().is_some() || self.has_triggers
    }
}

/// A string or string-array tag by number (the first element of an array).
pub(crate) fn tag_strings(h: &rpm::Header<rpm::IndexTag>, tag: u32) -> Option<Vec<String>> {
    match h.entry(tag).ok()? {
        rpm::IndexData::StringTag(s) => Some(vec![s]),
        rpm::IndexData::StringArray(v) | rpm::IndexData::I18NString(v) => Some(v),
        _ => None,
    }
}
