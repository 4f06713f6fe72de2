//! Running scriptlets for a transaction, and rpm's triggers: `%triggerin` (package triggers)
//! and `%filetriggerin` / `%transfiletriggerin` (file triggers: matching paths on stdin).

use std::collections::HashMap;
use std::path::Path;

use super::package::Pkg;
use super::rawheader::RawHeader;
use super::scriptlet::{self, Script};
use super::{InstallError, InstallReport};

const TRIGGER_IN: u32 = 1 << 16;

/// Header tags of package triggers: scripts, progs, names, flags, index, versions.
pub(crate) const PKG_TRIGGER_TAGS: [u32; 6] = [1065, 1092, 1066, 1068, 1069, 1067];
/// Header tags of file triggers.
pub(crate) const FILE_TRIGGER_TAGS: [u32; 6] = [5066, 5067, 5069, 5072, 5070, 5071];
/// Header tags of transaction file triggers.
pub(crate) const TRANS_TRIGGER_TAGS: [u32; 6] = [5076, 5077, 5079, 5082, 5080, 5081];

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
}

fn convert(v: Vec<rpm::Trigger>, tag: &str) -> Vec<Trig> {
    v.into_iter()
        .map(|t| Trig {
            flags: t.conditions.iter().fold(0, |a, c| a | c.flags.bits()),
            ranges: t
                .conditions
                .iter()
                .map(|c| (c.flags.bits(), c.version.clone()))
                .collect(),
            conds: t.conditions.into_iter().map(|c| c.name).collect(),
            script: Script {
                tag: tag.to_string(),
                prog: if t.program.is_empty() || t.program[0].is_empty() {
                    vec!["/bin/sh".into()]
                } else {
                    t.program
                },
                body: t.script,
            },
        })
        .collect()
}

/// `%filetrigger*` of a package.
pub fn file_triggers(p: &Pkg) -> Vec<Trig> {
    convert(
        p.rpm.meta.get_file_triggers().unwrap_or_default(),
        "%filetriggerin",
    )
}

/// `%transfiletrigger*` of a package.
pub fn trans_file_triggers(p: &Pkg) -> Vec<Trig> {
    convert(
        p.rpm.meta.get_trans_file_triggers().unwrap_or_default(),
        "%transfiletriggerin",
    )
}

/// `%trigger*` (package triggers) of a package.
pub fn pkg_triggers(p: &Pkg) -> Vec<Trig> {
    convert(p.rpm.meta.get_triggers().unwrap_or_default(), "%triggerin")
}

/// Triggers of a package that is already in the image's rpmdb.
pub struct InstalledTrigs {
    /// Its NEVRA.
    pub nevra: String,
    /// Its name.
    pub name: String,
    /// `%trigger*`.
    pub pkg: Vec<Trig>,
    /// `%filetrigger*`.
    pub file: Vec<Trig>,
    /// `%transfiletrigger*`.
    pub trans: Vec<Trig>,
}

/// Triggers from raw header tags (scripts, progs, names, flags, index).
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
                prog: vec![progs.get(i).cloned().unwrap_or_else(|| "/bin/sh".into())],
                body,
            },
            conds: Vec::new(),
            flags: 0,
            ranges: Vec::new(),
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

/// Triggers of every package in the image's rpmdb.
pub fn installed_triggers(blobs: &[Vec<u8>]) -> Vec<InstalledTrigs> {
    blobs
        .iter()
        .filter_map(|b| {
            let h = RawHeader::parse(b)?;
            let s = |t: u32| h.strings(t).into_iter().next().unwrap_or_default();
            Some(InstalledTrigs {
                nevra: format!("{}-{}-{}.{}", s(1000), s(1001), s(1002), s(1022)),
                name: s(1000),
                pkg: raw_trigs(&h, PKG_TRIGGER_TAGS, "%triggerin"),
                file: raw_trigs(&h, FILE_TRIGGER_TAGS, "%filetriggerin"),
                trans: raw_trigs(&h, TRANS_TRIGGER_TAGS, "%transfiletriggerin"),
            })
        })
        .filter(|t| !t.pkg.is_empty() || !t.file.is_empty() || !t.trans.is_empty())
        .collect()
}

/// Scriptlet-running context of one transaction.
pub struct Ctx<'a> {
    /// Image root.
    pub root: &'a Path,
    /// Root-relative scratch dir for script files.
    pub scratch: &'a str,
    /// The report being filled.
    pub report: &'a mut InstallReport,
    /// Triggers of packages installed by earlier transactions.
    pub installed: Vec<InstalledTrigs>,
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
}

fn matching<'a>(pkg: &'a Pkg, prefixes: &[String]) -> impl Iterator<Item = &'a str> + 'a {
    let prefixes = prefixes.to_vec();
    pkg.files
        .iter()
        .map(|f| f.path.as_str())
        .filter(move |p| prefixes.iter().any(|pre| p.starts_with(pre.as_str())))
}

/// After package `i` was placed and its %post ran: fire `%triggerin` and `%filetriggerin`.
pub fn after_install(
    ctx: &mut Ctx<'_>,
    pkgs: &[Pkg],
    done: &[usize],
    i: usize,
    counts: &HashMap<String, usize>,
) -> Result<(), InstallError> {
    let new = &pkgs[i];
    // Packages from earlier transactions: their triggers fire on the new package.
    let mut runs: Vec<(String, Script, Vec<String>, Option<String>)> = Vec::new();
    for it in &ctx.installed {
        let n_owner = counts.get(&it.name).copied().unwrap_or(1).to_string();
        for t in it.pkg.iter().filter(|t| t.flags & TRIGGER_IN != 0) {
            if t.conds.contains(&new.name) {
                let n_target = counts.get(&new.name).copied().unwrap_or(1).to_string();
                runs.push((
                    it.nevra.clone(),
                    t.script.clone(),
                    vec![n_owner.clone(), n_target],
                    None,
                ));
            }
        }
    }
    for (nevra, sc, args, stdin) in runs {
        ctx.run(&nevra, &sc, &args, stdin.as_deref(), false)?;
    }
    for &j in done {
        let owner = &pkgs[j];
        let n_owner = counts.get(&owner.name).copied().unwrap_or(1).to_string();
        for t in pkg_triggers(owner) {
            if t.flags & TRIGGER_IN == 0 {
                continue;
            }
            // Triggers of installed packages on the new one; the new one's own triggers on
            // packages installed before it.
            let targets: Vec<&str> = if j == i {
                done.iter()
                    .map(|&k| pkgs[k].name.as_str())
                    .filter(|n| t.conds.iter().any(|c| c == n))
                    .collect()
            } else if t.conds.contains(&new.name) {
                vec![new.name.as_str()]
            } else {
                Vec::new()
            };
            for target in targets {
                let n_target = counts.get(target).copied().unwrap_or(1).to_string();
                ctx.run(
                    &owner.nevra,
                    &t.script,
                    &[n_owner.clone(), n_target],
                    None,
                    false,
                )?;
            }
        }
    }
    Ok(())
}

/// After package `i` was placed, before its %post (rpm 4.18 runs file triggers of the default
/// priority there): `%filetriggerin` of packages from earlier transactions and of this one on
/// the new files, then the new package's own on every file installed so far. `$1` counts the
/// owner's instances in the rpmdb before the new package is added (0 for its own triggers on
/// a fresh install), as rpm does.
pub fn file_triggers_in(
    ctx: &mut Ctx<'_>,
    pkgs: &[Pkg],
    done: &[usize],
    i: usize,
    counts: &HashMap<String, usize>,
) -> Result<(), InstallError> {
    let new = &pkgs[i];
    let mut runs: Vec<(String, Script, Vec<String>, Option<String>)> = Vec::new();
    for it in &ctx.installed {
        let n_owner = counts.get(&it.name).copied().unwrap_or(1).to_string();
        for t in it.file.iter().filter(|t| t.flags & TRIGGER_IN != 0) {
            let paths: Vec<&str> = matching(new, &t.conds).collect();
            if !paths.is_empty() {
                runs.push((
                    it.nevra.clone(),
                    t.script.clone(),
                    vec![n_owner.clone()],
                    Some(paths.join("\n") + "\n"),
                ));
            }
        }
    }
    for (nevra, sc, args, stdin) in runs {
        ctx.run(&nevra, &sc, &args, stdin.as_deref(), false)?;
    }
    let others = done.iter().filter(|&&j| j != i);
    for &j in others.chain(std::iter::once(&i)) {
        let owner = &pkgs[j];
        let mut n = counts.get(&owner.name).copied().unwrap_or(1);
        if j == i {
            n = n.saturating_sub(1);
        }
        for t in file_triggers(owner) {
            if t.flags & TRIGGER_IN == 0 {
                continue;
            }
            let mut paths: Vec<&str> = matching(new, &t.conds).collect();
            if j == i {
                for &k in done.iter().filter(|&&k| k != i) {
                    paths.extend(matching(&pkgs[k], &t.conds));
                }
            }
            if paths.is_empty() {
                continue;
            }
            let stdin = paths.join("\n") + "\n";
            ctx.run(
                &owner.nevra,
                &t.script,
                &[n.to_string()],
                Some(&stdin),
                false,
            )?;
        }
    }
    Ok(())
}

/// At the end of the transaction: `%transfiletriggerin` with every matching installed path.
pub fn end_of_transaction(
    ctx: &mut Ctx<'_>,
    pkgs: &[Pkg],
    counts: &HashMap<String, usize>,
) -> Result<(), InstallError> {
    let mut runs: Vec<(String, Script, String, String)> = Vec::new();
    for it in &ctx.installed {
        for t in it.trans.iter().filter(|t| t.flags & TRIGGER_IN != 0) {
            let paths: Vec<&str> = pkgs.iter().flat_map(|p| matching(p, &t.conds)).collect();
            if !paths.is_empty() {
                let n = counts.get(&it.name).copied().unwrap_or(1).to_string();
                runs.push((
                    it.nevra.clone(),
                    t.script.clone(),
                    n,
                    paths.join("\n") + "\n",
                ));
            }
        }
    }
    for (nevra, sc, n, stdin) in runs {
        ctx.run(&nevra, &sc, &[n], Some(&stdin), false)?;
    }
    for owner in pkgs {
        for t in trans_file_triggers(owner) {
            if t.flags & TRIGGER_IN == 0 {
                continue;
            }
            let paths: Vec<&str> = pkgs.iter().flat_map(|p| matching(p, &t.conds)).collect();
            if paths.is_empty() {
                continue;
            }
            let n = counts.get(&owner.name).copied().unwrap_or(1).to_string();
            let stdin = paths.join("\n") + "\n";
            ctx.run(&owner.nevra, &t.script, &[n], Some(&stdin), false)?;
        }
    }
    Ok(())
}
