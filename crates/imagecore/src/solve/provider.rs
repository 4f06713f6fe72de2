//! The resolvo [`DependencyProvider`]: RPM semantics mapped onto resolvo names and version sets.
//!
//! Mapping (see crates.md): every resolvo name is one package name, so a capability provided by
//! several packages becomes a union of one version set per providing name. Conflicts and
//! obsoletes are `constrains` with a negated filter. Rich dependencies: see [`super::rich`]
//! (conditional requirements, auxiliary solvables for nested expressions).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Display;

use resolvo::{
    Candidates, Condition, ConditionId, DenseIndex, Dependencies, DependencyProvider,
    HintDependenciesAvailable, Interner, KnownDependencies, NameId, Requirement, SolvableId,
    SolverCache, StringId, VersionSetId, VersionSetUnionId,
};

use super::index::{FxMap, Index};
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
    /// The auxiliary solvable of a nested rich expression (see [`super::rich`]).
    Aux,
}

fn key_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn key_evr(out: &mut Vec<u8>, e: Option<&Evr>) {
    match e {
        None => out.push(0),
        Some(e) => {
            out.push(1);
            out.extend_from_slice(&e.epoch.to_le_bytes());
            key_str(out, &e.version);
            key_str(out, &e.release);
        }
    }
}

impl Filter {
    /// An exact, unambiguous byte key (version sets are interned by it).
    fn key(&self, out: &mut Vec<u8>) {
        match self {
            Filter::Cap(c, f, e) => {
                out.push(0);
                key_str(out, c);
                out.extend_from_slice(&f.0.to_le_bytes());
                key_evr(out, e.as_ref());
            }
            Filter::Nevr(f, e) => {
                out.push(1);
                out.extend_from_slice(&f.0.to_le_bytes());
                key_evr(out, e.as_ref());
            }
            Filter::Set(v) => {
                out.push(2);
                out.extend_from_slice(&(v.len() as u32).to_le_bytes());
                v.iter()
                    .for_each(|s| out.extend_from_slice(&s.to_le_bytes()));
            }
            Filter::With(v) => {
                out.push(3);
                out.extend_from_slice(&(v.len() as u32).to_le_bytes());
                v.iter().for_each(|f| f.key(out));
            }
            Filter::Without(a, b) => {
                out.push(4);
                a.key(out);
                b.key(out);
            }
            Filter::Not(f, e) => {
                out.push(5);
                f.key(out);
                out.extend_from_slice(&e.map_or(u64::MAX, u64::from).to_le_bytes());
            }
            Filter::Nothing => out.push(6),
            Filter::Aux => out.push(7),
        }
    }
}

pub(crate) struct Provider<'i, 'a> {
    pub idx: &'i Index<'a>,
    /// name ids beyond the index: capabilities nothing provides.
    missing: RefCell<Vec<String>>,
    missing_ids: RefCell<FxMap<String, usize>>,
    vsets: RefCell<Vec<(usize, Filter, String)>>,
    vset_ids: RefCell<FxMap<Vec<u8>, u32>>,
    /// (capability, flags, evr) → its version sets ([`Provider::cap_sets`] is hot: thousands
    /// of packages share each requirement).
    cap_cache: RefCell<FxMap<Vec<u8>, Vec<VersionSetId>>>,
    unions: RefCell<Vec<Vec<VersionSetId>>>,
    conditions: RefCell<Vec<Condition>>,
    strings: RefCell<Vec<String>>,
    /// name id → the solvable installed by an earlier pass (preferred; not for installonly).
    pub favored: HashMap<usize, u32>,
    /// Auxiliary solvables (ids from `idx.solvs.len()` on): their name and expression.
    aux: RefCell<Vec<(usize, RichDep)>>,
    /// Auxiliary name id → its solvable.
    aux_of_name: RefCell<HashMap<usize, u32>>,
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
            missing_ids: RefCell::default(),
            vsets: RefCell::default(),
            vset_ids: RefCell::default(),
            cap_cache: RefCell::default(),
            unions: RefCell::default(),
            conditions: RefCell::default(),
            strings: RefCell::default(),
            favored: HashMap::new(),
            aux: RefCell::default(),
            aux_of_name: RefCell::default(),
        }
    }

    /// Is `s` an auxiliary solvable (not a package)?
    pub fn is_aux(&self, s: u32) -> bool {
        s as usize >= self.idx.solvs.len()
    }

    /// The version set selecting the auxiliary solvable standing for the nested rich
    /// expression `r` (created on first use).
    pub(crate) fn aux_set(&self, r: &RichDep) -> VersionSetId {
        let display = super::rich::render(r);
        let name = self.missing_name(&display);
        if !self.aux_of_name.borrow().contains_key(&name) {
            let mut aux = self.aux.borrow_mut();
            let s = (self.idx.solvs.len() + aux.len()) as u32;
            aux.push((name, r.clone()));
            self.aux_of_name.borrow_mut().insert(name, s);
        }
        self.vset(name, Filter::Aux, display)
    }

    fn aux_entry(&self, s: u32) -> Option<(usize, RichDep)> {
        self.aux
            .borrow()
            .get((s as usize).checked_sub(self.idx.solvs.len())?)
            .cloned()
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

    pub(crate) fn missing_name(&self, cap: &str) -> usize {
        if let Some(&i) = self.missing_ids.borrow().get(cap) {
            return i;
        }
        let mut m = self.missing.borrow_mut();
        m.push(cap.to_string());
        let id = self.idx.names.len() + m.len() - 1;
        self.missing_ids.borrow_mut().insert(cap.to_string(), id);
        id
    }

    pub fn vset(&self, name: usize, filter: Filter, display: String) -> VersionSetId {
        let mut key = Vec::with_capacity(64);
        key.extend_from_slice(&(name as u64).to_le_bytes());
        filter.key(&mut key);
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

    pub(crate) fn condition(&self, c: Condition) -> ConditionId {
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
        let Some(solv) = self.idx.solvs.get(s as usize) else {
            return matches!(f, Filter::Aux);
        };
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
            Filter::Nothing | Filter::Aux => false,
        }
    }

    /// Version sets (one per providing name) for a plain capability.
    pub fn cap_sets(&self, name: &str, flags: DepFlags, evr: Option<&Evr>) -> Vec<VersionSetId> {
        let mut key = Vec::with_capacity(name.len() + 32);
        key_str(&mut key, name);
        key.extend_from_slice(&flags.0.to_le_bytes());
        key_evr(&mut key, evr);
        if let Some(v) = self.cap_cache.borrow().get(&key) {
            return v.clone();
        }
        let v = self.cap_sets_uncached(name, flags, evr);
        self.cap_cache.borrow_mut().insert(key, v.clone());
        v
    }

    fn cap_sets_uncached(
        &self,
        name: &str,
        flags: DepFlags,
        evr: Option<&Evr>,
    ) -> Vec<VersionSetId> {
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

    fn dependencies_of(&self, s: u32) -> Result<KnownDependencies, String> {
        let mut deps = KnownDependencies::default();
        if let Some((_, r)) = self.aux_entry(s) {
            self.rich_requirements(&r, None, &mut deps.requirements)?;
            return Ok(deps);
        }
        let pkg = self.idx.solvs[s as usize].pkg;
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
        if v.iter().any(|&s| self.is_aux(s)) {
            return; // an auxiliary name has exactly one candidate
        }
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
        match self.aux_entry(sidx(s)) {
            Some((_, r)) => super::rich::render(&r),
            None => self.idx.solvs[s.to_index()].pkg.nevra(),
        }
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
        match self.aux_entry(sidx(s)) {
            Some((n, _)) => NameId::from_index(n),
            None => NameId::from_index(self.idx.solvs[s.to_index()].name),
        }
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
            let aux = self.aux_of_name.borrow().get(&n).copied();
            return Some(Candidates {
                candidates: aux.map(sid).into_iter().collect(),
                hint_dependencies_available: HintDependenciesAvailable::All,
                ..Candidates::default()
            });
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
