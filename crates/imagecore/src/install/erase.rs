//! Erasing packages: on their own (xCAT otherpkgs `-pkg` / `--pkg`, `osimage install
//! --erase`) or as the second half of an upgrade (the replaced versions, after every new
//! package is in). Per package: triggers and `%preun`, remove the files that no other
//! package in the rpmdb owns (deepest first; directories only when empty; modified
//! `%config` files saved as `.rpmsave`), `%postun` and triggers (see [`super::erase_triggers`]).

use std::collections::HashSet;
use std::path::Path;

use super::erase_triggers::{after_files, after_postun, after_preun, before_preun};
use super::live::LiveDb;
use super::rawheader::RawHeader;
use super::rpmdb::Installed;
use super::scriptlet::Script;
use super::trans_triggers::{self, PostunKey};
use super::transaction::StagingGuard;
use super::triggers::Ctx;
use super::{InstallError, InstallOptions, InstallReport, ScriptletMode, rpmdb, safepath};

fn script(h: &RawHeader<'_>, tag: &str, body: u32, prog: u32) -> Option<Script> {
    let b = h.strings(body).into_iter().next();
    let p = h.strings(prog);
    if b.is_none() && p.is_empty() {
        return None;
    }
    Some(Script {
        tag: tag.to_string(),
        prog: if p.is_empty() {
            vec!["/bin/sh".into()]
        } else {
            p
        },
        body: b.unwrap_or_default(),
    })
}

/// Erase the installed packages called `names` from the image at `root`.
pub fn erase_packages(
    root: &Path,
    names: &[String],
    opts: &InstallOptions,
) -> Result<(), InstallError> {
    let dbpath = rpmdb::detect_dbpath(root, opts.dbpath.as_deref(), &[]);
    let all = rpmdb::all_installed(root, &dbpath)?;
    let mut victims: Vec<i64> = Vec::new();
    for n in names {
        let found = rpmdb::find_by_name(root, &dbpath, n)?;
        if found.is_empty() {
            return Err(InstallError::NotInstalled(n.clone()));
        }
        victims.extend(found.iter().map(|i| i.hnum));
    }
    erase_rows(root, &dbpath, &all, &victims, opts)
}

/// Erase the installed packages whose NEVRA (`name-[epoch:]version-release.arch`) is in
/// `nevras`; those not installed are skipped. For what a pass's solve dropped that no package
/// of the pass replaced (an upgrade or obsoletes already erased the others). Returns how many
/// were erased.
pub fn erase_nevras(
    root: &Path,
    nevras: &[String],
    opts: &InstallOptions,
) -> Result<usize, InstallError> {
    let dbpath = rpmdb::detect_dbpath(root, opts.dbpath.as_deref(), &[]);
    if nevras.is_empty() || !rpmdb::exists(root, &dbpath) {
        return Ok(0);
    }
    let all = rpmdb::all_installed(root, &dbpath)?;
    let db = LiveDb::new(&all, &[]);
    let victims: Vec<i64> = db
        .live()
        .filter(|p| nevras.contains(&p.nevra))
        .map(|p| p.hnum)
        .collect();
    if !victims.is_empty() {
        erase_rows(root, &dbpath, &all, &victims, opts)?;
    }
    Ok(victims.len())
}

/// One erase transaction of the rpmdb rows `victims` (in that order).
fn erase_rows(
    root: &Path,
    dbpath: &str,
    all: &[Installed],
    victims: &[i64],
    opts: &InstallOptions,
) -> Result<(), InstallError> {
    let run = opts.scriptlets == ScriptletMode::Run;
    let scratch = format!(".osimage-erase-{}", std::process::id());
    let _guard = StagingGuard(root.join(&scratch));
    std::fs::create_dir_all(root.join(&scratch)).map_err(|source| InstallError::Io {
        path: root.join(&scratch),
        source,
    })?;
    let mut db = LiveDb::new(all, &[]);
    let mut report = InstallReport::default();
    let mut ctx = Ctx {
        root,
        scratch: &scratch,
        report: &mut report,
    };
    let mut postun = Vec::new();
    if run {
        let runs = trans_triggers::at_start(&db, victims, &[]);
        ctx.run_all(runs, false)?;
    }
    let mut gone = Vec::new();
    let result = (|| -> Result<(), InstallError> {
        for h in victims {
            let v = all.iter().find(|i| i.hnum == *h);
            if let Some(v) = v {
                erase_one(&mut ctx, &mut db, v, run, &mut postun, dbpath)?;
                gone.push(*h);
            }
        }
        if run {
            let runs = trans_triggers::at_end(&db, &[], std::mem::take(&mut postun));
            ctx.run_all(runs, false)?;
        }
        Ok(())
    })();
    rpmdb::remove(root, dbpath, &gone)?;
    for w in &report.warnings {
        tracing::warn!("{w}");
    }
    result
}

/// Erase the installed package `v` (live in `db`): triggers, `%preun`, its files that no
/// other live package owns, `%postun`, triggers; then it leaves `db` (the caller removes its
/// rpmdb row). `$1` of `%preun`/`%postun` = its instances that remain.
pub(crate) fn erase_one(
    ctx: &mut Ctx<'_>,
    db: &mut LiveDb,
    v: &Installed,
    run: bool,
    postun_keys: &mut Vec<PostunKey>,
    dbpath: &str,
) -> Result<(), InstallError> {
    let root = ctx.root;
    let h = RawHeader::parse(&v.blob).ok_or_else(|| InstallError::Rpmdb {
        path: root.join(dbpath.trim_start_matches('/')),
        message: format!("unreadable header of installed package {}", v.hnum),
    })?;
    let Some(me) = db.get(v.hnum) else {
        return Ok(());
    };
    let nevra = me.nevra.clone();
    // paths another package in the rpmdb (a kept one, or the new version) still owns
    let kept: HashSet<&str> = db
        .live()
        .filter(|p| p.hnum != v.hnum)
        .flat_map(|p| p.paths.iter().map(String::as_str))
        .collect();
    let removed: Vec<String> = me
        .paths
        .iter()
        .filter(|p| !kept.contains(p.as_str()))
        .cloned()
        .collect();
    drop(kept);
    let arg = vec![db.count(&me.name).saturating_sub(1).to_string()];
    let preun = script(&h, "%preun", 1025, 1087);
    let postun = script(&h, "%postun", 1026, 1088);
    if run {
        trans_triggers::note_postun(db, &removed, postun_keys);
        ctx.run_all(before_preun(db, me, &removed), false)?;
        if let Some(sc) = &preun {
            ctx.run(&nevra, sc, &arg, None, true)?;
        }
        ctx.run_all(after_preun(db, me, &removed), false)?;
    } else if preun.is_some() || postun.is_some() || super::triggers::has_triggers(me) {
        ctx.report.warnings.push(format!(
            "{nevra}: %preun/%postun and erase triggers skipped (scriptlets = \"skip\")"
        ));
    }
    remove_files(root, &h, &removed)?;
    if run {
        ctx.run_all(after_files(db, &removed), false)?;
        if let Some(sc) = &postun {
            ctx.run(&nevra, sc, &arg, None, false)?;
        }
        ctx.run_all(after_postun(db, me, &removed), false)?;
    }
    db.remove(v.hnum);
    Ok(())
}

/// Remove `removed` (packaged paths of the header `h`) from the root, deepest first.
fn remove_files(root: &Path, h: &RawHeader<'_>, removed: &[String]) -> Result<(), InstallError> {
    let paths = h.file_paths();
    let flags = h.u32s(1037);
    let digests = h.strings(1035);
    let gone: HashSet<&str> = removed.iter().map(String::as_str).collect();
    let mut order: Vec<usize> = (0..paths.len())
        .filter(|i| gone.contains(paths[*i].as_str()))
        .collect();
    order.sort_by(|a, b| paths[*b].cmp(&paths[*a]));
    for i in order {
        let Some(rel) = safepath::package_rel(&paths[i]) else {
            continue;
        };
        let (pdir, base) = rel.rsplit_once('/').unwrap_or(("", rel.as_str()));
        let Ok(parent) = safepath::resolve(root, pdir, true) else {
            continue;
        };
        let p = parent.join(base);
        let Ok(md) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if md.is_dir() {
            let _ = std::fs::remove_dir(&p); // only when empty, like rpm
            continue;
        }
        let is_config = flags.get(i).copied().unwrap_or(0) & 1 != 0;
        if is_config && md.is_file() {
            let want = digests.get(i).cloned().unwrap_or_default();
            let have = super::place::file_digest(&p, want.len()).unwrap_or_default();
            if !want.is_empty() && want != have {
                let _ = std::fs::rename(&p, parent.join(format!("{base}.rpmsave")));
                continue;
            }
        }
        std::fs::remove_file(&p).map_err(|source| InstallError::Io {
            path: p.clone(),
            source,
        })?;
    }
    Ok(())
}
