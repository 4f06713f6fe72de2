//! Transaction order, the way rpm's tsort orders an install: a package's `Requires(pre)`
//! providers first, then its other requires; dependency cycles are kept together and ordered by
//! their `Requires(pre)` edges, ties by name.

use std::collections::{BTreeSet, HashMap};

use super::provider::{Filter, Provider};
use crate::rpm::{Dep, RichDep};

fn atoms<'d>(r: &'d RichDep, out: &mut Vec<&'d str>) {
    match r {
        RichDep::Atom { name, .. } => out.push(name),
        RichDep::And(v) | RichDep::Or(v) | RichDep::With(v) => v.iter().for_each(|x| atoms(x, out)),
        RichDep::If(a, _, c) | RichDep::Unless(a, _, c) => {
            atoms(a, out);
            if let Some(c) = c {
                atoms(c, out);
            }
        }
        RichDep::Without(a, _) => atoms(a, out),
    }
}

/// Order `set` (solvable ids of one transaction). Edges only between members of `set`.
pub(crate) fn order(p: &Provider<'_, '_>, set: &[u32]) -> Vec<u32> {
    let pos: HashMap<u32, usize> = set.iter().enumerate().map(|(i, &s)| (s, i)).collect();
    let n = set.len();
    // deps[i] = (j, pre): i needs j installed first.
    let mut deps: Vec<Vec<(usize, bool)>> = vec![Vec::new(); n];
    for (i, &s) in set.iter().enumerate() {
        let pkg = p.idx.solvs[s as usize].pkg;
        for d in &pkg.requires {
            let caps: Vec<(&str, &Dep)> = match &d.rich {
                Some(r) => {
                    let mut v = Vec::new();
                    atoms(r, &mut v);
                    v.into_iter().map(|c| (c, d)).collect()
                }
                None => vec![(d.name.as_str(), d)],
            };
            for (cap, d) in caps {
                let f = if d.rich.is_some() {
                    Filter::Cap(cap.to_string(), crate::rpm::DepFlags::ANY, None)
                } else {
                    Filter::Cap(cap.to_string(), d.flags, d.evr.clone())
                };
                for prov in p.idx.providers(cap) {
                    if let Some(&j) = pos.get(&prov)
                        && j != i
                        && p.matches(prov, &f)
                    {
                        deps[i].push((j, d.pre));
                    }
                }
            }
        }
    }
    let name = |i: usize| p.idx.solvs[set[i] as usize].pkg.nevra();
    // Tarjan SCC.
    let sccs = tarjan(&deps);
    let mut comp_of = vec![0usize; n];
    for (c, members) in sccs.iter().enumerate() {
        for &m in members {
            comp_of[m] = c;
        }
    }
    // Kahn over components, ready set ordered by smallest member name.
    let nc = sccs.len();
    let mut indeg = vec![0usize; nc];
    let mut users: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); nc];
    for (i, ds) in deps.iter().enumerate() {
        for &(j, _) in ds {
            let (ci, cj) = (comp_of[i], comp_of[j]);
            if ci != cj && users[cj].insert(ci) {
                indeg[ci] += 1;
            }
        }
    }
    let key = |c: usize| sccs[c].iter().map(|&m| name(m)).min().unwrap_or_default();
    let mut ready: BTreeSet<(String, usize)> = (0..nc)
        .filter(|&c| indeg[c] == 0)
        .map(|c| (key(c), c))
        .collect();
    let mut out = Vec::with_capacity(n);
    while let Some((k, c)) = ready.iter().next().cloned() {
        ready.remove(&(k, c));
        out.extend(
            order_cycle(&sccs[c], &deps, &name)
                .into_iter()
                .map(|i| set[i]),
        );
        for &u in &users[c] {
            indeg[u] -= 1;
            if indeg[u] == 0 {
                ready.insert((key(u), u));
            }
        }
    }
    out
}

/// Inside a cycle: repeatedly take the member with no unmet `Requires(pre)` inside the cycle
/// (then fewest unmet requires), ties by name.
fn order_cycle(
    members: &[usize],
    deps: &[Vec<(usize, bool)>],
    name: &dyn Fn(usize) -> String,
) -> Vec<usize> {
    let mut left: Vec<usize> = members.to_vec();
    left.sort_by_key(|&m| name(m));
    let mut out = Vec::new();
    while !left.is_empty() {
        let score = |m: usize| {
            let unmet = |pre: bool| {
                deps[m]
                    .iter()
                    .filter(|&&(j, p)| p == pre && left.contains(&j))
                    .count()
            };
            (unmet(true), unmet(false))
        };
        let best = left
            .iter()
            .copied()
            .min_by_key(|&m| score(m))
            .unwrap_or(left[0]);
        left.retain(|&m| m != best);
        out.push(best);
    }
    out
}

fn tarjan(deps: &[Vec<(usize, bool)>]) -> Vec<Vec<usize>> {
    struct St<'d> {
        deps: &'d [Vec<(usize, bool)>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    fn visit(st: &mut St<'_>, v: usize) {
        st.index[v] = Some(st.next);
        st.low[v] = st.next;
        st.next += 1;
        st.stack.push(v);
        st.on[v] = true;
        for k in 0..st.deps[v].len() {
            let w = st.deps[v][k].0;
            match st.index[w] {
                None => {
                    visit(st, w);
                    st.low[v] = st.low[v].min(st.low[w]);
                }
                Some(iw) if st.on[w] => st.low[v] = st.low[v].min(iw),
                _ => {}
            }
        }
        if Some(st.low[v]) == st.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = st.stack.pop() {
                st.on[w] = false;
                comp.push(w);
                if w == v {
                    break;
                }
            }
            st.out.push(comp);
        }
    }
    let n = deps.len();
    let mut st = St {
        deps,
        index: vec![None; n],
        low: vec![0; n],
        on: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if st.index[v].is_none() {
            visit(&mut st, v);
        }
    }
    st.out
}
