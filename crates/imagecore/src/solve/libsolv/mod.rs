//! libsolv's decision procedure, reproduced so that the answer equals dnf's where several valid
//! answers exist (upper bounds, conflicts, capabilities with several providers).
//!
//! dnf hands an install to libsolv, a CDCL SAT solver whose *free choices* are policy: which
//! unfulfilled requirement it decides next and which candidate it takes. resolvo decides in
//! another order (activity heuristics), so on such universes its valid answer can differ. This
//! module replays libsolv 0.7's `solver_run_sat` for the case dnf meets on a fresh installroot
//! (nothing installed, no weak dependencies, no rich dependencies):
//!
//! - **rules**: one package rule per Requires (`-A | B1 | B2 ...`, providers in pool order),
//!   per Conflicts/Obsoletes match and per pair of same-name packages (`-A | -B`), collected
//!   from the job's candidates, then sorted like libsolv's `unifyrules` (by the first literal,
//!   i.e. requiring package *last in the repository first*, then by the provider list) and
//!   deduplicated; then one job rule per install spec;
//! - **decisions**: job rules in order; then the package rules in rule order, where a rule whose
//!   candidates still have several *names* after pruning (best arch, best version per name) is
//!   postponed until no single-name rule is left; a choice among names takes the first after
//!   libsolv's `policy_filter_unwanted`: names by `strcmp`, names whose candidate is not the
//!   newest of its name last (`dislike_old_versions`), then by the version of a capability the
//!   candidates provide in common, highest first (`sort_by_common_dep`) — see [`policy`];
//! - **conflicts**: unit propagation over two watched literals in libsolv's watch order, first
//!   UIP learning, backjump; then the rule loop goes on from where it was;
//! - **minimisation**: once everything is decided, the earliest choice one of whose other
//!   candidates got installed anyway is re-taken with that candidate (libsolv's "minimizing"
//!   branches).
//!
//! Anything outside that case (installed packages, rich or weak dependencies) returns `None`
//! and the caller uses resolvo; so does an unsolvable job (resolvo explains it). Every answer is
//! checked against the rules it was built from before it is returned.

use std::collections::HashMap;

use super::provider::{Filter, Provider};
use crate::rpm::Dep;

mod engine;
mod policy;

/// `solvable index + 2`: libsolv's ids (1 is the system solvable) keep our pool order.
pub(crate) type Lit = i32;
const SYSTEM: Lit = 1;

pub(crate) fn id(s: u32) -> Lit {
    s as Lit + 2
}
pub(crate) fn sv(id: Lit) -> u32 {
    id.unsigned_abs() - 2
}

/// One clause, libsolv layout: `p`, then either `w2` (binary/unary, `d == 0`) or the
/// zero-terminated literal list at `d` in [`Rules::wp`]. `w1`/`w2` are the watched literals,
/// `n1`/`n2` the next rules in their watch lists.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Rule {
    pub p: Lit,
    pub d: u32,
    pub w1: Lit,
    pub w2: Lit,
    pub n1: u32,
    pub n2: u32,
}

/// The rule set and literal-list pool.
pub(crate) struct Rules {
    pub rules: Vec<Rule>,
    pub wp: Vec<Lit>,
    pub pkgrules_end: usize,
    pub jobrules: (usize, usize),
}

impl Rules {
    /// The literals of rule `i`, in libsolv's `FOR_RULELITERALS` order.
    pub fn lits(&self, i: usize, out: &mut Vec<Lit>) {
        out.clear();
        let r = &self.rules[i];
        out.push(r.p);
        if r.d == 0 {
            if r.w2 != 0 {
                out.push(r.w2);
            }
        } else {
            let mut k = r.d as usize;
            while self.wp[k] != 0 {
                out.push(self.wp[k]);
                k += 1;
            }
        }
    }

    fn intern(&mut self, lits: &[Lit]) -> u32 {
        let d = self.wp.len() as u32;
        self.wp.extend_from_slice(lits);
        self.wp.push(0);
        d
    }

    /// libsolv's `solver_addrule(p, p2, d)` for a list: 1 or 2 literals become a unary or
    /// binary rule (binary package rules are normalised to `p < p2`).
    fn add(&mut self, p: Lit, rest: &[Lit], d_hint: Option<u32>, normalise: bool) {
        let (mut p, mut p2, d) = match rest.len() {
            0 => (p, 0, 0),
            1 => (p, rest[0], 0),
            _ => (p, 0, d_hint.unwrap_or_else(|| self.intern(rest))),
        };
        if normalise && d == 0 && p2 != 0 && p > p2 {
            std::mem::swap(&mut p, &mut p2);
        }
        let w2 = if d != 0 { self.wp[d as usize] } else { p2 };
        self.rules.push(Rule {
            p,
            d,
            w1: p,
            w2,
            n1: 0,
            n2: 0,
        });
    }

    /// libsolv's `unifyrules_sortcmp`.
    fn cmp(&self, a: &Rule, b: &Rule) -> std::cmp::Ordering {
        use std::cmp::Ordering::*;
        let x = a.p.cmp(&b.p);
        if x != Equal {
            return x;
        }
        if a.d == 0 && b.d == 0 {
            return a.w2.cmp(&b.w2);
        }
        if a.d == 0 {
            let x = a.w2.cmp(&self.wp[b.d as usize]);
            return if x == Equal { Less } else { x };
        }
        if b.d == 0 {
            let x = self.wp[a.d as usize].cmp(&b.w2);
            return if x == Equal { Greater } else { x };
        }
        if a.d == b.d {
            return Equal;
        }
        let (mut i, mut j) = (a.d as usize, b.d as usize);
        while self.wp[j] != 0 {
            let x = self.wp[i].cmp(&self.wp[j]);
            if x != Equal {
                return x;
            }
            i += 1;
            j += 1;
        }
        self.wp[i].cmp(&0)
    }
}

/// Providers (our solvable indices, ascending) of a plain dependency, cached by its text.
struct WhatProvides<'p, 'i, 'a> {
    p: &'p Provider<'i, 'a>,
    cache: HashMap<String, (Vec<u32>, Option<u32>)>,
}

impl WhatProvides<'_, '_, '_> {
    fn get(&mut self, d: &Dep) -> &mut (Vec<u32>, Option<u32>) {
        let key = format!("{}\0{}\0{:?}", d.name, d.flags.0, d.evr);
        let p = self.p;
        self.cache.entry(key).or_insert_with(|| {
            let f = Filter::Cap(d.name.clone(), d.flags, d.evr.clone());
            let mut v: Vec<u32> = p
                .idx
                .providers(&d.name)
                .into_iter()
                .filter(|&s| p.matches(s, &f))
                .collect();
            v.sort_unstable();
            v.dedup();
            (v, None)
        })
    }
}

fn is_rich(d: &Dep) -> bool {
    d.rich.is_some() || d.name.starts_with('(')
}

/// Build libsolv's rules for installing one of each `jobs` candidate list. `None` when a
/// package in reach has something this replay does not model.
fn build(p: &Provider<'_, '_>, jobs: &[Vec<u32>]) -> Option<Rules> {
    let idx = p.idx;
    let mut rules = Rules {
        rules: vec![Rule::default()],
        wp: vec![0],
        pkgrules_end: 0,
        jobrules: (0, 0),
    };
    let mut wpc = WhatProvides {
        p,
        cache: HashMap::new(),
    };
    let mut seen = vec![false; idx.solvs.len()];
    let mut work: Vec<u32> = jobs.iter().flatten().copied().collect();
    while let Some(n) = work.pop() {
        if std::mem::replace(&mut seen[n as usize], true) {
            continue;
        }
        let sv_ = &idx.solvs[n as usize];
        let pkg = sv_.pkg;
        if !(pkg.recommends.is_empty()
            && pkg.supplements.is_empty()
            && pkg.suggests.is_empty()
            && pkg.enhances.is_empty())
        {
            return None;
        }
        let me = id(n);
        for d in &pkg.requires {
            if is_rich(d) {
                return None;
            }
            if d.name.starts_with("rpmlib(") {
                continue;
            }
            let e = wpc.get(d);
            if e.0.is_empty() {
                rules.add(-me, &[], None, true);
                continue;
            }
            if e.0.contains(&n) {
                continue;
            }
            let lits: Vec<Lit> = e.0.iter().map(|&s| id(s)).collect();
            let hint = e.1;
            let before = rules.wp.len();
            rules.add(-me, &lits, hint, true);
            if lits.len() > 1 && hint.is_none() {
                wpc.get(d).1 = Some(before as u32);
            }
            work.extend(wpc.get(d).0.iter().filter(|&&s| !seen[s as usize]));
        }
        for d in &pkg.conflicts {
            if is_rich(d) {
                return None;
            }
            let provs = wpc.get(d).0.clone();
            for q in provs {
                if q != n {
                    rules.add(-me, &[-id(q)], None, true);
                }
            }
        }
        for d in &pkg.obsoletes {
            let f = Filter::Nevr(d.flags, d.evr.clone());
            for &nm in idx.by_base_name.get(d.name.as_str()).into_iter().flatten() {
                for &q in &idx.names[nm].solvables {
                    if q != n && p.matches(q, &f) {
                        rules.add(-me, &[-id(q)], None, true);
                    }
                }
            }
        }
        if !idx.names[sv_.name].installonly {
            for &q in &idx.names[sv_.name].solvables {
                if q != n {
                    rules.add(-me, &[-id(q)], None, true);
                }
            }
        }
    }
    // unifyrules: sort, drop duplicates
    let mut pk: Vec<Rule> = rules.rules.split_off(1);
    pk.sort_by(|a, b| rules.cmp(a, b));
    pk.dedup_by(|b, a| rules.cmp(a, b) == std::cmp::Ordering::Equal);
    rules.rules.extend(pk);
    rules.pkgrules_end = rules.rules.len();
    for j in jobs {
        let mut c: Vec<Lit> = j.iter().map(|&s| id(s)).collect();
        c.sort_unstable();
        c.dedup();
        let first = c.remove(0);
        rules.add(first, &c, None, false);
    }
    rules.jobrules = (rules.pkgrules_end, rules.rules.len());
    Some(rules)
}

/// Install one package of each candidate list (our solvable indices) the way libsolv would.
/// `None`: not modelled or unsolvable (use resolvo).
pub(crate) fn solve(p: &Provider<'_, '_>, jobs: &[Vec<u32>]) -> Option<Vec<u32>> {
    if jobs.is_empty() || jobs.iter().any(Vec::is_empty) {
        return None;
    }
    let rules = build(p, jobs)?;
    let mut e = engine::Engine::new(p, rules);
    e.run()?;
    let sol = e.installed();
    e.check(&sol).then_some(sol)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::RepoIndex;
    use crate::rpm::{DepFlags, Evr, PackageMeta};
    use crate::solve::index::Index;

    fn pkg(name: &str, ver: &str, provides: &[&str], requires: &[&str]) -> PackageMeta {
        let mut p = PackageMeta {
            name: name.into(),
            version: ver.into(),
            release: "1".into(),
            arch: "noarch".into(),
            ..Default::default()
        };
        p.provides.push(Dep::new(
            name,
            DepFlags::EQUAL,
            Some(Evr::new(0, ver, "1")),
            false,
        ));
        p.provides.extend(provides.iter().map(|d| Dep::parse(d)));
        p.requires.extend(requires.iter().map(|d| Dep::parse(d)));
        p
    }

    /// Solve `names` (each a job of all its packages) and return the chosen NEVRAs.
    fn run(pkgs: Vec<PackageMeta>, names: &[&str]) -> Option<Vec<String>> {
        let repos = vec![RepoIndex {
            name: "r".into(),
            packages: pkgs,
            ..Default::default()
        }];
        let idx = Index::new(&repos, "x86_64", false, |_| false, &[]);
        let p = Provider::new(&idx);
        let jobs: Vec<Vec<u32>> = names
            .iter()
            .map(|n| idx.names[idx.name_ids[*n]].solvables.clone())
            .collect();
        solve(&p, &jobs).map(|v| {
            v.iter()
                .map(|&s| idx.solvs[s as usize].pkg.nvra())
                .collect()
        })
    }

    #[test]
    fn highest_capability_version_then_name_order() {
        let got = run(
            vec![
                pkg("app", "1", &[], &["cap"]),
                pkg("a", "1", &["cap = 1"], &[]),
                pkg("b", "1", &["cap = 3"], &[]),
                pkg("c", "1", &["cap = 2"], &[]),
            ],
            &["app"],
        );
        assert_eq!(got.unwrap(), ["app-1-1.noarch", "b-1-1.noarch"]);
        // equal capability versions: strcmp order
        let got = run(
            vec![
                pkg("app", "1", &[], &["cap"]),
                pkg("zed", "1", &["cap"], &[]),
                pkg("abc", "1", &["cap"], &[]),
            ],
            &["app"],
        );
        assert_eq!(got.unwrap(), ["app-1-1.noarch", "abc-1-1.noarch"]);
    }

    #[test]
    fn upper_bound_propagates_before_the_version_choice() {
        // `tool` (a single provider, propagated) pins lib <= 1 before any choice of version
        let got = run(
            vec![
                pkg("lib", "1", &[], &[]),
                pkg("lib", "2", &[], &[]),
                pkg("tool", "1", &[], &["lib <= 1"]),
                pkg("app", "1", &[], &["lib", "tool"]),
            ],
            &["app"],
        );
        assert_eq!(
            got.unwrap(),
            ["lib-1-1.noarch", "tool-1-1.noarch", "app-1-1.noarch"]
        );
    }

    #[test]
    fn unsolvable_and_unmodelled_cases_are_left_to_resolvo() {
        assert!(
            run(
                vec![
                    pkg("app", "1", &[], &["lib >= 2", "tool"]),
                    pkg("lib", "1", &[], &[]),
                    pkg("tool", "1", &[], &["lib < 2"]),
                ],
                &["app"],
            )
            .is_none()
        );
        let mut rich = pkg("app", "1", &[], &[]);
        rich.requires.push(Dep::parse("(a or b)"));
        assert!(run(vec![rich, pkg("a", "1", &[], &[])], &["app"]).is_none());
    }
}
