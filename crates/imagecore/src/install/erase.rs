//! Erasing installed packages (xCAT otherpkgs `-pkg` / `--pkg`): `%preun`, remove the files
//! owned only by the erased packages (deepest first; directories only when empty; modified
//! `%config` files saved as `.rpmsave`), `%postun`, then the rpmdb rows.

use std::collections::HashSet;
use std::path::Path;

use super::erase_triggers::{Db, DbPkg, after_files, after_postun, before_preun, run_all};
use super::rawheader::RawHeader;
use super::scriptlet::{self, Script};
use super::transaction::{StagingGuard, is_root};
use super::{InstallError, InstallOptions, ScriptletMode, rpmdb, safepath};

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
    let mut victims = Vec::new();
    for n in names {
        let found = rpmdb::find_by_name(root, &dbpath, n)?;
        if found.is_empty() {
            return Err(InstallError::NotInstalled(n.clone()));
        }
        victims.extend(found);
    }
    let victim_ids: HashSet<i64> = victims.iter().map(|v| v.hnum).collect();
    let mut kept_paths: HashSet<String> = HashSet::new();
    for i in all.iter().filter(|i| !victim_ids.contains(&i.hnum)) {
        if let Some(h) = RawHeader::parse(&i.blob) {
            kept_paths.extend(h.file_paths());
        }
    }
    let run = opts.scriptlets == ScriptletMode::Run;
    let scratch = format!(".osimage-erase-{}", std::process::id());
    let _guard = StagingGuard(root.join(&scratch));
    let db_pkgs: Vec<DbPkg> = all.iter().filter_map(DbPkg::parse).collect();
    let mut gone: HashSet<i64> = HashSet::new();
    for v in &victims {
        let me = db_pkgs.iter().find(|p| p.hnum == v.hnum);
        let db = Db {
            pkgs: &db_pkgs,
            gone: &gone,
        };
        // rpm removes the rpmdb entry last: both lists see the same database
        let (pre_trigs, files_trigs, post_trigs) = match me {
            Some(me) => (
                before_preun(&db, me),
                after_files(&db, me),
                after_postun(&db, me),
            ),
            None => (Vec::new(), Vec::new(), Vec::new()),
        };
        let h = RawHeader::parse(&v.blob).ok_or_else(|| InstallError::Rpmdb {
            path: root.join(&dbpath),
            message: format!("unreadable header of installed package {}", v.hnum),
        })?;
        let name = h.strings(1000).into_iter().next().unwrap_or_default();
        let nevra = format!(
            "{}-{}-{}.{}",
            name,
            h.strings(1001).first().cloned().unwrap_or_default(),
            h.strings(1002).first().cloned().unwrap_or_default(),
            h.strings(1022).first().cloned().unwrap_or_default()
        );
        let preun = script(&h, "%preun", 1025, 1087);
        let postun = script(&h, "%postun", 1026, 1088);
        let remaining = all.iter().filter(|i| {
            !victim_ids.contains(&i.hnum)
                && RawHeader::parse(&i.blob)
                    .map(|x| x.strings(1000).first() == Some(&name))
                    .unwrap_or(false)
        });
        let arg = remaining.count().to_string();
        let scripts: Vec<&Script> = preun.iter().chain(postun.iter()).collect();
        let has_trigs = !pre_trigs.is_empty() || !files_trigs.is_empty() || !post_trigs.is_empty();
        if run && (!scripts.is_empty() || has_trigs) {
            if !is_root() {
                return Err(InstallError::NotRoot(nevra));
            }
            std::fs::create_dir_all(root.join(&scratch)).map_err(|source| InstallError::Io {
                path: root.join(&scratch),
                source,
            })?;
        }
        if run {
            run_all(root, &scratch, pre_trigs, true)?;
        }
        if let (true, Some(sc)) = (run, &preun)
            && let Err(m) =
                scriptlet::run(root, &scratch, &nevra, sc, std::slice::from_ref(&arg), None)?
        {
            return Err(InstallError::Scriptlet {
                package: nevra.clone(),
                which: "%preun".into(),
                message: format!("failed: {m}"),
            });
        }
        let paths = h.file_paths();
        let flags = h.u32s(1037);
        let digests = h.strings(1035);
        let mut order: Vec<usize> = (0..paths.len()).collect();
        order.sort_by(|a, b| paths[*b].cmp(&paths[*a]));
        for i in order {
            if kept_paths.contains(&paths[i]) {
                continue;
            }
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
                use sha2::Digest;
                let want = digests.get(i).cloned().unwrap_or_default();
                let have = std::fs::read(&p)
                    .map(|d| {
                        if want.len() == 32 {
                            hex::encode(md5::Md5::digest(&d))
                        } else {
                            hex::encode(sha2::Sha256::digest(&d))
                        }
                    })
                    .unwrap_or_default();
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
        if run {
            for w in run_all(root, &scratch, files_trigs, false)? {
                tracing::warn!("{w}");
            }
        }
        if let (true, Some(sc)) = (run, &postun)
            && let Err(m) =
                scriptlet::run(root, &scratch, &nevra, sc, std::slice::from_ref(&arg), None)?
        {
            tracing::warn!("%postun({nevra}) scriptlet failed, {m}");
        }
        if run {
            for w in run_all(root, &scratch, post_trigs, false)? {
                tracing::warn!("{w}");
            }
        }
        if !run && (!scripts.is_empty() || has_trigs) {
            tracing::warn!(
                "{nevra}: %preun/%postun and erase triggers skipped (scriptlets = \"skip\")"
            );
        }
        rpmdb::remove(root, &dbpath, &[v.hnum])?;
        gone.insert(v.hnum);
    }
    Ok(())
}
