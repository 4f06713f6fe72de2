//! The install transaction, in rpm 4.18's order (`rpm -U`): verify + stage in parallel, then
//! `%pretrans`, `%transfiletriggerun`, per new package (`%triggerprein`, `%pre`, place files,
//! file triggers, `%post`, `%triggerin`), then the installed packages it replaces are erased
//! (same name, or obsoleted: `%preun`/`%postun` with `$1` = 1, only the files the new
//! packages do not own are removed), `%posttrans` and transaction file triggers, then rpmdb.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use std::collections::HashMap;

use super::live::{LiveDb, LivePkg};
use super::package::Pkg;
use super::place::Placer;
use super::scriptlet::Script;
use super::stage::{self, Staged};
use super::users::IdMaps;
use super::{
    InstallError, InstallOptions, InstallReport, InstallStore, RpmInput, ScriptletMode, rpmdb,
    stagecache, trans_triggers, triggers,
};
use crate::store::Store;
use triggers::Class;

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

/// CPU seconds (user + system, all threads) used by this process so far, for phase timings in
/// the logs (0 when /proc is not readable).
pub(crate) fn cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // fields after the parenthesised command name; utime and stime are fields 14 and 15
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
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
    let inputs: Vec<RpmInput> = rpms
        .iter()
        .map(|p| RpmInput {
            path: p.clone(),
            sha256: None,
        })
        .collect();
    install_with_store(root, &inputs, opts, None)
}

fn sha_mismatch(path: &Path, got: &str, want: &str) -> InstallError {
    InstallError::Package {
        path: path.to_path_buf(),
        message: format!(
            "sha256 {got} does not match the expected {want} (from the lock) — the file changed under the same repository metadata; re-run createrepo and `osimage lock`"
        ),
    }
}

/// Stage one package: from the store's stage cache when it has this exact file, else from its
/// payload (verified; then cached). Returns whether the cache served it.
fn stage_one(
    p: &Pkg,
    input: &RpmInput,
    dir: &Path,
    store: Option<&Store>,
) -> Result<(Staged, bool), InstallError> {
    let expected = input
        .sha256
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(str::to_ascii_lowercase);
    if let Some(store) = store {
        // the cache key is always a digest of the file as it is now
        let key = match &expected {
            Some(e) => e.clone(),
            None => stagecache::sha256_file(&input.path)?,
        };
        let verify = || -> Result<(), InstallError> {
            if expected.is_some() {
                let got = stagecache::sha256_file(&input.path)?;
                if got != key {
                    return Err(sha_mismatch(&input.path, &got, &key));
                }
            }
            Ok(())
        };
        if let Some(st) = stagecache::restore(store, &key, p, dir, verify)? {
            return Ok((st, true));
        }
    }
    let t = std::time::Instant::now();
    let mut st = stage::stage_into(
        p,
        dir,
        expected.is_some() || store.is_some(),
        store.is_some(),
        store,
    )?;
    let staged_in = t.elapsed();
    if let (Some(want), Some(got)) = (&expected, &st.file_sha256)
        && want != got
    {
        return Err(sha_mismatch(&input.path, got, want));
    }
    if let Some(store) = store {
        stagecache::save(store, p, &mut st)?;
    }
    tracing::info!(
        "install: {} unpacked in {staged_in:?}, stored in {:?}",
        p.nevra,
        t.elapsed() - staged_in
    );
    Ok((st, false))
}

/// [`install_packages`] with expected file digests and, optionally, a store: unpacked packages
/// are then cached in (and reused from) the store, placed files' contents are store blobs, and
/// `link.placed` receives the stat entries of the placed files (see [`InstallStore`]).
pub fn install_with_store(
    root: &Path,
    rpms: &[RpmInput],
    opts: &InstallOptions,
    mut link: Option<&mut InstallStore<'_>>,
) -> Result<InstallReport, InstallError> {
    std::fs::create_dir_all(root).map_err(|source| InstallError::Io {
        path: root.to_path_buf(),
        source,
    })?;
    let pool = pool(opts.jobs)?;
    let t0 = std::time::Instant::now();
    let c0 = cpu_secs();
    let store: Option<&Store> = link.as_ref().map(|l| l.store);
    if let Some(store) = store {
        store.put_bytes(b"")?; // the content of every empty file
    }
    let mut report = InstallReport::default();

    // 1. headers (signature- and digest-checked) in parallel.
    let keys = opts
        .gpgkeys
        .as_deref()
        .map(super::gpg::Keyring::load)
        .transpose()?;
    let pkgs: Vec<Pkg> = pool.install(|| {
        rpms.par_iter()
            .map(|p| Pkg::load_checked(&p.path, keys.as_ref()))
            .collect::<Result<Vec<_>, _>>()
    })?;
    tracing::info!(
        "install: headers of {} packages read in {:?}",
        pkgs.len(),
        t0.elapsed()
    );

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
    let staged: Vec<(Staged, bool)> = pool.install(|| {
        pkgs.par_iter()
            .zip(rpms)
            .enumerate()
            .map(|(i, (p, input))| stage_one(p, input, &staging.join(i.to_string()), store))
            .collect::<Result<Vec<_>, _>>()
    })?;
    let hits = staged.iter().filter(|(_, hit)| *hit).count();
    if let Some(l) = link.as_deref_mut() {
        l.cache_hits += hits;
        l.cache_misses += staged.len() - hits;
    }
    let staged: Vec<Staged> = staged.into_iter().map(|(s, _)| s).collect();

    // Checks against the transaction and the image (after verification, so a corrupted
    // package is reported as such first).
    let dbpath = rpmdb::detect_dbpath(root, opts.dbpath.as_deref(), &pkgs);
    let all: Vec<rpmdb::Installed> = if rpmdb::exists(root, &dbpath) {
        rpmdb::all_installed(root, &dbpath)?
    } else {
        Vec::new()
    };
    let mut db = LiveDb::new(&all, &pkgs);
    let erase_order = replaced(&db, pkgs.len());
    let kept_rows: Vec<&rpmdb::Installed> = all
        .iter()
        .filter(|i| !erase_order.contains(&i.hnum))
        .collect();
    let db_blobs: Vec<Vec<u8>> = kept_rows.iter().map(|i| i.blob.clone()).collect();
    let installed: Vec<(String, Vec<super::package::FileInfo>)> = db_blobs
        .iter()
        .filter_map(|b| super::package::installed_files(b))
        .collect();
    if !opts.nodeps {
        super::deps::check(&pkgs, &db_blobs, &installed)?;
    }
    let skips = super::conflict::check(&pkgs, &installed)?;
    // header digests of the replaced packages' files (%config rules of an upgrade)
    let old_digests: HashMap<String, String> = all
        .iter()
        .filter(|i| erase_order.contains(&i.hnum))
        .filter_map(|i| super::package::installed_files(&i.blob))
        .flat_map(|(_, files)| files.into_iter().map(|f| (f.path, f.digest)))
        .collect();
    tracing::info!(
        "install: verified and staged {} packages ({hits} from the stage cache) in {:?} ({:.2} CPU-s)",
        pkgs.len(),
        t0.elapsed(),
        cpu_secs() - c0
    );
    let t1 = std::time::Instant::now();
    let c1 = cpu_secs();
    // 3. assemble in transaction order, then erase the replaced packages.
    let run = opts.scriptlets == ScriptletMode::Run;
    // %pretrans and %posttrans get the instances before the transaction + 1
    let trans_arg: Vec<String> = pkgs
        .iter()
        .map(|p| (db.count(&p.name) + 1).to_string())
        .collect();
    let new_rows: Vec<i64> = (0..pkgs.len())
        .filter_map(|i| db.new_pkg(i).map(|p| p.hnum))
        .collect();
    let mut ctx = triggers::Ctx {
        root,
        scratch: &staging_name,
        report: &mut report,
    };
    let mut done: Vec<usize> = Vec::new();
    let mut gone: Vec<i64> = Vec::new();
    // Packages placed (or erased) before a failure are still recorded in the rpmdb (as rpm
    // does).
    let assembled = (|| -> Result<(), InstallError> {
        if run {
            for (i, (p, s)) in pkgs.iter().zip(&scripts).enumerate() {
                if let Some(sc) = &s.pretrans {
                    ctx.run(
                        &p.nevra,
                        sc,
                        std::slice::from_ref(&trans_arg[i]),
                        None,
                        true,
                    )?;
                }
            }
            let runs = trans_triggers::at_start(&db, &erase_order, &new_rows);
            ctx.run_all(runs, false)?;
        }
        let mut ids = IdMaps::load(root);
        for (i, (p, st)) in pkgs.iter().zip(&staged).enumerate() {
            let row = new_rows[i];
            let n = [(db.count(&p.name) + 1).to_string()];
            if run {
                if let Some(me) = db.get(row) {
                    ctx.run_all(triggers::prein(&db, me), false)?;
                }
                if let Some(sc) = &scripts[i].pre {
                    ctx.run(&p.nevra, sc, &n, None, true)?;
                    ids = IdMaps::load(root);
                }
            }
            let mut placer =
                Placer::new(root, &ids, &mut ctx.report.warnings).replacing(&old_digests);
            placer.place(p, st, &skips[i])?;
            if let Some(l) = link.as_deref_mut() {
                record_placed(root, placer.into_placed(), &mut l.placed);
            }
            db.add(row);
            done.push(i);
            if run && let Some(me) = db.get(row) {
                ctx.run_all(triggers::file_in(&db, me, Class::Upper), false)?;
                if let Some(sc) = &scripts[i].post {
                    ctx.run(&p.nevra, sc, &n, None, false)?;
                }
                ctx.run_all(triggers::pkg_in(&db, me), false)?;
                ctx.run_all(triggers::file_in(&db, me, Class::Lower), false)?;
                ids = IdMaps::load(root);
            }
            ctx.report.packages.push(p.nevra.clone());
        }
        let mut postun = Vec::new();
        for h in &erase_order {
            if let Some(v) = all.iter().find(|i| i.hnum == *h) {
                super::erase::erase_one(&mut ctx, &mut db, v, run, &mut postun, &dbpath)?;
                gone.push(*h);
            }
        }
        if run {
            for (i, (p, s)) in pkgs.iter().zip(&scripts).enumerate() {
                if let Some(sc) = &s.posttrans {
                    ctx.run(
                        &p.nevra,
                        sc,
                        std::slice::from_ref(&trans_arg[i]),
                        None,
                        false,
                    )?;
                }
            }
            let runs = trans_triggers::at_end(&db, &new_rows, postun);
            ctx.run_all(runs, false)?;
        }
        Ok(())
    })();
    tracing::info!(
        "install: assembled (with scriptlets) in {:?} ({:.2} CPU-s)",
        t1.elapsed(),
        cpu_secs() - c1
    );
    let t2 = std::time::Instant::now();
    // 4. rpmdb: the new packages, then the replaced ones leave.
    let placed: Vec<&Pkg> = done.iter().map(|&i| &pkgs[i]).collect();
    rpmdb::add_packages(root, &dbpath, &placed)?;
    rpmdb::remove(root, &dbpath, &gone)?;
    assembled?;
    tracing::info!("install: rpmdb written in {:?}", t2.elapsed());
    Ok(report)
}

/// The installed packages the transaction's packages replace (same name, or obsoleted), in
/// the order rpm erases them: after every install, for each new package in transaction
/// order its obsoleted packages then its older versions, each group in reverse rpmdb order
/// (rpm's tsort queues elements without dependencies between them last-added first).
fn replaced(db: &LiveDb, n: usize) -> Vec<i64> {
    let mut order: Vec<i64> = Vec::new();
    for i in 0..n {
        let Some(me) = db.new_pkg(i) else { continue };
        let olds: Vec<&LivePkg> = db
            .live()
            .filter(|o| me.replaces(o) && !order.contains(&o.hnum))
            .collect();
        let (same, obs): (Vec<&LivePkg>, Vec<&LivePkg>) =
            olds.into_iter().partition(|o| o.name == me.name);
        order.extend(obs.iter().rev().map(|o| o.hnum));
        order.extend(same.iter().rev().map(|o| o.hnum));
    }
    order
}

/// Stat entries of the files just placed (content blob known from staging), keyed by their
/// root-relative path as a walk of the root sees it.
fn record_placed(
    root: &Path,
    placed: Vec<(PathBuf, crate::hash::Hash)>,
    into: &mut crate::tree::StatCache,
) {
    for (path, blob) in placed {
        let (Ok(rel), Ok(md)) = (path.strip_prefix(root), std::fs::symlink_metadata(&path)) else {
            continue;
        };
        if let Some(rel) = rel.to_str()
            && md.is_file()
        {
            into.files
                .insert(rel.to_string(), crate::tree::StatEntry::new(&md, blob));
        }
    }
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
            has_triggers: super::rawheader::RawHeader::parse_file(&p.rpm.header_blob)
                .is_some_and(|h| triggers::has_triggers(&LivePkg::from_header(&h, 0, None))),
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
