//! The resolvo [`DependencyProvider`]: RPM semantics mapped onto resolvo names and version sets.
//!
//! Mapping (see crates.md): every resolvo name is one package name, so a capability provided by
//! several packages becomes a union of one version set per providing name. Conflicts and
//! obsoletes are `constrains` with a negated filter. Rich `if`/`unless` use conditional
//! requirements; `with`/`without` are single version sets testing both predicates.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Display;

use resolvo::{
    Candidates, Condition, ConditionId, ConditionalRequirement, DenseIndex, Dependencies,
    DependencyProvider, HintDependenciesAvailable, Interner, KnownDependencies, LogicalOperator,
    NameId, Requirement, SolvableId, SolverCache, StringId, VersionSetId, VersionSetUnionId,
};

use super::index::Index;
use crate::rpm::{Dep, DepFlags, Evr, RichDep, evr::overlaps};

/// Which solvables of a name a version set selects.
#[derive(Clone, Debug)]
pub(crate) enum Filter {
    /// Provides `cap` in a range overlapping `(flags, evr)`, or ships the file `cap`.
    Cap(String, DepFlags, Option<Evr>),
    /// The package's own EVR is in range (obsoletes, `name-version` specs).
    Nevr(DepFlags, Option<Evr>),
    /// Exactly these solvables.
    Set(Vec<u32>),
    /// Every part holds for the same package.
    With(Vec<Filter>),
    /// The first holds and the second does not.
    Without(Box<Filter>, Box<Filter>),
    /// Complement, always admitting the given solvable (a package never conflicts with itself).
    Not(Box<Filter>, Option<u32>),
    /// Matches nothing (a capability nobody provides).
    Nothing,
}

pub(crate) struct Provider<'i, 'a> {
    pub idx: &'i Index<'a>,
    /// name ids beyond the index: capabilities nothing provides.
    missing: RefCell<Vec<String>>,
    vsets: RefCell<Vec<(usize, Filter, String)>>,
    vset_ids: RefCell<HashMap<String, u32>>,
    unions: RefCell<Vec<Vec<VersionSetId>>>,
    conditions: RefCell<Vec<Condition>>,
    strings: RefCell<Vec<String>>,
    /// name id → the solvable installed by an earlier pass (preferred; not for installonly).
    pub favored: HashMap<usize, u32>,
}

fn sid(s: u32) -> SolvableId {
    SolvableId::from_index(s as usize)
}
pub(crate) fn sidx(s: SolvableId) -> u32 {
    s.to_index() as u32
}

impl<'i, 'a> Provider<'i, 'a> {
    pub fn new(idx: &'i Index<'a>) -> Self {
        Provider {
            idx,
            missing: RefCell::default(),
            vsets: RefCell::default(),
            vset_ids: RefCell::default(),
            unions: RefCell::default(),
            conditions: RefCell::default(),
            strings: RefCell::default(),
            favored: HashMap::new(),
        }
    }

    pub fn name_display(&self, n: usize) -> String {
        if n < self.idx.names.len() {
            self.idx.names[n].display.clone()
        } else {
            self.missing
                .borrow()
                .get(n - self.idx.names.len())
                .cloned()
                .unwrap_or_default()
        }
    }

    pub fn is_missing_name(&self, n: usize) -> bool {
        n >= self.idx.names.len()
    }

    fn missing_name(&self, cap: &str) -> usize {
        let mut m = self.missing.borrow_mut();
        if let Some(i) = m.iter().position(|x| x == cap) {
            return self.idx.names.len() + i;
        }
        m.push(cap.to_string());
        self.idx.names.len() + m.len() - 1
    }

    pub fn vset(&self, name: usize, filter: Filter, display: String) -> VersionSetId {
        let key = format!("{name}\u{0}{filter:?}");
        if let Some(&id) = self.vset_ids.borrow().get(&key) {
            return VersionSetId(id);
        }
        let mut v = self.vsets.borrow_mut();
        let id = v.len() as u32;
        v.push((name, filter, display));
        self.vset_ids.borrow_mut().insert(key, id);
        VersionSetId(id)
    }

    pub fn vset_filter(&self, vs: VersionSetId) -> (usize, Filter) {
        let v = self.vsets.borrow();
        let (n, f, _) = &v[vs.0 as usize];
        (*n, f.clone())
    }

    pub fn union(&self, sets: Vec<VersionSetId>) -> Requirement {
        if sets.len() == 1 {
            return Requirement::Single(sets[0]);
        }
        let mut u = self.unions.borrow_mut();
        u.push(sets);
        Requirement::Union(VersionSetUnionId((u.len() - 1) as u32))
    }

    pub fn requirement_sets(&self, r: Requirement) -> Vec<VersionSetId> {
        match r {
            Requirement::Single(v) => vec![v],
            Requirement::Union(u) => self.unions.borrow()[u.0 as usize].clone(),
        }
    }

    fn condition(&self, c: Condition) -> ConditionId {
        let mut v = self.conditions.borrow_mut();
        v.push(c);
        ConditionId::from_index(v.len() - 1)
    }

    fn string(&self, s: String) -> StringId {
        let mut v = self.strings.borrow_mut();
        v.push(s);
        StringId((v.len() - 1) as u32)
    }

    pub fn matches(&self, s: u32, f: &Filter) -> bool {
        let solv = &self.idx.solvs[s as usize];
        let pkg = solv.pkg;
        match f {
            Filter::Cap(cap, flags, evr) => {
                if cap.starts_with('/') && self.idx.files.get(cap).is_some_and(|v| v.contains(&s)) {
                    return true;
                }
                let mut any = false;
                for p in pkg.provides.iter().filter(|p| &p.name == cap) {
                    any = true;
                    if overlaps(p.flags, p.evr.as_ref(), *flags, evr.as_ref()) {
                        return true;
                    }
                }
                !any && *cap == pkg.name
                    && overlaps(DepFlags::EQUAL, Some(&solv.evr), *flags, evr.as_ref())
            }
            Filter::Nevr(flags, evr) => {
                overlaps(DepFlags::EQUAL, Some(&solv.evr), *flags, evr.as_ref())
            }
            Filter::Set(v) => v.contains(&s),
            Filter::With(parts) => parts.iter().all(|p| self.matches(s, p)),
            Filter::Without(a, b) => self.matches(s, a) && !self.matches(s, b),
            Filter::Not(inner, except) => *except == Some(s) || !self.matches(s, inner),
            Filter::Nothing => false,
        }
    }

    /// Version sets (one per providing name) for a plain capability.
    pub fn cap_sets(&self, name: &str, flags: DepFlags, evr: Option<&Evr>) -> Vec<VersionSetId> {
        let dep = Dep::new(name, flags, evr.cloned(), false);
        let display = dep.to_string();
        let mut names = self.idx.provider_names(name);
        if names.is_empty() {
            return vec![self.vset(self.missing_name(&display), Filter::Nothing, display)];
        }
        let filter = Filter::Cap(name.to_string(), flags, evr.cloned());
        // libsolv's `dislike_old_versions`: a provider whose matching package is not the newest
        // version of its name goes behind the others (stable, so name order stays otherwise).
        names.sort_by_cached_key(|&n| self.is_old_match(n, &filter));
        names
            .into_iter()
            .map(|n| self.vset(n, filter.clone(), display.clone()))
            .collect()
    }

    /// True when the best package of name `n` matching `f` is older than the newest package of
    /// that name with the same arch.
    fn is_old_match(&self, n: usize, f: &Filter) -> bool {
        let sols = &self.idx.names[n].solvables;
        let best = sols
            .iter()
            .filter(|&&s| self.matches(s, f))
            .map(|&s| &self.idx.solvs[s as usize])
            .max_by(|a, b| a.evr.cmp(&b.evr));
        let Some(best) = best else { return true };
        sols.iter()
            .map(|&s| &self.idx.solvs[s as usize])
            .any(|o| o.pkg.arch == best.pkg.arch && o.evr > best.evr)
    }

    /// Version sets for an `or`-able term (atom, `with`, `without`, nested `or`).
    fn term_sets(&self, r: &RichDep) -> Result<Vec<VersionSetId>, String> {
        match r {
            RichDep::Atom { name, flags, evr } => Ok(self.cap_sets(name, *flags, evr.as_ref())),
            RichDep::Or(parts) => {
                let mut out = Vec::new();
                for p in parts {
                    out.extend(self.term_sets(p)?);
                }
                Ok(out)
            }
            RichDep::With(_) | RichDep::Without(..) => {
                let (first, filter) = match r {
                    RichDep::With(parts) => {
                        let fs: Result<Vec<_>, _> = parts.iter().map(atom_filter).collect();
                        (&parts[0], Filter::With(fs?))
                    }
                    RichDep::Without(a, b) => (
                        a.as_ref(),
                        Filter::Without(Box::new(atom_filter(a)?), Box::new(atom_filter(b)?)),
                    ),
                    _ => unreachable!("matched above"),
                };
                let RichDep::Atom { name, .. } = first else {
                    return Err("unsupported nesting in with/without".into());
                };
                let display = format!("{r:?}");
                let names = self.idx.provider_names(name);
                if names.is_empty() {
                    return Ok(vec![self.vset(
                        self.missing_name(name),
                        Filter::Nothing,
                        name.clone(),
                    )]);
                }
                Ok(names
                    .into_iter()
                    .map(|n| self.vset(n, filter.clone(), display.clone()))
                    .collect())
            }
            _ => Err("unsupported rich dependency nesting (and/if/unless inside or)".into()),
        }
    }

    fn cond_of(&self, sets: &[VersionSetId]) -> ConditionId {
        let mut it = sets.iter();
        let first = it.next().copied().unwrap_or(VersionSetId(0));
        let mut c = self.condition(Condition::Requirement(first));
        for &s in it {
            let n = self.condition(Condition::Requirement(s));
            c = self.condition(Condition::Binary(LogicalOperator::Or, c, n));
        }
        c
    }

    /// Requirements for one `Requires` entry.
    pub fn dep_requirements(
        &self,
        d: &Dep,
        out: &mut Vec<ConditionalRequirement>,
    ) -> Result<(), String> {
        match &d.rich {
            None if d.name.starts_with('(') => {
                Err(format!("cannot parse rich dependency {}", d.name))
            }
            None => {
                out.push(
                    self.union(self.cap_sets(&d.name, d.flags, d.evr.as_ref()))
                        .into(),
                );
                Ok(())
            }
            Some(r) => self.rich_requirements(r, out),
        }
    }

    fn rich_requirements(
        &self,
        r: &RichDep,
        out: &mut Vec<ConditionalRequirement>,
    ) -> Result<(), String> {
        match r {
            RichDep::And(parts) => parts
                .iter()
                .try_for_each(|p| self.rich_requirements(p, out)),
            RichDep::If(then, cond, otherwise) | RichDep::Unless(then, cond, otherwise) => {
                let unless = matches!(r, RichDep::Unless(..));
                let cond_sets = self.term_sets(cond)?;
                // `A if B` ⇔ B → A. `A unless B` ⇔ ¬B → A ⇔ (A or B).
                let (pos, neg) = if unless {
                    (otherwise.as_deref(), Some(then.as_ref()))
                } else {
                    (Some(then.as_ref()), otherwise.as_deref())
                };
                if let Some(p) = pos {
                    let sets = self.term_sets(p)?;
                    out.push(self.union(sets).with_condition(self.cond_of(&cond_sets)));
                }
                if let Some(n) = neg {
                    let mut sets = self.term_sets(n)?;
                    sets.extend(cond_sets.iter().copied());
                    out.push(self.union(sets).into());
                }
                Ok(())
            }
            other => {
                let sets = self.term_sets(other)?;
                out.push(self.union(sets).into());
                Ok(())
            }
        }
    }

    fn dependencies_of(&self, s: u32) -> Result<KnownDependencies, String> {
        let pkg = self.idx.solvs[s as usize].pkg;
        let mut deps = KnownDependencies::default();
        for d in &pkg.requires {
            self.dep_requirements(d, &mut deps.requirements)?;
        }
        for d in &pkg.conflicts {
            if d.rich.is_some() || d.name.starts_with('(') {
                continue;
            }
            let inner = Filter::Cap(d.name.clone(), d.flags, d.evr.clone());
            for n in self.idx.provider_names(&d.name) {
                let except = self.idx.solvs[s as usize].name == n && self.matches(s, &inner);
                let f = Filter::Not(Box::new(inner.clone()), except.then_some(s));
                deps.constrains
                    .push(self.vset(n, f, format!("conflicts with {d}")));
            }
        }
        for d in &pkg.obsoletes {
            let inner = Filter::Nevr(d.flags, d.evr.clone());
            for &n in self
                .idx
                .by_base_name
                .get(d.name.as_str())
                .into_iter()
                .flatten()
            {
                let f = Filter::Not(
                    Box::new(inner.clone()),
                    (self.idx.solvs[s as usize].name == n).then_some(s),
                );
                deps.constrains
                    .push(self.vset(n, f, format!("obsoletes {d}")));
            }
        }
        Ok(deps)
    }

    /// Preference order within one name: highest EVR, then image arch over noarch over multilib,
    /// then repository order.
    pub fn sort_solvables(&self, v: &mut [u32]) {
        v.sort_by(|&a, &b| {
            let (sa, sb) = (&self.idx.solvs[a as usize], &self.idx.solvs[b as usize]);
            sb.evr
                .cmp(&sa.evr)
                .then(sa.arch_rank.cmp(&sb.arch_rank))
                .then(sa.repo.cmp(&sb.repo))
                .then(a.cmp(&b))
        });
    }
}

impl Interner for Provider<'_, '_> {
    type NameId = NameId;
    type SolvableId = SolvableId;

    fn display_solvable(&self, s: SolvableId) -> impl Display + '_ {
        self.idx.solvs[s.to_index()].pkg.nevra()
    }
    fn display_name(&self, name: NameId) -> impl Display + '_ {
        self.name_display(name.to_index())
    }
    fn display_version_set(&self, vs: VersionSetId) -> impl Display + '_ {
        self.vsets.borrow()[vs.0 as usize].2.clone()
    }
    fn display_string(&self, s: StringId) -> impl Display + '_ {
        self.strings.borrow()[s.0 as usize].clone()
    }
    fn version_set_name(&self, vs: VersionSetId) -> NameId {
        NameId::from_index(self.vsets.borrow()[vs.0 as usize].0)
    }
    fn solvable_name(&self, s: SolvableId) -> NameId {
        NameId::from_index(self.idx.solvs[s.to_index()].name)
    }
    fn version_sets_in_union(&self, u: VersionSetUnionId) -> impl Iterator<Item = VersionSetId> {
        self.unions.borrow()[u.0 as usize].clone().into_iter()
    }
    fn resolve_condition(&self, c: ConditionId) -> Condition {
        self.conditions.borrow()[c.to_index()].clone()
    }
}

impl DependencyProvider for Provider<'_, '_> {
    async fn filter_candidates(
        &self,
        candidates: &[SolvableId],
        vs: VersionSetId,
        inverse: bool,
    ) -> Vec<SolvableId> {
        let (_, f) = self.vset_filter(vs);
        candidates
            .iter()
            .copied()
            .filter(|&c| self.matches(sidx(c), &f) != inverse)
            .collect()
    }

    async fn get_candidates(&self, name: NameId) -> Option<Candidates> {
        let n = name.to_index();
        if self.is_missing_name(n) {
            return Some(Candidates::default());
        }
        let info = &self.idx.names[n];
        Some(Candidates {
            candidates: info.solvables.iter().map(|&s| sid(s)).collect(),
            favored: self.favored.get(&n).map(|&s| sid(s)),
            locked: None,
            hint_dependencies_available: HintDependenciesAvailable::All,
            excluded: Vec::new(),
            allow_multiple: info.installonly,
        })
    }

    async fn sort_candidates(&self, _solver: &SolverCache<Self>, solvables: &mut [SolvableId]) {
        let mut v: Vec<u32> = solvables.iter().map(|&s| sidx(s)).collect();
        self.sort_solvables(&mut v);
        for (slot, s) in solvables.iter_mut().zip(v) {
            *slot = sid(s);
        }
    }

    async fn get_dependencies(&self, s: SolvableId) -> Dependencies {
        match self.dependencies_of(sidx(s)) {
            Ok(d) => Dependencies::Known(d),
            Err(msg) => Dependencies::Unknown(self.string(msg)),
        }
    }
}

/// A filter for one atom of a `with`/`without` expression.
fn atom_filter(r: &RichDep) -> Result<Filter, String> {
    match r {
        RichDep::Atom { name, flags, evr } => Ok(Filter::Cap(name.clone(), *flags, evr.clone())),
        _ => Err("with/without operands must be simple capabilities".into()),
    }
}
