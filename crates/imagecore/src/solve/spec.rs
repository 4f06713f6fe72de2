//! Install specs as `dnf install` accepts them: `@group`, `@^environment`, file paths,
//! NEVRA forms (`name`, `name.arch`, `name-version`, `name-version-release[.arch]`, with an
//! optional `epoch:`), and provided capabilities (`cap`, `cap >= 1.2`).

use resolvo::ConditionalRequirement;

use super::SolveError;
use super::provider::{Filter, Provider};
use crate::repo::GroupPkgKind;
use crate::rpm::{Dep, DepFlags, Evr, evr::vercmp};

/// What one spec expands to: requirements for the solver, plus the package names it names
/// (for the "user-installed" set).
pub(crate) struct Expanded {
    pub reqs: Vec<ConditionalRequirement>,
    /// comps conditional packages: (package, the package whose presence triggers it).
    pub conditional: Vec<(String, String)>,
}

/// One reading of a spec: (name, version, release, arch, epoch).
type NevraForm = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<u32>,
);

fn nevra_forms(spec: &str) -> Vec<NevraForm> {
    // (name, version, release, arch, epoch) candidates in dnf's order: NEVRA, NEVR, NEV, NA, NAME.
    let mut out = Vec::new();
    let split_arch = |s: &str| {
        s.rsplit_once('.')
            .map(|(a, b)| (a.to_string(), b.to_string()))
    };
    let split_epoch = |v: &str| -> (Option<u32>, String) {
        match v.split_once(':') {
            Some((e, rest)) if e.chars().all(|c| c.is_ascii_digit()) && !e.is_empty() => {
                (e.parse().ok(), rest.to_string())
            }
            _ => (None, v.to_string()),
        }
    };
    if let Some((nvr, arch)) = split_arch(spec)
        && let Some((nv, rel)) = nvr.rsplit_once('-')
        && let Some((n, v)) = nv.rsplit_once('-')
    {
        let (e, v) = split_epoch(v);
        out.push((n.to_string(), Some(v), Some(rel.to_string()), Some(arch), e));
    }
    if let Some((nv, rel)) = spec.rsplit_once('-')
        && let Some((n, v)) = nv.rsplit_once('-')
    {
        let (e, v) = split_epoch(v);
        out.push((n.to_string(), Some(v), Some(rel.to_string()), None, e));
    }
    if let Some((n, v)) = spec.rsplit_once('-') {
        let (e, v) = split_epoch(v);
        out.push((n.to_string(), Some(v), None, None, e));
    }
    if let Some((n, a)) = split_arch(spec) {
        out.push((n, None, None, Some(a), None));
    }
    out.push((spec.to_string(), None, None, None, None));
    out
}

/// Expand one spec. `pass` names the pass for error messages.
pub(crate) fn expand(
    p: &Provider<'_, '_>,
    spec: &str,
    installed: &[u32],
) -> Result<Expanded, SolveError> {
    let spec = spec.trim();
    if let Some(g) = spec.strip_prefix('@') {
        return expand_group(p, g, installed);
    }
    let idx = p.idx;
    if !spec.contains(char::is_whitespace) && !spec.starts_with('/') {
        for (name, ver, rel, arch, epoch) in nevra_forms(spec) {
            let Some(name_ids) = idx.by_base_name.get(name.as_str()) else {
                continue;
            };
            let mut per_name = Vec::new();
            for &n in name_ids {
                let set: Vec<u32> = idx.names[n]
                    .solvables
                    .iter()
                    .copied()
                    .filter(|&s| {
                        let pkg = idx.solvs[s as usize].pkg;
                        ver.as_ref().is_none_or(|v| vercmp(v, &pkg.version).is_eq())
                            && rel.as_ref().is_none_or(|r| vercmp(r, &pkg.release).is_eq())
                            && arch.as_ref().is_none_or(|a| *a == pkg.arch)
                            && epoch.is_none_or(|e| e == pkg.epoch)
                    })
                    .collect();
                if !set.is_empty() {
                    let multilib = set.iter().all(|&s| idx.solvs[s as usize].arch_rank == 2);
                    per_name.push((multilib, p.vset(n, Filter::Set(set), spec.to_string())));
                }
            }
            // dnf's multilib_policy=best: without an explicit arch, the image arch (or noarch)
            // wins over a multilib arch.
            if arch.is_none() && per_name.iter().any(|(m, _)| !m) {
                per_name.retain(|(m, _)| !m);
            }
            let per_name: Vec<_> = per_name.into_iter().map(|(_, v)| v).collect();
            if ver.is_none()
                && rel.is_none()
                && arch.is_none()
                && epoch.is_none()
                && !per_name.is_empty()
            {
                // dnf (obsoletes=True) also offers packages that obsolete a bare name, and
                // libsolv prefers the obsoleter.
                let matched: Vec<u32> = name_ids
                    .iter()
                    .flat_map(|&n| idx.names[n].solvables.clone())
                    .collect();
                let mut obs_names: Vec<usize> = Vec::new();
                for (t, sv) in idx.solvs.iter().enumerate() {
                    let hit = sv.pkg.obsoletes.iter().any(|d| {
                        d.name == name
                            && matched
                                .iter()
                                .any(|&m| p.matches(m, &Filter::Nevr(d.flags, d.evr.clone())))
                    });
                    if hit && !name_ids.contains(&sv.name) && !obs_names.contains(&sv.name) {
                        let _ = t;
                        obs_names.push(sv.name);
                    }
                }
                if !obs_names.is_empty() {
                    let mut sets: Vec<_> = obs_names
                        .into_iter()
                        .map(|n| p.vset(n, Filter::Nevr(DepFlags::ANY, None), spec.to_string()))
                        .collect();
                    sets.extend(per_name);
                    return Ok(Expanded {
                        reqs: vec![p.union(sets).into()],
                        conditional: Vec::new(),
                    });
                }
            }
            if !per_name.is_empty() {
                // A bare name prefers the image arch: keep only main-arch names when present.
                return Ok(Expanded {
                    reqs: vec![p.union(per_name).into()],
                    conditional: Vec::new(),
                });
            }
        }
    }
    let dep = Dep::parse(spec);
    if dep.rich.is_some() || dep.name.starts_with('(') {
        let mut reqs = Vec::new();
        p.dep_requirements(&dep, &mut reqs)
            .map_err(|m| SolveError::BadSpec {
                spec: spec.into(),
                message: m,
            })?;
        return Ok(Expanded {
            reqs,
            conditional: Vec::new(),
        });
    }
    let sets = p.cap_sets(&dep.name, dep.flags, dep.evr.as_ref());
    if sets.iter().all(|&v| p.is_missing_name(p.vset_filter(v).0)) {
        return Err(SolveError::NoMatch {
            spec: spec.to_string(),
        });
    }
    Ok(Expanded {
        reqs: vec![p.union(sets).into()],
        conditional: Vec::new(),
    })
}

fn expand_group(p: &Provider<'_, '_>, g: &str, installed: &[u32]) -> Result<Expanded, SolveError> {
    let (env, id) = match g.strip_prefix('^') {
        Some(id) => (true, id),
        None => (false, g),
    };
    let groups: Vec<&crate::repo::Group> = p.idx.repos.iter().flat_map(|r| &r.groups).collect();
    let find = |id: &str, want_env: bool| {
        groups
            .iter()
            .copied()
            .find(|x| x.is_environment == want_env && (x.id == id || x.name == id))
    };
    let top = find(id, env)
        .or_else(|| find(id, !env))
        .ok_or_else(|| SolveError::UnknownGroup {
            group: g.to_string(),
            known: groups
                .iter()
                .map(|x| {
                    if x.is_environment {
                        format!("^{}", x.id)
                    } else {
                        x.id.clone()
                    }
                })
                .collect(),
        })?;
    let members: Vec<&crate::repo::Group> = if top.is_environment {
        top.groups
            .iter()
            .filter_map(|gid| find(gid, false))
            .collect()
    } else {
        vec![top]
    };
    let installed_names: Vec<&str> = installed
        .iter()
        .map(|&s| p.idx.solvs[s as usize].pkg.name.as_str())
        .collect();
    let mut reqs = Vec::new();
    let mut conditional = Vec::new();
    for grp in members {
        for pk in &grp.packages {
            let wanted = match pk.kind {
                GroupPkgKind::Mandatory | GroupPkgKind::Default => true,
                GroupPkgKind::Optional => false,
                GroupPkgKind::Conditional => {
                    if let Some(r) = &pk.requires {
                        conditional.push((pk.name.clone(), r.clone()));
                    }
                    pk.requires
                        .as_deref()
                        .is_some_and(|r| installed_names.contains(&r))
                }
            };
            if !wanted {
                continue;
            }
            // dnf skips group members that no repository has.
            if let Some(ids) = p.idx.by_base_name.get(pk.name.as_str()) {
                let sets = ids
                    .iter()
                    .map(|&n| p.vset(n, Filter::Nevr(DepFlags::ANY, None::<Evr>), pk.name.clone()))
                    .collect();
                reqs.push(p.union(sets).into());
            }
        }
    }
    Ok(Expanded { reqs, conditional })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nevra_forms_in_dnf_order() {
        let f = nevra_forms("foo-1:2.0-3.el9.x86_64");
        assert_eq!(
            f[0],
            (
                "foo".into(),
                Some("2.0".into()),
                Some("3.el9".into()),
                Some("x86_64".into()),
                Some(1)
            )
        );
        let f = nevra_forms("python3-libs");
        // NEV reading first ("python3", version "libs"), the plain name last
        assert_eq!(f[0].0, "python3");
        assert_eq!(f.last().unwrap().0, "python3-libs");
    }
}
