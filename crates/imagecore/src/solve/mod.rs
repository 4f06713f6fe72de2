//! Dependency resolution on resolvo: the provider, passes, weak deps, explanations, the lock.
//!
//! Tie-break rules (what we do where dnf/libsolv's choice among equal providers is policy):
//! 1. within one package name: highest EVR, then the image arch over `noarch` over a multilib
//!    arch, then the earlier repository;
//! 2. among different package names providing a capability: image-arch names before multilib
//!    names, then names in byte order (libsolv's `prune_to_best_version` sorts by name and the
//!    solver takes the first) — e.g. `(tool-a or tool-b)` gives `tool-a`;
//! 3. a requirement already satisfied by a package chosen for another reason adds nothing;
//! 4. a provider name whose matching package is not the newest of its name goes behind the
//!    others (libsolv's `dislike_old_versions`).
//!
//! Where several valid answers exist (upper bounds, conflicts, capabilities with several
//! providers), dnf's answer is the *order* in which libsolv decides: a first pass with nothing
//! installed and no weak or rich dependencies replays libsolv's procedure (`libsolv`: rule
//! order, postponing, `policy_filter_unwanted` including `sort_by_common_dep`, CDCL learning,
//! minimisation) and gets dnf's exact set; every other pass (and anything the replay does not
//! model or finds unsolvable) is solved by resolvo with the rules above.
//!
//! Rich dependencies nest to any depth (see `rich`): `or` operands that are not plain
//! capabilities become auxiliary solvables that never appear in the answer.

use std::collections::HashSet;

use resolvo::{
    ConditionalRequirement, DenseIndex, Problem, Requirement, SolvableId, Solver,
    UnsolvableOrCancelled,
};

mod explain;
mod index;
mod libsolv;
pub mod lock;
mod order;
mod provider;
mod remove;
mod rich;
mod spec;

pub use index::INSTALLONLY;
pub use lock::{Lock, LockPass, LockRepo, LockedPackage};

use crate::repo::RepoIndex;
use crate::rpm::{Dep, RichDep};
use index::Index;
use provider::{Filter, Provider, sidx};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum SolveError {
    /// No solution: the explanation is dnf-style.
    #[error("dependency resolution failed in pass {pass}:\n{explanation}")]
    Unsat {
        /// 1-based pass number.
        pass: usize,
        /// Human explanation.
        explanation: String,
    },
    /// An install spec matches nothing.
    #[error(
        "No match for argument: {spec} (no package name, NEVRA, capability or file in the repositories matches it)"
    )]
    NoMatch {
        /// The spec.
        spec: String,
    },
    /// An `@group` that no repository's comps defines.
    #[error("unknown group @{group}; the repositories define: {}", if known.is_empty() { "no groups (no comps metadata)".to_string() } else { known.join(", ") })]
    UnknownGroup {
        /// The group id as written.
        group: String,
        /// Group ids that do exist.
        known: Vec<String>,
    },
    /// A spec that cannot be parsed.
    #[error("invalid package spec {spec:?}: {message}")]
    BadSpec {
        /// The spec.
        spec: String,
        /// What is wrong.
        message: String,
    },
    /// The lockfile cannot be parsed.
    #[error("osimage.lock: {message}; delete it and run `osimage lock` again")]
    BadLock {
        /// Parser message.
        message: String,
    },
    /// Unknown image arch.
    #[error("unsupported arch {0:?} (supported: x86_64, aarch64, ppc64le, s390x, i686)")]
    Arch(String),
    /// Placeholder for unbuilt parts.
    #[error("not implemented: {0}")]
    NotImplemented(String),
}

/// One pass: like one `dnf install` (then `dnf remove`) on top of the previous passes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PassRequest {
    /// What to install (anything `dnf install` accepts).
    pub install: Vec<String>,
    /// Package names (globs) to remove after installing (xCAT `-pkg`); packages that require
    /// them are removed too, like `dnf remove`.
    pub remove: Vec<String>,
}

/// Everything a solve needs.
#[derive(Clone, Debug)]
pub struct SolveRequest<'a> {
    /// Repositories, in priority order (earlier wins a tie).
    pub repos: &'a [RepoIndex],
    /// Image arch (`x86_64`).
    pub arch: String,
    /// Passes, in order.
    pub passes: Vec<PassRequest>,
    /// Install weak dependencies (Recommends, Supplements), like dnf's `install_weak_deps`.
    pub weak_deps: bool,
    /// Allow multilib (`i686` on `x86_64`) packages.
    pub multilib: bool,
    /// Package name globs never to install (dnf `excludepkgs`).
    pub excludes: Vec<String>,
}

fn glob_set(pats: &[String]) -> Result<globset::GlobSet, SolveError> {
    let mut b = globset::GlobSetBuilder::new();
    for p in pats {
        let g = globset::Glob::new(p).map_err(|e| SolveError::BadSpec {
            spec: p.clone(),
            message: e.to_string(),
        })?;
        b.add(g);
    }
    b.build().map_err(|e| SolveError::BadSpec {
        spec: pats.join(" "),
        message: e.to_string(),
    })
}

/// Solve every pass; the result lists, per pass, the packages it installs in transaction order.
pub fn solve(req: &SolveRequest) -> Result<Lock, SolveError> {
    if index::compat_arches(&req.arch).0.is_empty() {
        return Err(SolveError::Arch(req.arch.clone()));
    }
    let excl = glob_set(&req.excludes)?;
    let paths: Vec<String> = req
        .passes
        .iter()
        .flat_map(|p| &p.install)
        .filter(|s| s.starts_with('/'))
        .cloned()
        .collect();
    let idx = Index::new(
        req.repos,
        &req.arch,
        req.multilib,
        |p| excl.is_match(&p.name),
        &paths,
    );
    let mut installed: Vec<u32> = Vec::new();
    let mut user: HashSet<String> = HashSet::new();
    let mut lock = Lock {
        request: String::new(),
        passes: Vec::new(),
        repos: req
            .repos
            .iter()
            .map(|r| LockRepo {
                name: r.name.clone(),
                checksum: r.checksum.clone(),
            })
            .collect(),
    };
    for (pi, pass) in req.passes.iter().enumerate() {
        let solution = solve_pass(&idx, pass, &installed, req.weak_deps, pi + 1)?;
        let before: HashSet<u32> = installed.iter().copied().collect();
        let new: Vec<u32> = solution
            .iter()
            .copied()
            .filter(|s| !before.contains(s))
            .collect();
        let prov = Provider::new(&idx);
        let ordered = order::order(&prov, &new);
        let kept: HashSet<u32> = solution.iter().copied().collect();
        let upgraded: Vec<String> = installed
            .iter()
            .filter(|s| !kept.contains(s))
            .map(|&s| idx.solvs[s as usize].pkg.nevra())
            .collect();
        let mut now: Vec<u32> = solution;
        user.extend(remove::user_names(&prov, &now, &pass.install));
        let removed = remove::remove(&prov, &mut now, &pass.remove, &user)?;
        installed = now;
        lock.passes.push(LockPass {
            packages: ordered
                .iter()
                .map(|&s| {
                    let sv = &idx.solvs[s as usize];
                    let p = sv.pkg;
                    LockedPackage {
                        name: p.name.clone(),
                        epoch: p.epoch,
                        version: p.version.clone(),
                        release: p.release.clone(),
                        arch: p.arch.clone(),
                        repo: req.repos[sv.repo].name.clone(),
                        location: p.location.clone(),
                        sha256: p.sha256.clone(),
                    }
                })
                .collect(),
            removed,
            upgraded,
        });
    }
    Ok(lock)
}

fn solve_pass(
    idx: &Index<'_>,
    pass: &PassRequest,
    installed: &[u32],
    weak: bool,
    pass_no: usize,
) -> Result<Vec<u32>, SolveError> {
    let mut prov = Provider::new(idx);
    // Like a second `dnf install` on a system: what earlier passes installed stays installed,
    // preferably at the same version, but may be upgraded (never downgraded) when a new package
    // needs a newer one. Install-only packages (kernels) stay exactly as they are.
    let mut reqs: Vec<ConditionalRequirement> = Vec::new();
    for &s in installed {
        let sv = &idx.solvs[s as usize];
        let n = sv.name;
        let vs = if idx.names[n].installonly {
            prov.vset(n, Filter::Set(vec![s]), sv.pkg.nevra())
        } else {
            prov.favored.insert(n, s);
            let display = format!("{} >= {} (installed)", sv.pkg.name, sv.evr);
            prov.vset(
                n,
                Filter::Nevr(crate::rpm::DepFlags::GE, Some(sv.evr.clone())),
                display,
            )
        };
        reqs.push(Requirement::Single(vs).into());
    }
    let mut conditional: Vec<(String, String)> = Vec::new();
    for spec in &pass.install {
        let e = spec::expand(&prov, spec, installed)?;
        reqs.extend(e.reqs);
        conditional.extend(e.conditional);
    }
    // A fresh install without weak or rich dependencies: replay libsolv's decisions (dnf's
    // answer where several are valid); anything else, or no answer, goes to resolvo.
    if installed.is_empty() && !weak && conditional.is_empty() {
        let ts = std::time::Instant::now();
        if let Some(jobs) = job_candidates(&prov, &reqs)
            && let Some(sol) = libsolv::solve(&prov, &jobs)
        {
            tracing::debug!("solve: libsolv replay pass {pass_no} in {:?}", ts.elapsed());
            return Ok(sol);
        }
    }
    let mut solver = Solver::new(prov);
    let mut soft: Vec<SolvableId> = Vec::new();
    let mut fixed: HashSet<String> = HashSet::new();
    loop {
        let problem = Problem::new()
            .requirements(reqs.clone())
            .soft_requirements(soft.clone());
        let ts = std::time::Instant::now();
        let r = solver.solve(problem);
        tracing::debug!("solve: resolvo pass {pass_no} in {:?}", ts.elapsed());
        match r {
            Ok(sol) => {
                // auxiliary solvables (nested rich expressions) are not packages
                let sol: Vec<u32> = sol
                    .into_iter()
                    .map(sidx)
                    .filter(|&s| !solver.provider().is_aux(s))
                    .collect();
                // Conditional parts whose condition came in (`A if B` where resolvo's
                // conditional clause did not fire, e.g. B install-only; comps conditional
                // packages): require them at the top level and solve again.
                let more = unmet_conditionals(solver.provider(), &sol, &conditional, &mut fixed);
                if !more.is_empty() {
                    reqs.extend(more);
                    continue;
                }
                if !weak {
                    return Ok(sol);
                }
                let more = weak_candidates(solver.provider(), &sol, &soft);
                if more.is_empty() {
                    return Ok(sol);
                }
                soft.extend(more.into_iter().map(|s| SolvableId::from_index(s as usize)));
            }
            Err(UnsolvableOrCancelled::Unsolvable(c)) => {
                return Err(SolveError::Unsat {
                    pass: pass_no,
                    explanation: explain::explain(&solver, &c),
                });
            }
            Err(UnsolvableOrCancelled::Cancelled(_)) => {
                return Err(SolveError::Unsat {
                    pass: pass_no,
                    explanation: "solver cancelled".into(),
                });
            }
        }
    }
}

/// The candidate packages of each top-level requirement (one libsolv job each); `None` when a
/// requirement is conditional or names nothing.
fn job_candidates(p: &Provider<'_, '_>, reqs: &[ConditionalRequirement]) -> Option<Vec<Vec<u32>>> {
    let mut jobs = Vec::with_capacity(reqs.len());
    for r in reqs {
        if r.condition.is_some() {
            return None;
        }
        let mut c: Vec<u32> = Vec::new();
        for vs in p.requirement_sets(r.requirement) {
            let (n, f) = p.vset_filter(vs);
            if p.is_missing_name(n) {
                return None;
            }
            c.extend(
                p.idx.names[n]
                    .solvables
                    .iter()
                    .copied()
                    .filter(|&s| p.matches(s, &f)),
            );
        }
        c.sort_unstable();
        c.dedup();
        if c.is_empty() {
            return None;
        }
        jobs.push(c);
    }
    Some(jobs)
}

/// Requirements for `if`/`else` parts of chosen packages' rich Requires (and comps conditional
/// packages) whose condition holds in `sol` but which `sol` does not satisfy yet.
fn unmet_conditionals(
    p: &Provider<'_, '_>,
    sol: &[u32],
    conditional: &[(String, String)],
    fixed: &mut HashSet<String>,
) -> Vec<ConditionalRequirement> {
    let set: HashSet<u32> = sol.iter().copied().collect();
    let mut out = Vec::new();
    for &s in sol {
        for d in &p.idx.solvs[s as usize].pkg.requires {
            let Some(r) = &d.rich else { continue };
            if dep_holds(p, d, &set) {
                continue;
            }
            let parts: Vec<&RichDep> = match r {
                RichDep::And(v) => v.iter().collect(),
                other => vec![other],
            };
            for part in parts {
                let pick = match part {
                    RichDep::If(a, b, c) => {
                        if rich_holds(p, b, &set) {
                            Some(a.as_ref())
                        } else {
                            c.as_deref()
                        }
                    }
                    RichDep::Unless(a, b, c) => {
                        if rich_holds(p, b, &set) {
                            c.as_deref()
                        } else {
                            Some(a.as_ref())
                        }
                    }
                    _ => None,
                };
                if let Some(then) = pick
                    && !rich_holds(p, then, &set)
                    && fixed.insert(format!("{s}:{then:?}"))
                {
                    let dep = Dep {
                        name: String::new(),
                        flags: crate::rpm::DepFlags::ANY,
                        evr: None,
                        pre: false,
                        rich: Some(then.clone()),
                    };
                    let _ = p.dep_requirements(&dep, &mut out);
                }
            }
        }
    }
    for (pkg, cond) in conditional {
        let cond_in = sol
            .iter()
            .any(|&s| p.idx.solvs[s as usize].pkg.name == *cond);
        let pkg_in = sol
            .iter()
            .any(|&s| p.idx.solvs[s as usize].pkg.name == *pkg);
        if cond_in && !pkg_in && fixed.insert(format!("group:{pkg}")) {
            out.push(
                p.union(p.cap_sets(pkg, crate::rpm::DepFlags::ANY, None))
                    .into(),
            );
        }
    }
    out
}

fn rich_holds(p: &Provider<'_, '_>, r: &RichDep, set: &HashSet<u32>) -> bool {
    let d = Dep {
        name: String::new(),
        flags: crate::rpm::DepFlags::ANY,
        evr: None,
        pre: false,
        rich: Some(r.clone()),
    };
    dep_holds(p, &d, set)
}

/// Is the atom `(name, flags, evr)` satisfied by a member of `set`?
fn atom_in(p: &Provider<'_, '_>, name: &str, f: &Filter, set: &HashSet<u32>) -> bool {
    p.idx
        .providers(name)
        .into_iter()
        .any(|s| set.contains(&s) && p.matches(s, f))
}

/// Evaluate a (rich) dependency against an installed set.
fn dep_holds(p: &Provider<'_, '_>, d: &Dep, set: &HashSet<u32>) -> bool {
    fn rich(p: &Provider<'_, '_>, r: &RichDep, set: &HashSet<u32>) -> bool {
        match r {
            RichDep::Atom { name, flags, evr } => atom_in(
                p,
                name,
                &Filter::Cap(name.clone(), *flags, evr.clone()),
                set,
            ),
            RichDep::And(v) => v.iter().all(|x| rich(p, x, set)),
            RichDep::Or(v) => v.iter().any(|x| rich(p, x, set)),
            RichDep::If(a, b, c) => {
                if rich(p, b, set) {
                    rich(p, a, set)
                } else {
                    c.as_ref().is_none_or(|c| rich(p, c, set))
                }
            }
            RichDep::Unless(a, b, c) => {
                if !rich(p, b, set) {
                    rich(p, a, set)
                } else {
                    c.as_ref().is_none_or(|c| rich(p, c, set))
                }
            }
            RichDep::With(v) => {
                let RichDep::Atom { name, .. } = &v[0] else {
                    return false;
                };
                let fs: Vec<Filter> = v
                    .iter()
                    .filter_map(|x| match x {
                        RichDep::Atom { name, flags, evr } => {
                            Some(Filter::Cap(name.clone(), *flags, evr.clone()))
                        }
                        _ => None,
                    })
                    .collect();
                atom_in(p, name, &Filter::With(fs), set)
            }
            RichDep::Without(a, b) => match (a.as_ref(), b.as_ref()) {
                (
                    RichDep::Atom { name, flags, evr },
                    RichDep::Atom {
                        name: n2,
                        flags: f2,
                        evr: e2,
                    },
                ) => {
                    let f = Filter::Without(
                        Box::new(Filter::Cap(name.clone(), *flags, evr.clone())),
                        Box::new(Filter::Cap(n2.clone(), *f2, e2.clone())),
                    );
                    atom_in(p, name, &f, set)
                }
                _ => false,
            },
        }
    }
    match &d.rich {
        Some(r) => rich(p, r, set),
        None => atom_in(
            p,
            &d.name,
            &Filter::Cap(d.name.clone(), d.flags, d.evr.clone()),
            set,
        ),
    }
}

/// The best solvable of `cap`'s providers (first name in preference order, best candidate).
fn best_provider(p: &Provider<'_, '_>, name: &str, f: &Filter) -> Option<u32> {
    for n in p.idx.provider_names(name) {
        let mut c: Vec<u32> = p.idx.names[n]
            .solvables
            .iter()
            .copied()
            .filter(|&s| p.matches(s, f))
            .collect();
        p.sort_solvables(&mut c);
        if let Some(&s) = c.first() {
            return Some(s);
        }
    }
    None
}

/// Weak dependencies to try next: best providers of unmet Recommends of installed packages, and
/// the best package of every name whose Supplements hold.
fn weak_candidates(p: &Provider<'_, '_>, sol: &[u32], soft: &[SolvableId]) -> Vec<u32> {
    let set: HashSet<u32> = sol.iter().copied().collect();
    let tried: HashSet<u32> = soft.iter().map(|&s| sidx(s)).collect();
    let installed_names: HashSet<usize> =
        sol.iter().map(|&s| p.idx.solvs[s as usize].name).collect();
    let mut out = Vec::new();
    let push = |s: u32, out: &mut Vec<u32>| {
        if !set.contains(&s) && !tried.contains(&s) && !out.contains(&s) {
            out.push(s);
        }
    };
    for &s in sol {
        for d in &p.idx.solvs[s as usize].pkg.recommends {
            if dep_holds(p, d, &set) {
                continue;
            }
            let atoms: Vec<(String, Filter)> = match &d.rich {
                None => vec![(
                    d.name.clone(),
                    Filter::Cap(d.name.clone(), d.flags, d.evr.clone()),
                )],
                Some(RichDep::Or(v)) => v
                    .iter()
                    .filter_map(|x| match x {
                        RichDep::Atom { name, flags, evr } => {
                            Some((name.clone(), Filter::Cap(name.clone(), *flags, evr.clone())))
                        }
                        _ => None,
                    })
                    .collect(),
                Some(RichDep::Atom { name, flags, evr }) => {
                    vec![(name.clone(), Filter::Cap(name.clone(), *flags, evr.clone()))]
                }
                Some(_) => Vec::new(),
            };
            if let Some(b) = atoms.iter().find_map(|(n, f)| best_provider(p, n, f)) {
                push(b, &mut out);
            }
        }
    }
    for (n, info) in p.idx.names.iter().enumerate() {
        if installed_names.contains(&n) {
            continue;
        }
        let mut c = info.solvables.clone();
        p.sort_solvables(&mut c);
        let Some(&best) = c.first() else { continue };
        if p.idx.solvs[best as usize]
            .pkg
            .supplements
            .iter()
            .any(|d| dep_holds(p, d, &set))
        {
            push(best, &mut out);
        }
    }
    out
}
