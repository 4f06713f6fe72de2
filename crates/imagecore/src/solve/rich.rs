//! Rich (boolean) dependencies mapped onto resolvo, nested to any depth.
//!
//! - `and` at the top (or under a condition) becomes several requirements;
//! - `or` becomes one union of version sets; an `or` operand that is not a plain capability
//!   (`(a or (b and c))`, `(a or (b if c))`) becomes an *auxiliary solvable*: a pseudo-package
//!   named after the sub-expression, whose only dependencies are that sub-expression's. The
//!   solver may pick it like any provider; it never appears in the answer;
//! - `A if B [else C]` is a requirement on `A` conditioned on `B` (resolvo's conditional
//!   requirements; `B` may itself combine `and`/`or`/`with`/`without`), and `(C or B)`;
//!   `A unless B [else C]` is `(A or B)` and `C` conditioned on `B`. Conditions nest: an `if`
//!   inside the `A` of another `if` gets both conditions (`and`);
//! - `with`/`without` select packages of one name that satisfy (or not) every operand, which
//!   must be plain capabilities (rpm allows nothing else there either).

use resolvo::{
    Condition, ConditionId, ConditionalRequirement, LogicalOperator, Requirement, VersionSetId,
};

use super::provider::{Filter, Provider};
use crate::rpm::{Dep, RichDep};

/// `(a or (b and c))` as rpm writes it.
pub(crate) fn render(r: &RichDep) -> String {
    fn atom(name: &str, flags: crate::rpm::DepFlags, evr: &Option<crate::rpm::Evr>) -> String {
        match evr {
            Some(e) if !flags.is_any() => format!("{name} {} {e}", flags.op()),
            _ => name.to_string(),
        }
    }
    let join = |v: &[RichDep], op: &str| {
        let parts: Vec<String> = v.iter().map(render).collect();
        format!("({})", parts.join(&format!(" {op} ")))
    };
    let cond = |a: &RichDep, op: &str, b: &RichDep, c: &Option<Box<RichDep>>| match c {
        Some(c) => format!("({} {op} {} else {})", render(a), render(b), render(c)),
        None => format!("({} {op} {})", render(a), render(b)),
    };
    match r {
        RichDep::Atom { name, flags, evr } => atom(name, *flags, evr),
        RichDep::And(v) => join(v, "and"),
        RichDep::Or(v) => join(v, "or"),
        RichDep::With(v) => join(v, "with"),
        RichDep::If(a, b, c) => cond(a, "if", b, c),
        RichDep::Unless(a, b, c) => cond(a, "unless", b, c),
        RichDep::Without(a, b) => format!("({} without {})", render(a), render(b)),
    }
}

/// A filter for one atom of a `with`/`without` expression.
fn atom_filter(r: &RichDep) -> Result<Filter, String> {
    match r {
        RichDep::Atom { name, flags, evr } => Ok(Filter::Cap(name.clone(), *flags, evr.clone())),
        _ => Err(format!(
            "with/without operands must be simple capabilities, not {}",
            render(r)
        )),
    }
}

impl Provider<'_, '_> {
    /// Version sets whose union is an `or`-able term (atom, `with`, `without`, nested `or`;
    /// anything else through an auxiliary solvable).
    pub(crate) fn term_sets(&self, r: &RichDep) -> Result<Vec<VersionSetId>, String> {
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
                        (parts.first(), Filter::With(fs?))
                    }
                    RichDep::Without(a, b) => (
                        Some(a.as_ref()),
                        Filter::Without(Box::new(atom_filter(a)?), Box::new(atom_filter(b)?)),
                    ),
                    _ => return Err("internal: with/without expected".into()),
                };
                let Some(RichDep::Atom { name, .. }) = first else {
                    return Err("empty with expression".into());
                };
                let display = render(r);
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
            RichDep::And(_) | RichDep::If(..) | RichDep::Unless(..) => Ok(vec![self.aux_set(r)]),
        }
    }

    /// A condition that holds when `r` holds among the installed packages.
    fn cond_tree(&self, r: &RichDep) -> Result<ConditionId, String> {
        let fold = |parts: &[RichDep], op: LogicalOperator| -> Result<ConditionId, String> {
            let mut it = parts.iter();
            let first = it.next().ok_or("empty rich expression")?;
            let mut c = self.cond_tree(first)?;
            for p in it {
                let n = self.cond_tree(p)?;
                c = self.condition(Condition::Binary(op, c, n));
            }
            Ok(c)
        };
        match r {
            RichDep::Atom { .. } | RichDep::With(_) | RichDep::Without(..) => {
                Ok(self.cond_of(&self.term_sets(r)?))
            }
            RichDep::Or(parts) => fold(parts, LogicalOperator::Or),
            RichDep::And(parts) => fold(parts, LogicalOperator::And),
            RichDep::If(..) | RichDep::Unless(..) => Err(format!(
                "if/unless inside the condition of a rich dependency ({}) is not supported",
                render(r)
            )),
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

    fn and(&self, a: Option<ConditionId>, b: ConditionId) -> ConditionId {
        match a {
            None => b,
            Some(a) => self.condition(Condition::Binary(LogicalOperator::And, a, b)),
        }
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
            Some(r) => self.rich_requirements(r, None, out),
        }
    }

    /// Requirements for `r`, active only when `cond` holds (always when `None`).
    pub(crate) fn rich_requirements(
        &self,
        r: &RichDep,
        cond: Option<ConditionId>,
        out: &mut Vec<ConditionalRequirement>,
    ) -> Result<(), String> {
        let push = |req: Requirement, out: &mut Vec<ConditionalRequirement>| match cond {
            None => out.push(req.into()),
            Some(c) => out.push(req.with_condition(c)),
        };
        match r {
            RichDep::And(parts) => parts
                .iter()
                .try_for_each(|p| self.rich_requirements(p, cond, out)),
            RichDep::If(then, c, otherwise) => {
                // `A if B` ⇔ B → A; `else C` adds ¬B → C ⇔ (C or B).
                let cc = self.cond_tree(c)?;
                self.rich_requirements(then, Some(self.and(cond, cc)), out)?;
                if let Some(o) = otherwise {
                    let mut sets = self.term_sets(o)?;
                    sets.extend(self.term_sets(c)?);
                    push(self.union(sets), out);
                }
                Ok(())
            }
            RichDep::Unless(then, c, otherwise) => {
                // `A unless B` ⇔ ¬B → A ⇔ (A or B); `else C` adds B → C.
                let mut sets = self.term_sets(then)?;
                sets.extend(self.term_sets(c)?);
                push(self.union(sets), out);
                if let Some(o) = otherwise {
                    let cc = self.cond_tree(c)?;
                    self.rich_requirements(o, Some(self.and(cond, cc)), out)?;
                }
                Ok(())
            }
            other => {
                let sets = self.term_sets(other)?;
                push(self.union(sets), out);
                Ok(())
            }
        }
    }
}
