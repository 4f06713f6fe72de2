//! Triggers, as rpm 4.18 runs them (checked against `rpm -i/-U/-e --root`): the trigger
//! tables of a header, the scriptlet-running context of a transaction, and the install-side
//! firing rules over the live rpmdb view ([`super::live::LiveDb`]):
//!
//! - before `%pre` of a new package: other packages' `%triggerprein` on it (`$1` = owner's
//!   instances, `$2` = the new package's instances before it is added), then its own
//!   `%triggerprein` on installed packages;
//! - after its files are placed (and it entered the rpmdb): `%filetriggerin` of priority
//!   ≥ 10000 — other packages' on its files, then its own on every installed file — then
//!   `%post`, then other packages' `%triggerin` on it and its own on installed packages, then
//!   the `%filetriggerin` of priority < 10000 the same way.
//!
//! File triggers always get `$1` = 0 (rpm runs them with `arg1 = 0` and no `$2`); several
//! triggers of one event run by descending priority, then rpmdb order, then trigger index.

use super::live::{LiveDb, LivePkg};
use super::rawheader::RawHeader;
use super::scriptlet::{self, Script};
use super::{InstallError, InstallReport};
use crate::rpm::evr::{DepFlags, Evr, overlaps};

/// RPMSENSE_TRIGGERIN
pub(crate) const TRIGGER_IN: u32 = 1 << 16;
/// RPMSENSE_TRIGGERUN
pub(crate) const TRIGGER_UN: u32 = 1 << 17;
/// RPMSENSE_TRIGGERPOSTUN
pub(crate) const TRIGGER_POSTUN: u32 = 1 << 18;
/// RPMSENSE_TRIGGERPREIN
pub(crate) const TRIGGER_PREIN: u32 = 1 << 25;

/// Header tags of package triggers: scripts, progs, names, flags, index, versions.
pub(crate) const PKG_TRIGGER_TAGS: [u32; 6] = [1065, 1092, 1066, 1068, 1069, 1067];
/// Header tags of file triggers.
pub(crate) const FILE_TRIGGER_TAGS: [u32; 6] = [5066, 5067, 5069, 5072, 5070, 5071];
/// Header tags of transaction file triggers.
pub(crate) const TRANS_TRIGGER_TAGS: [u32; 6] = [5076, 5077, 5079, 5082, 5080, 5081];

/// rpm's bound between file triggers run before `%post`/`%preun` (priority ≥ it) and after.
const PRIORITY_BOUND: u32 = 10000;
/// The priority of a file trigger without one.
const DEFAULT_PRIORITY: u32 = 1_000_000;

/// One trigger of a package.
pub struct Trig {
    /// The script.
    pub script: Script,
    /// Package names (package triggers) or path prefixes (file triggers).
    pub conds: Vec<String>,
    /// Condition flags (RPMSENSE_TRIGGER*), all conditions or-ed.
    pub flags: u32,
    /// Per condition: (flags, version) — the version range a package must match.
    pub ranges: Vec<(u32, String)>,
    /// File-trigger priority (higher runs first).
    pub priority: u32,
}

impl Trig {
    /// Does this package trigger with `sense` fire on package `target`?
    pub(crate) fn fires_on(&self, sense: u32, target: &LivePkg) -> bool {
        (0..self.conds.len()).any(|k| self.fires(k, sense, &target.name, &target.evr))
    }

    /// Does condition `k` (with `sense`) fire on a package `name` at `evr`?
    pub(crate) fn fires(&self, k: usize, sense: u32, name: &str, evr: &Evr) -> bool {
        let Some((flags, version)) = self.ranges.get(k) else {
            return false;
        };
        if flags & sense == 0 || self.conds.get(k).map(String::as_str) != Some(name) {
            return false;
        }
        let range = DepFlags(*flags);
        range.is_any()
            || version.is_empty()
            || overlaps(
                DepFlags::EQUAL,
                Some(evr),
                range,
                Some(&Evr::parse(version)),
            )
    }

    /// Paths of `paths` under any of this file trigger's prefixes with `sense`.
    pub(crate) fn matching<'p>(
        &self,
        sense: u32,
        paths: impl Iterator<Item = &'p String>,
    ) -> Vec<&'p str> {
        let prefixes: Vec<&str> = self
            .conds
            .iter()
            .zip(&self.ranges)
            .filter(|(_, (f, _))| f & sense != 0)
            .map(|(c, _)| c.as_str())
            .collect();
        if prefixes.is_empty() {
            return Vec::new();
        }
        paths
            .map(String::as_str)
            .filter(|p| prefixes.iter().any(|pre| p.starts_with(pre)))
            .collect()
    }

    fn in_class(&self, class: Class) -> bool {
        match class {
            Class::Upper => self.priority >= PRIORITY_BOUND,
            Class::Lower => self.priority < PRIORITY_BOUND,
        }
    }
}

/// Which file triggers of an event run at this point (by priority).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Priority ≥ 10000 (before `%post`, before `%preun`, before `%postun`).
    Upper,
    /// Priority < 10000 (after `%triggerin`, after `%preun`, after `%triggerpostun`).
    Lower,
}

/// Triggers from raw header tags (scripts, progs, names, flags, index, versions).
pub(crate) fn raw_trigs(h: &RawHeader<'_>, tags: [u32; 6], tag: &str) -> Vec<Trig> {
    let [scripts_t, progs_t, names_t, flags_t, index_t, versions_t] = tags;
    let versions = h.strings(versions_t);
    let scripts = h.strings(scripts_t);
    let progs = h.strings(progs_t);
    let names = h.strings(names_t);
    let flags = h.u32s(flags_t);
    let index = h.u32s(index_t);
    let mut v: Vec<Trig> = scripts
        .into_iter()
        .enumerate()
        .map(|(i, body)| Trig {
            script: Script {
                tag: tag.to_string(),
                prog: vec![
                    progs
                        .get(i)
                        .filter(|p| !p.is_empty())
                        .cloned()
                        .unwrap_or_else(|| "/bin/sh".into()),
                ],
                body,
            },
            conds: Vec::new(),
            flags: 0,
            ranges: Vec::new(),
            priority: DEFAULT_PRIORITY,
        })
        .collect();
    for (k, n) in names.into_iter().enumerate() {
        let i = index.get(k).copied().unwrap_or(0) as usize;
        if let Some(t) = v.get_mut(i) {
            t.conds.push(n);
            let f = flags.get(k).copied().unwrap_or(0);
            t.flags |= f;
            t.ranges
                .push((f, versions.get(k).cloned().unwrap_or_default()));
        }
    }
    v
}

/// Whether a package has any trigger.
pub(crate) fn has_triggers(p: &LivePkg) -> bool {
    !p.pkg.is_empty() || !p.file.is_empty() || !p.trans.is_empty()
}

/// A scriptlet to run: owner NEVRA, script (tagged with the trigger kind), args, stdin.
pub(crate) struct Run {
    pub nevra: String,
    pub script: Script,
    pub args: Vec<String>,
    pub stdin: Option<String>,
}

impl Run {
    fn new(owner: &LivePkg, t: &Trig, which: &str, args: Vec<String>) -> Run {
        Run {
            nevra: owner.nevra.clone(),
            script: Script {
                tag: which.to_string(),
                ..t.script.clone()
            },
            args,
            stdin: None,
        }
    }

    fn file(owner: &LivePkg, t: &Trig, which: &str, paths: &[&str]) -> Run {
        let mut r = Run::new(owner, t, which, vec!["0".into()]);
        r.stdin = Some(paths.join("\n") + "\n");
        r
    }
}

/// Scriptlet-running context of one transaction.
pub struct Ctx<'a> {
    /// Image root.
    pub root: &'a std::path::Path,
    /// Root-relative scratch dir for script files.
    pub scratch: &'a str,
    /// The report being filled.
    pub report: &'a mut InstallReport,
}

impl Ctx<'_> {
    /// Run one scriptlet; a failure is an error when `fatal`, else a warning (like rpm).
    pub fn run(
        &mut self,
        nevra: &str,
        sc: &Script,
        args: &[String],
        stdin: Option<&str>,
        fatal: bool,
    ) -> Result<(), InstallError> {
        if !super::transaction::is_root() {
            return Err(InstallError::NotRoot(nevra.to_string()));
        }
        let r = scriptlet::run(self.root, self.scratch, nevra, sc, args, stdin)?;
        self.report.scriptlets_run += 1;
        if let Err(msg) = r {
            if fatal {
                return Err(InstallError::Scriptlet {
                    package: nevra.to_string(),
                    which: sc.tag.clone(),
                    message: format!("failed: {msg}"),
                });
            }
            self.report
                .warnings
                .push(format!("{}({nevra}) scriptlet failed, {msg}", sc.tag));
        }
        Ok(())
    }

    /// Run `runs` in order (failures fatal or warnings).
    pub(crate) fn run_all(&mut self, runs: Vec<Run>, fatal: bool) -> Result<(), InstallError> {
        for r in runs {
            self.run(&r.nevra, &r.script, &r.args, r.stdin.as_deref(), fatal)?;
        }
        Ok(())
    }
}

/// File triggers with `sense` (of `class`) of live packages — `me`'s own included, as rpm
/// has it in the rpmdb — on `paths` (the files of `me`): by descending priority, rpmdb order,
/// trigger index.
pub(crate) fn others_file(
    db: &LiveDb,
    paths: &[String],
    sense: u32,
    which: &str,
    class: Class,
) -> Vec<Run> {
    let mut found: Vec<(u32, i64, usize, Run)> = Vec::new();
    for owner in db.live() {
        for (tix, t) in owner.file.iter().enumerate() {
            if t.flags & sense == 0 || !t.in_class(class) {
                continue;
            }
            let m = t.matching(sense, paths.iter());
            if !m.is_empty() {
                found.push((t.priority, owner.hnum, tix, Run::file(owner, t, which, &m)));
            }
        }
    }
    found.sort_by_key(|(p, h, t, _)| (std::cmp::Reverse(*p), *h, *t));
    found.into_iter().map(|(_, _, _, r)| r).collect()
}

/// `me`'s own ("immediate") file triggers with `sense` (of `class`) on the files in the
/// rpmdb now: when `me` is being installed, those of the other packages (its own files fire
/// its triggers once, in [`others_file`]); when it is being erased, its own too (rpm then
/// runs its `%filetriggerun` twice on them).
pub(crate) fn own_file(
    db: &LiveDb,
    me: &LivePkg,
    sense: u32,
    which: &str,
    class: Class,
) -> Vec<Run> {
    let mut trigs: Vec<(usize, &Trig)> = me
        .file
        .iter()
        .enumerate()
        .filter(|(_, t)| t.flags & sense != 0 && t.in_class(class))
        .collect();
    trigs.sort_by_key(|(tix, t)| (std::cmp::Reverse(t.priority), *tix));
    trigs
        .into_iter()
        .filter_map(|(_, t)| {
            let erasing = sense & (TRIGGER_UN | TRIGGER_POSTUN) != 0;
            let files = db
                .live()
                .filter(|p| erasing || p.hnum != me.hnum)
                .flat_map(|p| p.paths.iter());
            let m = t.matching(sense, files);
            (!m.is_empty()).then(|| Run::file(me, t, which, &m))
        })
        .collect()
}

/// Other live packages' package triggers with `sense` on `me`, in rpmdb order: `$1` = the
/// owner's instances, `$2` = `me`'s instances plus `adj` (-1 when `me` is being erased).
pub(crate) fn others_pkg(
    db: &LiveDb,
    me: &LivePkg,
    sense: u32,
    which: &str,
    adj: isize,
) -> Vec<Run> {
    let n_me = (db.count(&me.name) as isize + adj).max(0).to_string();
    let mut runs = Vec::new();
    for owner in db.live().filter(|p| p.hnum != me.hnum) {
        for t in owner.pkg.iter().filter(|t| t.fires_on(sense, me)) {
            let args = vec![db.count(&owner.name).to_string(), n_me.clone()];
            runs.push(Run::new(owner, t, which, args));
        }
    }
    runs
}

/// `me`'s own package triggers with `sense` on live packages, each at most once: `$1` = its
/// instances plus `adj`, `$2` = the first matching target's instances.
pub(crate) fn own_pkg(db: &LiveDb, me: &LivePkg, sense: u32, which: &str, adj: isize) -> Vec<Run> {
    let n_me = (db.count(&me.name) as isize + adj).max(0).to_string();
    let mut runs = Vec::new();
    for t in &me.pkg {
        let hit = db
            .live()
            .filter(|p| p.hnum != me.hnum)
            .find(|target| t.fires_on(sense, target));
        if let Some(target) = hit {
            let args = vec![n_me.clone(), db.count(&target.name).to_string()];
            runs.push(Run::new(me, t, which, args));
        }
    }
    runs
}

/// Before `%pre` of the new package `me` (not yet in the rpmdb).
pub(crate) fn prein(db: &LiveDb, me: &LivePkg) -> Vec<Run> {
    let mut runs = others_pkg(db, me, TRIGGER_PREIN, "%triggerprein", 0);
    runs.extend(own_pkg(db, me, TRIGGER_PREIN, "%triggerprein", 0));
    runs
}

/// `%filetriggerin` of `class` after `me` was placed and added to the rpmdb.
pub(crate) fn file_in(db: &LiveDb, me: &LivePkg, class: Class) -> Vec<Run> {
    let mut runs = others_file(db, &me.paths, TRIGGER_IN, "%filetriggerin", class);
    runs.extend(own_file(db, me, TRIGGER_IN, "%filetriggerin", class));
    runs
}

/// `%triggerin` after `%post` of `me`.
pub(crate) fn pkg_in(db: &LiveDb, me: &LivePkg) -> Vec<Run> {
    let mut runs = others_pkg(db, me, TRIGGER_IN, "%triggerin", 0);
    runs.extend(own_pkg(db, me, TRIGGER_IN, "%triggerin", 0));
    runs
}
