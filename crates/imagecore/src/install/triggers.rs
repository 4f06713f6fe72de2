//! Running scriptlets for a transaction, and rpm's triggers: `%triggerin` (package triggers)
//! and `%filetriggerin` / `%transfiletriggerin` (file triggers: matching paths on stdin).

use std::collections::HashMap;
use std::path::Path;

use super::package::Pkg;
use super::scriptlet::{self, Script};
use super::{InstallError, InstallReport};

const TRIGGER_IN: u32 = 1 << 16;

/// One trigger of a package.
pub struct Trig {
    /// The script.
    pub script: Script,
    /// Package names (package triggers) or path prefixes (file triggers).
    pub conds: Vec<String>,
    /// Condition flags (RPMSENSE_TRIGGER*).
    pub flags: u32,
}

fn convert(v: Vec<rpm::Trigger>, tag: &str) -> Vec<Trig> {
    v.into_iter()
        .map(|t| Trig {
            flags: t.conditions.iter().fold(0, |a, c| a | c.flags.bits()),
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

/// Scriptlet-running context of one transaction.
pub struct Ctx<'a> {
    /// Image root.
    pub root: &'a Path,
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
                std::slice::from_ref(&n_owner),
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
