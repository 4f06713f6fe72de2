//! rpm boolean ("rich") dependencies: `(A and B)`, `(A or B)`, `(A if B [else C])`,
//! `(A unless B [else C])`, `(A with B)`, `(A without B)`, nested with parentheses.

use serde::{Deserialize, Serialize};

use super::evr::{DepFlags, Evr};

/// A parsed boolean dependency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RichDep {
    /// A plain capability with an optional version constraint.
    Atom {
        /// Capability name.
        name: String,
        /// Comparison.
        flags: DepFlags,
        /// Version, when constrained.
        evr: Option<Evr>,
    },
    /// All must hold.
    And(Vec<RichDep>),
    /// One must hold.
    Or(Vec<RichDep>),
    /// `then if cond else otherwise`.
    If(Box<RichDep>, Box<RichDep>, Option<Box<RichDep>>),
    /// `then unless cond else otherwise`.
    Unless(Box<RichDep>, Box<RichDep>, Option<Box<RichDep>>),
    /// One package must satisfy every part.
    With(Vec<RichDep>),
    /// One package must satisfy the first and not the second.
    Without(Box<RichDep>, Box<RichDep>),
}

impl RichDep {
    /// Parse a rich dependency string (must start with `(`). Errors name the problem.
    pub fn parse(s: &str) -> Result<RichDep, String> {
        let toks = tokenize(s);
        let mut pos = 0;
        let dep = parse_group(&toks, &mut pos)?;
        if pos != toks.len() {
            return Err(format!("trailing text after rich dependency in {s:?}"));
        }
        Ok(dep)
    }
}

fn tokenize(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth_in_name = 0usize;
    for c in s.chars() {
        match c {
            // Parentheses inside a name such as `perl(Foo::Bar)` belong to the name.
            '(' if !cur.is_empty() => {
                depth_in_name += 1;
                cur.push(c);
            }
            ')' if depth_in_name > 0 => {
                depth_in_name -= 1;
                cur.push(c);
            }
            '(' | ')' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                out.push(c.to_string());
            }
            c if c.is_whitespace() && depth_in_name == 0 => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

const OPS: [&str; 7] = ["and", "or", "if", "unless", "with", "without", "else"];

fn parse_group(t: &[String], pos: &mut usize) -> Result<RichDep, String> {
    if t.get(*pos).map(String::as_str) != Some("(") {
        return Err("rich dependency must start with '('".into());
    }
    *pos += 1;
    let first = parse_term(t, pos)?;
    let mut op: Option<String> = None;
    let mut parts = vec![first];
    let mut else_part = None;
    loop {
        match t.get(*pos).map(String::as_str) {
            Some(")") => {
                *pos += 1;
                break;
            }
            Some(o) if OPS.contains(&o) => {
                let o = o.to_string();
                *pos += 1;
                let term = parse_term(t, pos)?;
                if o == "else" {
                    if !matches!(op.as_deref(), Some("if") | Some("unless"))
                        || parts.len() != 2
                        || else_part.is_some()
                    {
                        return Err("'else' only follows 'if' or 'unless'".into());
                    }
                    else_part = Some(Box::new(term));
                    continue;
                }
                match &op {
                    None => op = Some(o),
                    Some(prev) if *prev == o && matches!(o.as_str(), "and" | "or" | "with") => {}
                    Some(prev) => {
                        return Err(format!("cannot mix '{prev}' and '{o}' without parentheses"));
                    }
                }
                parts.push(term);
            }
            Some(other) => return Err(format!("expected an operator, found {other:?}")),
            None => return Err("unbalanced parentheses".into()),
        }
    }
    let mut it = parts.into_iter();
    Ok(match op.as_deref() {
        None => it.next().ok_or("empty group")?,
        Some("and") => RichDep::And(it.collect()),
        Some("or") => RichDep::Or(it.collect()),
        Some("with") => RichDep::With(it.collect()),
        Some(o) => {
            let a = Box::new(it.next().ok_or("missing operand")?);
            let b = Box::new(it.next().ok_or("missing operand")?);
            match o {
                "if" => RichDep::If(a, b, else_part),
                "unless" => RichDep::Unless(a, b, else_part),
                _ => RichDep::Without(a, b),
            }
        }
    })
}

fn parse_term(t: &[String], pos: &mut usize) -> Result<RichDep, String> {
    match t.get(*pos).map(String::as_str) {
        Some("(") => parse_group(t, pos),
        Some(")") | None => Err("missing operand".into()),
        Some(name) => {
            let name = name.to_string();
            *pos += 1;
            if let Some(flags) = t.get(*pos).and_then(|o| DepFlags::from_op(o)) {
                let evr = t.get(*pos + 1).ok_or("missing version after operator")?;
                *pos += 2;
                Ok(RichDep::Atom {
                    name,
                    flags,
                    evr: Some(Evr::parse(evr)),
                })
            } else {
                Ok(RichDep::Atom {
                    name,
                    flags: DepFlags::ANY,
                    evr: None,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn atom(n: &str) -> RichDep {
        RichDep::Atom {
            name: n.into(),
            flags: DepFlags::ANY,
            evr: None,
        }
    }

    #[test]
    fn parses_operators() {
        assert_eq!(
            RichDep::parse("(a or b)").unwrap(),
            RichDep::Or(vec![atom("a"), atom("b")])
        );
        assert_eq!(
            RichDep::parse("(a if b else c)").unwrap(),
            RichDep::If(
                Box::new(atom("a")),
                Box::new(atom("b")),
                Some(Box::new(atom("c")))
            )
        );
        let w = RichDep::parse("(mini-lib >= 2.0 with mini-lib < 3.0)").unwrap();
        let RichDep::With(parts) = w else { panic!() };
        assert_eq!(parts.len(), 2);
        let n = RichDep::parse("(perl(Foo::Bar) and (x or y))").unwrap();
        assert_eq!(
            n,
            RichDep::And(vec![
                atom("perl(Foo::Bar)"),
                RichDep::Or(vec![atom("x"), atom("y")])
            ])
        );
        assert!(RichDep::parse("(a or b and c)").is_err());
        assert!(RichDep::parse("(a or").is_err());
    }
}
