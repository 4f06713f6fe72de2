//! Removals (xCAT `-pkg`) the way `dnf remove` does them, and dnf's notion of user-installed
//! packages that `clean_requirements_on_remove` relies on.

use std::collections::HashSet;

use super::provider::Provider;
use super::{SolveError, dep_holds, glob_set};
use crate::rpm::Dep;

/// Names of the packages in `sol` that `specs` asked for by name, NEVRA, capability, file or
/// group membership (dnf's "user-installed"; everything else came in as a dependency).
pub(super) fn user_names(p: &Provider<'_, '_>, sol: &[u32], specs: &[String]) -> HashSet<String> {
    let mut out = HashSet::new();
    for spec in specs {
        let spec = spec.trim();
        if let Some(g) = spec.strip_prefix('@') {
            let id = g.trim_start_matches('^');
            for grp in p.idx.repos.iter().flat_map(|r| &r.groups) {
                if grp.id == id || grp.name == id || grp.is_environment {
                    out.extend(grp.packages.iter().map(|x| x.name.clone()));
                }
            }
            continue;
        }
        let cap = Dep::parse(spec).name;
        for &s in sol {
            let pkg = p.idx.solvs[s as usize].pkg;
            // NEVRA/NVRA prefix match; both strings start with the name, so only format them
            // when the spec extends the name (this loop runs for every package and spec).
            let prefix = if spec.len() <= pkg.name.len() {
                pkg.name.starts_with(spec)
            } else {
                spec.starts_with(pkg.name.as_str())
                    && (pkg.nevra().starts_with(spec) || pkg.nvra().starts_with(spec))
            };
            if prefix || pkg.provides.iter().any(|d| d.name == cap) || pkg.files.contains(&cap) {
                out.insert(pkg.name.clone());
            }
        }
    }
    out
}

/// Remove packages matching `pats` from `now`, then (like `dnf remove`) every package whose
/// requirements are no longer met, then (dnf's `clean_requirements_on_remove`) dependencies of
/// the removed packages that nothing left needs and nobody asked for. Returns the removed names
/// in order.
pub(super) fn remove(
    p: &Provider<'_, '_>,
    now: &mut Vec<u32>,
    pats: &[String],
    user: &HashSet<String>,
) -> Result<Vec<String>, SolveError> {
    if pats.is_empty() {
        return Ok(Vec::new());
    }
    let gs = glob_set(pats)?;
    let mut removed = Vec::new();
    let mut all_gone: Vec<u32> = Vec::new();
    let mut gone: Vec<u32> = now
        .iter()
        .copied()
        .filter(|&s| gs.is_match(&p.idx.solvs[s as usize].pkg.name))
        .collect();
    loop {
        while !gone.is_empty() {
            for s in &gone {
                removed.push(p.idx.solvs[*s as usize].pkg.name.clone());
            }
            all_gone.extend(gone.iter().copied());
            now.retain(|s| !gone.contains(s));
            let set: HashSet<u32> = now.iter().copied().collect();
            gone = now
                .iter()
                .copied()
                .filter(|&s| {
                    !p.idx.solvs[s as usize]
                        .pkg
                        .requires
                        .iter()
                        .all(|d| dep_holds(p, d, &set))
                })
                .collect();
        }
        // cleandeps: a dependency of something removed, not user-installed, needed by nobody left
        let needed_by = |c: u32, from: &[u32]| {
            let one: HashSet<u32> = [c].into_iter().collect();
            from.iter().any(|&o| {
                o != c
                    && p.idx.solvs[o as usize]
                        .pkg
                        .requires
                        .iter()
                        .any(|d| dep_holds(p, d, &one))
            })
        };
        let unneeded: Vec<u32> = now
            .iter()
            .copied()
            .filter(|&c| {
                !user.contains(&p.idx.solvs[c as usize].pkg.name)
                    && needed_by(c, &all_gone)
                    && !needed_by(c, now)
            })
            .collect();
        if unneeded.is_empty() {
            break;
        }
        gone = unneeded;
    }
    Ok(removed)
}
