//! libsolv's `policy_filter_unwanted` (policy.c) for a fresh install: which candidates of an
//! unfulfilled rule remain, and in which order, before the solver takes the first.
//!
//! 1. `prune_to_best_arch`: the image arch drops multilib arches (noarch always stays);
//! 2. `prune_to_best_version`: sorted by package name (`strcmp`), one package per name — the
//!    highest EVR, ties to the earlier repository/pool position; then packages obsoleted by
//!    another candidate of a different name go;
//! 3. (`Choose` only) `dislike_old_versions`: names whose candidate is older than another
//!    package of the same name and arch move to the back, in order;
//!    `sort_by_common_dep`: for every capability that several candidates provide with `=`,
//!    `<=` or `<` a version, candidates providing a lower version than another one collect a
//!    "badness" (one per strictly lower step); a stable sort by badness follows — so among
//!    providers of `cap`, the one providing the highest `cap` version comes first.

use std::cmp::Ordering;

use super::{Lit, sv};
use crate::rpm::{DepFlags, Evr};
use crate::solve::provider::{Filter, Provider};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Choose,
    ChooseNoReorder,
}

pub(crate) fn filter(p: &Provider<'_, '_>, dq: &mut Vec<Lit>, mode: Mode) {
    if dq.len() > 1 {
        best_arch(p, dq);
    }
    if dq.len() > 1 {
        best_version(p, dq);
    }
    if dq.len() > 1 && mode == Mode::Choose {
        dislike_old_versions(p, dq);
        sort_by_common_dep(p, dq);
    }
}

fn solv<'x>(p: &'x Provider<'_, '_>, l: Lit) -> &'x crate::solve::index::Solv<'x> {
    &p.idx.solvs[sv(l) as usize]
}

fn best_arch(p: &Provider<'_, '_>, dq: &mut Vec<Lit>) {
    if dq.iter().any(|&l| solv(p, l).arch_rank == 0) {
        dq.retain(|&l| solv(p, l).arch_rank != 2);
    }
}

fn obsoletes(p: &Provider<'_, '_>, a: Lit, b: Lit) -> bool {
    let (sa, sb) = (solv(p, a), solv(p, b));
    sa.pkg.name != sb.pkg.name
        && sa.pkg.obsoletes.iter().any(|d| {
            d.name == sb.pkg.name && p.matches(sv(b), &Filter::Nevr(d.flags, d.evr.clone()))
        })
}

fn best_version(p: &Provider<'_, '_>, dq: &mut Vec<Lit>) {
    dq.sort_by(|&a, &b| {
        let (sa, sb) = (solv(p, a), solv(p, b));
        sa.pkg
            .name
            .as_bytes()
            .cmp(sb.pkg.name.as_bytes())
            .then_with(|| {
                if sa.arch_rank != 1 && sb.arch_rank != 1 {
                    sa.arch_rank.cmp(&sb.arch_rank)
                } else {
                    Ordering::Equal
                }
            })
            .then(a.cmp(&b))
    });
    let mut out: Vec<Lit> = Vec::with_capacity(dq.len());
    for &l in dq.iter() {
        match out.last_mut() {
            Some(best) if solv(p, *best).pkg.name == solv(p, l).pkg.name => {
                if solv(p, *best).evr < solv(p, l).evr {
                    *best = l;
                }
            }
            _ => out.push(l),
        }
    }
    *dq = out;
    if dq.len() > 1 {
        // prune_obsoleted (mutual obsoletes keep both)
        let keep: Vec<bool> = dq
            .iter()
            .map(|&b| {
                !dq.iter()
                    .any(|&a| a != b && obsoletes(p, a, b) && !obsoletes(p, b, a))
            })
            .collect();
        let mut k = keep.iter();
        dq.retain(|_| *k.next().unwrap_or(&true));
    }
}

fn dislike_old_versions(p: &Provider<'_, '_>, dq: &mut Vec<Lit>) {
    let old = |l: Lit| {
        let s = solv(p, l);
        p.idx.names[s.name].solvables.iter().any(|&q| {
            let o = &p.idx.solvs[q as usize];
            o.pkg.arch == s.pkg.arch && o.evr > s.evr
        })
    };
    let (good, bad): (Vec<Lit>, Vec<Lit>) = dq.iter().partition(|&&l| !old(l));
    *dq = good;
    dq.extend(bad);
}

/// The text libsolv interns for an EVR (`E:V-R`), to spot hash-like versions.
fn evr_text(e: &Evr) -> String {
    e.to_string()
}

fn sort_by_common_dep(p: &Provider<'_, '_>, dq: &mut Vec<Lit>) {
    // (index in dq, capability, version, is `<`)
    let mut ent: Vec<(usize, &str, Evr, bool)> = Vec::new();
    for (i, &l) in dq.iter().enumerate() {
        let s = solv(p, l);
        let mut self_seen = false;
        for d in &s.pkg.provides {
            let Some(evr) = &d.evr else { continue };
            let f = d.flags.sense();
            let lt = f == DepFlags::LESS;
            if f != DepFlags::EQUAL && f != DepFlags::LE && !lt {
                continue;
            }
            if d.name == s.pkg.name && f == DepFlags::EQUAL {
                self_seen = true;
            }
            if f == DepFlags::EQUAL {
                let t = evr_text(evr);
                if t.len() >= 4
                    && t.bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                {
                    continue;
                }
            }
            ent.push((i, d.name.as_str(), evr.clone(), lt));
        }
        if !self_seen {
            ent.push((i, s.pkg.name.as_str(), s.evr.clone(), false));
        }
    }
    if ent.len() < 2 {
        return;
    }
    let cmp = |a: &(usize, &str, Evr, bool), b: &(usize, &str, Evr, bool)| {
        a.1.cmp(b.1).then_with(|| {
            let r = b.2.cmp_ignoring_missing_release(&a.2);
            if r == Ordering::Equal && (a.3 || b.3) && a.3 != b.3 {
                if !b.3 {
                    return Ordering::Greater;
                }
                return Ordering::Less;
            }
            r
        })
    };
    ent.sort_by(cmp);
    let mut badness = vec![0u32; dq.len()];
    let mut bad = 0;
    let mut havebad = false;
    for k in 0..ent.len() {
        if k > 0 && ent[k].1 == ent[k - 1].1 {
            if ent[k].0 != ent[k - 1].0 && cmp(&ent[k - 1], &ent[k]) == Ordering::Less {
                bad += 1;
                havebad = true;
            }
        } else {
            bad = 0;
        }
        badness[ent[k].0] += bad;
    }
    if havebad {
        let mut v: Vec<(u32, Lit)> = badness.into_iter().zip(dq.iter().copied()).collect();
        v.sort_by_key(|&(b, _)| b); // stable
        *dq = v.into_iter().map(|(_, l)| l).collect();
    }
}
