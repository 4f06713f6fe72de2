//! The CDCL loop of libsolv's `solver_run_sat` (fresh install, no weak dependencies):
//! assertions, job rules, the rule loop with postponing, propagation over watched literals,
//! first-UIP learning and backjumping, and the final minimisation over branches.

use super::policy::{Mode, filter};
use super::{Lit, Rule, Rules, SYSTEM, id, sv};
use crate::solve::provider::Provider;

/// A choice among several candidates: `alts[k] < 0` was taken (or already retried).
struct Branch {
    alts: Vec<Lit>,
    level: i32,
}

/// Where a watch list link lives: the list head of a literal, or a rule's `n1`/`n2`.
#[derive(Clone, Copy)]
enum Slot {
    Head(Lit),
    N1(u32),
    N2(u32),
}

pub(crate) struct Engine<'p, 'i, 'a> {
    pub p: &'p Provider<'i, 'a>,
    r: Rules,
    nsolv: i32,
    /// `> 0`: installed at that level; `< 0`: excluded at that level.
    dm: Vec<i32>,
    dq: Vec<Lit>,
    why: Vec<i32>,
    pi: usize,
    watches: Vec<u32>,
    branches: Vec<Branch>,
    /// Safety valve: decisions and conflicts before giving up (resolvo answers then).
    budget: u64,
    tmp: Vec<Lit>,
}

impl<'p, 'i, 'a> Engine<'p, 'i, 'a> {
    pub fn new(p: &'p Provider<'i, 'a>, r: Rules) -> Self {
        let nsolv = p.idx.solvs.len() as i32 + 2;
        let mut e = Engine {
            p,
            r,
            nsolv,
            dm: vec![0; nsolv as usize],
            dq: Vec::new(),
            why: Vec::new(),
            pi: 0,
            watches: vec![0; 2 * nsolv as usize + 1],
            branches: Vec::new(),
            budget: 2_000_000,
            tmp: Vec::new(),
        };
        // makewatches: from the last rule to the first, so each list is in rule order
        for i in (1..e.r.rules.len()).rev() {
            let r = e.r.rules[i];
            if r.w2 == 0 {
                continue;
            }
            let (k1, k2) = (e.w(r.w1), e.w(r.w2));
            e.r.rules[i].n1 = e.watches[k1];
            e.watches[k1] = i as u32;
            e.r.rules[i].n2 = e.watches[k2];
            e.watches[k2] = i as u32;
        }
        e
    }

    fn w(&self, l: Lit) -> usize {
        (l + self.nsolv) as usize
    }
    fn is_true(&self, l: Lit) -> bool {
        if l > 0 {
            self.dm[l as usize] > 0
        } else {
            self.dm[(-l) as usize] < 0
        }
    }
    fn is_false(&self, l: Lit) -> bool {
        if l > 0 {
            self.dm[l as usize] < 0
        } else {
            self.dm[(-l) as usize] > 0
        }
    }
    fn decide(&mut self, l: Lit, level: i32, why: i32) {
        self.dm[l.unsigned_abs() as usize] = if l > 0 { level } else { -level };
        self.dq.push(l);
        self.why.push(why);
    }
    fn get_slot(&self, s: Slot) -> u32 {
        match s {
            Slot::Head(l) => self.watches[self.w(l)],
            Slot::N1(r) => self.r.rules[r as usize].n1,
            Slot::N2(r) => self.r.rules[r as usize].n2,
        }
    }
    fn set_slot(&mut self, s: Slot, v: u32) {
        match s {
            Slot::Head(l) => {
                let k = self.w(l);
                self.watches[k] = v;
            }
            Slot::N1(r) => self.r.rules[r as usize].n1 = v,
            Slot::N2(r) => self.r.rules[r as usize].n2 = v,
        }
    }

    /// libsolv's `propagate`: `Some(rule)` on a conflict.
    fn propagate(&mut self, level: i32) -> Option<usize> {
        while self.pi < self.dq.len() {
            let pkg = -self.dq[self.pi];
            self.pi += 1;
            let mut slot = Slot::Head(pkg);
            loop {
                let ri = self.get_slot(slot);
                if ri == 0 {
                    break;
                }
                let r: Rule = self.r.rules[ri as usize];
                let (other, next_slot) = if pkg == r.w1 {
                    (r.w2, Slot::N1(ri))
                } else {
                    (r.w1, Slot::N2(ri))
                };
                if self.is_true(other) {
                    slot = next_slot;
                    continue;
                }
                if r.d != 0 {
                    let mut np = 0;
                    if r.p != 0 && r.p != other && !self.is_false(r.p) {
                        np = r.p;
                    } else {
                        let mut k = r.d as usize;
                        while self.r.wp[k] != 0 {
                            let q = self.r.wp[k];
                            if q != other && !self.is_false(q) {
                                np = q;
                                break;
                            }
                            k += 1;
                        }
                    }
                    if np != 0 {
                        // unlink from this list, link into np's
                        let next = self.get_slot(next_slot);
                        self.set_slot(slot, next);
                        let head = self.watches[self.w(np)];
                        let rr = &mut self.r.rules[ri as usize];
                        if pkg == rr.w1 {
                            rr.w1 = np;
                            rr.n1 = head;
                        } else {
                            rr.w2 = np;
                            rr.n2 = head;
                        }
                        let k = self.w(np);
                        self.watches[k] = ri;
                        continue;
                    }
                }
                if self.is_false(other) {
                    return Some(ri as usize);
                }
                self.decide(other, level, ri as i32);
                slot = next_slot;
            }
        }
        None
    }

    /// libsolv's `revert`; returns the `why` of the first reverted decision.
    fn revert(&mut self, level: i32) -> Option<i32> {
        let mut first = None;
        while let Some(&v) = self.dq.last() {
            let vv = v.unsigned_abs() as usize;
            if self.dm[vv].abs() <= level {
                break;
            }
            self.dm[vv] = 0;
            self.dq.pop();
            first = self.why.pop();
            self.pi = self.dq.len();
        }
        while self.branches.last().is_some_and(|b| b.level >= level) {
            self.branches.pop();
        }
        first
    }

    /// First-UIP conflict analysis; returns (backjump level, learnt rule).
    fn analyze(&mut self, level: i32, mut c: usize) -> (i32, usize) {
        let mut seen = vec![false; self.nsolv as usize];
        let mut q: Vec<Lit> = Vec::new();
        let mut rlevel = 1;
        let mut num = 0;
        let mut idx = self.dq.len();
        let mut lits = std::mem::take(&mut self.tmp);
        let p;
        loop {
            self.r.lits(c, &mut lits);
            for &v in &lits {
                if self.is_true(v) {
                    continue;
                }
                let vv = v.unsigned_abs() as usize;
                if seen[vv] {
                    continue;
                }
                seen[vv] = true;
                let l = self.dm[vv].abs();
                if l == 1 {
                    continue;
                } else if l == level {
                    num += 1;
                } else {
                    q.push(v);
                    rlevel = rlevel.max(l);
                }
            }
            let v = loop {
                idx -= 1;
                let v = self.dq[idx];
                if seen[v.unsigned_abs() as usize] {
                    break v;
                }
            };
            seen[v.unsigned_abs() as usize] = false;
            num -= 1;
            if num == 0 {
                p = -v;
                break;
            }
            let why = self.why[idx];
            if why <= 0 {
                // cannot happen for a current-level literal other than the decision
                p = -v;
                break;
            }
            c = why as usize;
        }
        self.tmp = lits;
        self.revert(rlevel);
        let ri = self.r.rules.len();
        match q.len() {
            0 => self.r.rules.push(Rule {
                p,
                w1: p,
                ..Rule::default()
            }),
            1 => {
                self.r.rules.push(Rule {
                    p,
                    d: 0,
                    w1: p,
                    w2: q[0],
                    n1: 0,
                    n2: 0,
                });
            }
            _ => {
                let d = self.r.intern(&q);
                // watch2onhighest
                let mut w2 = q[0];
                let mut wl = 0;
                for &v in &q {
                    let l = self.dm[v.unsigned_abs() as usize].abs();
                    if l > wl {
                        w2 = v;
                        wl = l;
                    }
                }
                self.r.rules.push(Rule {
                    p,
                    d,
                    w1: p,
                    w2,
                    n1: 0,
                    n2: 0,
                });
            }
        }
        if !q.is_empty() {
            let r = self.r.rules[ri];
            self.r.rules[ri].n1 = self.watches[self.w(r.w1)];
            let k = self.w(r.w1);
            self.watches[k] = ri as u32;
            self.r.rules[ri].n2 = self.watches[self.w(r.w2)];
            let k = self.w(r.w2);
            self.watches[k] = ri as u32;
        }
        (rlevel, ri)
    }

    /// `setpropagatelearn`: `None` when unsolvable (a conflict at level 1).
    fn set_propagate_learn(&mut self, mut level: i32, decision: Lit, ruleid: usize) -> Option<i32> {
        level += 1;
        self.decide(decision, level, -(ruleid as i32));
        loop {
            self.budget = self.budget.checked_sub(1)?;
            let Some(c) = self.propagate(level) else {
                return Some(level);
            };
            if level == 1 {
                return None;
            }
            let (nl, lr) = self.analyze(level, c);
            level = nl;
            let d = self.r.rules[lr].p;
            self.decide(d, level, lr as i32);
        }
    }

    fn select_and_install(&mut self, level: i32, dq: &mut Vec<Lit>, ruleid: usize) -> Option<i32> {
        if dq.len() > 1 {
            filter(self.p, dq, Mode::Choose);
        }
        if dq.len() > 1 {
            let mut alts = dq.clone();
            alts[0] = -alts[0];
            self.branches.push(Branch { alts, level });
        }
        self.set_propagate_learn(level, dq[0], ruleid)
    }

    fn resolve_jobrules(&mut self, mut level: i32) -> Option<i32> {
        let oldlevel = level;
        let (start, end) = self.r.jobrules;
        let mut i = start;
        let mut lits = Vec::new();
        while i < end {
            self.r.lits(i, &mut lits);
            let mut dq = Vec::new();
            let mut done = false;
            for &l in &lits {
                if l < 0 {
                    if self.dm[(-l) as usize] <= 0 {
                        done = true;
                        break;
                    }
                } else {
                    if self.dm[l as usize] > 0 {
                        done = true;
                        break;
                    }
                    if self.dm[l as usize] == 0 {
                        dq.push(l);
                    }
                }
            }
            if done || dq.is_empty() {
                i += 1;
                continue;
            }
            let olevel = level;
            level = self.select_and_install(level, &mut dq, i)?;
            if level <= olevel {
                if level == olevel {
                    continue;
                }
                if level < oldlevel {
                    return Some(level);
                }
                i = start;
                continue;
            }
            i += 1;
        }
        Some(level)
    }

    /// The rule loop ("deciding unresolved rules"); `Some(true)` when it ran into trouble
    /// (backjumped below `systemlevel`).
    fn resolve_rules(&mut self, level: &mut i32, systemlevel: i32) -> Option<bool> {
        let mut postponed: i64 = 0;
        let (mut i, mut n) = (1usize, 1usize);
        let mut lits = Vec::new();
        loop {
            let nr = self.r.rules.len();
            if n >= nr {
                if postponed <= 0 {
                    return Some(false);
                }
                i = postponed as usize;
                postponed = -1;
                n = 1;
            }
            if i >= nr {
                i = 1;
            }
            let r = self.r.rules[i];
            let mut dq: Vec<Lit> = Vec::new();
            let mut skip = false;
            if r.p < 0 && (r.d == 0 || self.dm[(-r.p) as usize] <= 0) {
                skip = true;
            } else if r.d == 0 {
                if r.w2 <= 0
                    || self.dm[r.p.unsigned_abs() as usize] != 0
                    || self.dm[r.w2 as usize] != 0
                {
                    skip = true;
                } else {
                    dq.push(r.p);
                    dq.push(r.w2);
                }
            } else {
                if r.p >= 0 {
                    if self.dm[r.p as usize] > 0 {
                        skip = true;
                    } else if self.dm[r.p as usize] == 0 {
                        dq.push(r.p);
                    }
                }
                if !skip {
                    self.r.lits(i, &mut lits);
                    for &q in &lits[1..] {
                        if q < 0 {
                            if self.dm[(-q) as usize] <= 0 {
                                skip = true;
                                break;
                            }
                        } else {
                            if self.dm[q as usize] > 0 {
                                skip = true;
                                break;
                            }
                            if self.dm[q as usize] == 0 {
                                dq.push(q);
                            }
                        }
                    }
                }
            }
            if !skip && dq.len() < 2 {
                // a unit rule left undecided would be a propagation bug: give up
                return None;
            }
            if !skip && postponed >= 0 {
                filter(self.p, &mut dq, Mode::ChooseNoReorder);
                if dq.len() > 1 {
                    if postponed == 0 {
                        postponed = i as i64;
                    }
                    skip = true;
                }
            }
            if !skip {
                *level = self.select_and_install(*level, &mut dq, i)?;
                if *level < systemlevel {
                    return Some(true);
                }
                n = 0;
            }
            i += 1;
            n += 1;
        }
    }

    /// `solver_run_sat` for our case. `None`: unsolvable or out of budget.
    pub fn run(&mut self) -> Option<()> {
        // makeruledecisions
        self.decide(SYSTEM, 1, 0);
        for ri in 1..self.r.rules.len() {
            let r = self.r.rules[ri];
            if r.w2 != 0 || r.p == 0 {
                continue;
            }
            let vv = r.p.unsigned_abs() as usize;
            if self.dm[vv] == 0 {
                self.decide(r.p, 1, ri as i32);
            } else if (self.dm[vv] > 0) != (r.p > 0) {
                return None;
            }
        }
        if self.propagate(1).is_some() {
            return None;
        }
        let mut level = 1;
        let mut systemlevel = 2;
        loop {
            self.budget = self.budget.checked_sub(1)?;
            if level < systemlevel {
                let olevel = level;
                level = self.resolve_jobrules(level)?;
                if level < olevel {
                    continue;
                }
                systemlevel = level + 1;
            }
            if level < systemlevel {
                systemlevel = level;
            }
            if self.resolve_rules(&mut level, systemlevel)? {
                continue;
            }
            // minimisation: the earliest branch one of whose other candidates got installed
            let mut take = None;
            for bi in (0..self.branches.len()).rev() {
                let b = &self.branches[bi];
                if let Some(k) = b
                    .alts
                    .iter()
                    .position(|&q| q > 0 && self.dm[q as usize] > b.level)
                {
                    take = Some((bi, k));
                }
            }
            let Some((bi, k)) = take else {
                return Some(());
            };
            let l = self.branches[bi].level;
            let q = self.branches[bi].alts[k];
            self.branches[bi].alts[k] = -q;
            self.branches[bi].level = 0;
            let why = self.revert(l);
            self.branches[bi].level = l;
            let ruleid = why.map_or(0, |w| (-w).max(0) as usize);
            level = self.set_propagate_learn(l, q, ruleid)?;
        }
    }

    /// The installed packages (our solvable indices, ascending).
    pub fn installed(&self) -> Vec<u32> {
        (2..self.nsolv)
            .filter(|&l| self.dm[l as usize] > 0)
            .map(sv)
            .collect()
    }

    /// Every rule holds for the installed set (undecided counts as not installed).
    pub fn check(&self, sol: &[u32]) -> bool {
        let mut inst = vec![false; self.nsolv as usize];
        inst[SYSTEM as usize] = true;
        for &s in sol {
            inst[id(s) as usize] = true;
        }
        let holds = |l: Lit| {
            if l > 0 {
                inst[l as usize]
            } else {
                !inst[(-l) as usize]
            }
        };
        let mut lits = Vec::new();
        (1..self.r.jobrules.1).all(|i| {
            self.r.lits(i, &mut lits);
            lits.iter().any(|&l| holds(l))
        })
    }
}
