//! Triggers fired when an installed package is erased, in the order and with the arguments
//! of rpm 4.18 (checked against `rpm -e --root`):
//!
//! 1. the erased package's own `%filetriggerun` on the installed files it watches,
//! 2. other packages' `%filetriggerun` on the erased package's files (paths on stdin; `$1` =
//!    instances of the owner minus one, as rpm counts),
//! 3. the erased package's own `%triggerun` on installed packages (`$1` = its remaining
//!    instances, `$2` = instances of the target), each trigger at most once,
//! 4. other packages' `%triggerun` on the erased package (`$1` = instances of the trigger's
//!    owner, `$2` = instances of the erased package that remain),
//!
//! then `%preun`, the files are removed, and
//!
//! 5. other packages' `%filetriggerpostun` on the erased package's files,
//!
//! then `%postun`, and
//!
//! 6. other packages' `%triggerpostun` on the erased package.
//!
//! The erased package's own `%triggerpostun` never runs (it is gone), as with rpm. Failures of
//! steps 1–4 stop the erase (like a failing `%preun`); failures of 5–6 are warnings.

use std::collections::HashSet;
use std::path::Path;

use super::InstallError;
use super::rawheader::RawHeader;
use super::rpmdb::Installed;
use super::scriptlet::{self, Script};
use super::triggers::{FILE_TRIGGER_TAGS, PKG_TRIGGER_TAGS, Trig, raw_trigs};
use crate::rpm::evr::{DepFlags, Evr, overlaps};

/// RPMSENSE_TRIGGERUN
pub(crate) const TRIGGER_UN: u32 = 1 << 17;
/// RPMSENSE_TRIGGERPOSTUN
pub(crate) const TRIGGER_POSTUN: u32 = 1 << 18;

/// One package of the rpmdb, with what erase triggers need.
pub(crate) struct DbPkg {
    /// rpmdb row.
    pub hnum: i64,
    /// Name.
    pub name: String,
    /// NEVRA (for messages).
    pub nevra: String,
    /// Its EVR (to match trigger version ranges).
    pub evr: Evr,
    /// `%trigger*`.
    pub pkg: Vec<Trig>,
    /// `%filetrigger*`.
    pub file: Vec<Trig>,
    /// Its files.
    pub paths: Vec<String>,
}

impl DbPkg {
    /// Parse an rpmdb row (None when the header is unreadable).
    pub fn parse(i: &Installed) -> Option<DbPkg> {
        let h = RawHeader::parse(&i.blob)?;
        let s = |t: u32| h.strings(t).into_iter().next().unwrap_or_default();
        let epoch = h.u32s(1003).first().copied();
        let nevra = match epoch {
            Some(e) if e != 0 => format!("{}-{e}:{}-{}.{}", s(1000), s(1001), s(1002), s(1022)),
            _ => format!("{}-{}-{}.{}", s(1000), s(1001), s(1002), s(1022)),
        };
        Some(DbPkg {
            hnum: i.hnum,
            name: s(1000),
            nevra,
            evr: Evr::new(epoch.unwrap_or(0), s(1001), s(1002)),
            pkg: raw_trigs(&h, PKG_TRIGGER_TAGS, "%trigger"),
            file: raw_trigs(&h, FILE_TRIGGER_TAGS, "%filetrigger"),
            paths: h.file_paths(),
        })
    }
}

/// The rpmdb during an erase: every package, and those already removed.
pub(crate) struct Db<'a> {
    /// All packages at the start of the erase.
    pub pkgs: &'a [DbPkg],
    /// rpmdb rows removed so far.
    pub gone: &'a HashSet<i64>,
}

impl Db<'_> {
    fn live(&self) -> impl Iterator<Item = &DbPkg> {
        self.pkgs.iter().filter(|p| !self.gone.contains(&p.hnum))
    }
    fn count(&self, name: &str) -> usize {
        self.live().filter(|p| p.name == name).count()
    }
}

/// Does condition `k` of trigger `t` (with `sense`) fire on package `target`?
fn fires(t: &Trig, k: usize, sense: u32, target: &DbPkg) -> bool {
    let Some((flags, version)) = t.ranges.get(k) else {
        return false;
    };
    if flags & sense == 0 || t.conds.get(k) != Some(&target.name) {
        return false;
    }
    let range = DepFlags(*flags);
    if range.is_any() || version.is_empty() {
        return true;
    }
    overlaps(
        DepFlags::EQUAL,
        Some(&target.evr),
        range,
        Some(&Evr::parse(version)),
    )
}

fn named(sc: &Script, which: &str) -> Script {
    Script {
        tag: which.to_string(),
        ..sc.clone()
    }
}

/// Paths of `paths` under any of the trigger's prefixes (conditions with `sense`).
fn matching<'p>(t: &Trig, sense: u32, paths: impl Iterator<Item = &'p String>) -> Vec<&'p str> {
    let prefixes: Vec<&str> = t
        .conds
        .iter()
        .zip(&t.ranges)
        .filter(|(_, (f, _))| f & sense != 0)
        .map(|(c, _)| c.as_str())
        .collect();
    paths
        .map(String::as_str)
        .filter(|p| prefixes.iter().any(|pre| p.starts_with(pre)))
        .collect()
}

/// A scriptlet to run: owner NEVRA, script, args, stdin.
type Run = (String, Script, Vec<String>, Option<String>);

/// Steps 1–4, before `%preun` of `victim`.
pub(crate) fn before_preun(db: &Db<'_>, victim: &DbPkg) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    let remaining = db.count(&victim.name).saturating_sub(1).to_string();
    // 1. its own %filetriggerun on the installed files (its own included)
    for t in victim.file.iter().filter(|t| t.flags & TRIGGER_UN != 0) {
        let paths = matching(t, TRIGGER_UN, db.live().flat_map(|p| p.paths.iter()));
        if !paths.is_empty() {
            runs.push((
                victim.nevra.clone(),
                named(&t.script, "%filetriggerun"),
                vec![remaining.clone()],
                Some(paths.join("\n") + "\n"),
            ));
        }
    }
    // 2. other packages' %filetriggerun on its files
    runs.extend(file_triggers_on(db, victim, TRIGGER_UN, "%filetriggerun"));
    // 3. its own %triggerun on installed packages, each trigger once
    for t in victim.pkg.iter() {
        let hit = db
            .live()
            .filter(|p| p.hnum != victim.hnum)
            .find(|target| (0..t.conds.len()).any(|k| fires(t, k, TRIGGER_UN, target)));
        if let Some(target) = hit {
            runs.push((
                victim.nevra.clone(),
                named(&t.script, "%triggerun"),
                vec![remaining.clone(), db.count(&target.name).to_string()],
                None,
            ));
        }
    }
    // 4. other packages' %triggerun on it
    runs.extend(pkg_triggers_on(db, victim, TRIGGER_UN, "%triggerun"));
    runs
}

/// Step 5, after the files of `victim` are removed, before its `%postun`.
pub(crate) fn after_files(db: &Db<'_>, victim: &DbPkg) -> Vec<Run> {
    file_triggers_on(db, victim, TRIGGER_POSTUN, "%filetriggerpostun")
}

/// Step 6, after `%postun` of `victim` (still counted in `db`, as rpm removes its rpmdb
/// entry last).
pub(crate) fn after_postun(db: &Db<'_>, victim: &DbPkg) -> Vec<Run> {
    pkg_triggers_on(db, victim, TRIGGER_POSTUN, "%triggerpostun")
}

/// Other installed packages' file triggers with `sense` on the files of `victim`.
fn file_triggers_on(db: &Db<'_>, victim: &DbPkg, sense: u32, which: &str) -> Vec<Run> {
    let mut runs = Vec::new();
    for owner in db.live().filter(|p| p.hnum != victim.hnum) {
        for t in owner.file.iter().filter(|t| t.flags & sense != 0) {
            let paths = matching(t, sense, victim.paths.iter());
            if !paths.is_empty() {
                // rpm applies the erase's count correction (-1) to the owner's count here
                let n = db.count(&owner.name).saturating_sub(1);
                runs.push((
                    owner.nevra.clone(),
                    named(&t.script, which),
                    vec![n.to_string()],
                    Some(paths.join("\n") + "\n"),
                ));
            }
        }
    }
    runs
}

/// Other installed packages' package triggers with `sense` on `victim`, in rpmdb order.
fn pkg_triggers_on(db: &Db<'_>, victim: &DbPkg, sense: u32, which: &str) -> Vec<Run> {
    let remaining = db.count(&victim.name).saturating_sub(1).to_string();
    let mut runs = Vec::new();
    for owner in db.live().filter(|p| p.hnum != victim.hnum) {
        for t in &owner.pkg {
            if (0..t.conds.len()).any(|k| fires(t, k, sense, victim)) {
                runs.push((
                    owner.nevra.clone(),
                    named(&t.script, which),
                    vec![db.count(&owner.name).to_string(), remaining.clone()],
                    None,
                ));
            }
        }
    }
    runs
}

/// Run `runs` in order; a failure is an error when `fatal`, else a warning (returned).
pub(crate) fn run_all(
    root: &Path,
    scratch: &str,
    runs: Vec<Run>,
    fatal: bool,
) -> Result<Vec<String>, InstallError> {
    let mut warnings = Vec::new();
    for (nevra, sc, args, stdin) in runs {
        if let Err(m) = scriptlet::run(root, scratch, &nevra, &sc, &args, stdin.as_deref())? {
            if fatal {
                return Err(InstallError::Scriptlet {
                    package: nevra,
                    which: sc.tag.clone(),
                    message: format!("failed: {m}"),
                });
            }
            warnings.push(format!("{}({nevra}) scriptlet failed, {m}", sc.tag));
        }
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trig(conds: &[(&str, u32, &str)]) -> Trig {
        Trig {
            script: Script {
                tag: "%trigger".into(),
                prog: vec!["/bin/sh".into()],
                body: String::new(),
            },
            conds: conds.iter().map(|c| c.0.to_string()).collect(),
            flags: conds.iter().fold(0, |a, c| a | c.1),
            ranges: conds.iter().map(|c| (c.1, c.2.to_string())).collect(),
        }
    }

    fn pkg(name: &str, v: &str) -> DbPkg {
        DbPkg {
            hnum: 1,
            name: name.into(),
            nevra: format!("{name}-{v}-1.noarch"),
            evr: Evr::new(0, v, "1"),
            pkg: Vec::new(),
            file: Vec::new(),
            paths: Vec::new(),
        }
    }

    #[test]
    fn trigger_conditions_match_sense_name_and_range() {
        let target = pkg("target", "1.0");
        let plain = trig(&[("target", TRIGGER_UN, "")]);
        assert!(fires(&plain, 0, TRIGGER_UN, &target));
        assert!(!fires(&plain, 0, TRIGGER_POSTUN, &target));
        assert!(!fires(&plain, 0, TRIGGER_UN, &pkg("other", "1.0")));
        let newer = trig(&[("target", TRIGGER_UN | DepFlags::GREATER.0, "5")]);
        assert!(!fires(&newer, 0, TRIGGER_UN, &target));
        let older = trig(&[("target", TRIGGER_UN | DepFlags::LE.0, "1.0")]);
        assert!(fires(&older, 0, TRIGGER_UN, &target));
    }
}
