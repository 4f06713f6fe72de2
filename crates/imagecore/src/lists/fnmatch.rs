//! Shell pattern matching as glibc `fnmatch(3)` does it, which is what find(1) `-path` uses
//! (flags 0): `*` and `?` also match `/`, a leading `.` is not special, `[...]` brackets with
//! `!`/`^` negation, ranges and `[:class:]`, `\` escapes the next character, an unclosed `[`
//! is a literal, and a trailing lone `\` never matches.
//!
//! [`Pattern::with_pathname`] gives shell-glob semantics instead (`*`, `?` and brackets do not
//! match `/`, and a leading `.` in a name must be matched explicitly); synclist sources use it.

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Lit(char),
    Any,
    Star,
    Class {
        negated: bool,
        items: Vec<Item>,
    },
    /// A trailing lone backslash: matches nothing.
    Never,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Item {
    Char(char),
    Range(char, char),
    Named(String),
}

/// A compiled shell pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    toks: Vec<Tok>,
    pathname: bool,
    /// The literal characters before the first wildcard, and how many tokens they are.
    prefix: String,
    prefix_toks: usize,
}

impl Pattern {
    /// Compile `pat` with find(1) `-path` semantics (`fnmatch(pat, s, 0)`).
    pub fn new(pat: &str) -> Pattern {
        Pattern::build(pat, false)
    }

    /// Compile `pat` to match one path component the way the shell globs file names
    /// (`FNM_PATHNAME | FNM_PERIOD`).
    pub fn with_pathname(pat: &str) -> Pattern {
        Pattern::build(pat, true)
    }

    fn build(pat: &str, pathname: bool) -> Pattern {
        let toks = compile(pat);
        let prefix: String = toks
            .iter()
            .map_while(|t| match t {
                Tok::Lit(c) => Some(*c),
                _ => None,
            })
            .collect();
        Pattern {
            prefix_toks: prefix.chars().count(),
            prefix,
            toks,
            pathname,
        }
    }

    /// True if `pat` has any wildcard (`*`, `?`, or a bracket expression).
    pub fn has_wildcards(pat: &str) -> bool {
        compile(pat)
            .iter()
            .any(|t| matches!(t, Tok::Any | Tok::Star | Tok::Class { .. }))
    }

    /// Does the whole of `s` match?
    pub fn matches(&self, s: &str) -> bool {
        if self.pathname && s.starts_with('.') && !matches!(self.toks.first(), Some(Tok::Lit('.')))
        {
            return false;
        }
        // Fast path: the literal prefix of the pattern must be a prefix of `s`.
        let Some(rest) = s.strip_prefix(self.prefix.as_str()) else {
            return false;
        };
        let toks = &self.toks[self.prefix_toks..];
        let s = rest;
        let (mut ti, mut si) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while let Some(c) = s[si..].chars().next() {
            let step = match toks.get(ti) {
                Some(Tok::Star) => {
                    star = Some((ti, si));
                    ti += 1;
                    continue;
                }
                Some(Tok::Lit(l)) => *l == c,
                Some(Tok::Any) => !(self.pathname && c == '/'),
                Some(Tok::Class { negated, items }) => {
                    !(self.pathname && c == '/')
                        && (items.iter().any(|i| item_matches(i, c)) != *negated)
                }
                Some(Tok::Never) | None => false,
            };
            if step {
                ti += 1;
                si += c.len_utf8();
            } else if let Some((sti, ssi)) = star {
                let Some(skipped) = s[ssi..].chars().next() else {
                    return false;
                };
                if self.pathname && skipped == '/' {
                    return false;
                }
                ti = sti + 1;
                si = ssi + skipped.len_utf8();
                star = Some((sti, si));
            } else {
                return false;
            }
        }
        toks[ti..].iter().all(|t| matches!(t, Tok::Star))
    }
}

fn item_matches(item: &Item, c: char) -> bool {
    match item {
        Item::Char(x) => *x == c,
        Item::Range(a, b) => *a <= c && c <= *b,
        Item::Named(n) => match n.as_str() {
            "alpha" => c.is_alphabetic(),
            "digit" => c.is_ascii_digit(),
            "alnum" => c.is_alphanumeric(),
            "upper" => c.is_uppercase(),
            "lower" => c.is_lowercase(),
            "space" => c.is_whitespace(),
            "blank" => c == ' ' || c == '\t',
            "punct" => c.is_ascii_punctuation(),
            "xdigit" => c.is_ascii_hexdigit(),
            "cntrl" => c.is_control(),
            "print" => !c.is_control(),
            "graph" => !c.is_control() && !c.is_whitespace(),
            _ => false,
        },
    }
}

fn compile(pat: &str) -> Vec<Tok> {
    let p: Vec<char> = pat.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '*' => {
                if toks.last() != Some(&Tok::Star) {
                    toks.push(Tok::Star);
                }
                i += 1;
            }
            '?' => {
                toks.push(Tok::Any);
                i += 1;
            }
            '\\' => {
                match p.get(i + 1) {
                    Some(c) => toks.push(Tok::Lit(*c)),
                    None => toks.push(Tok::Never),
                }
                i += 2;
            }
            '[' => match parse_class(&p, i) {
                Some((tok, next)) => {
                    toks.push(tok);
                    i = next;
                }
                None => {
                    toks.push(Tok::Lit('['));
                    i += 1;
                }
            },
            c => {
                toks.push(Tok::Lit(c));
                i += 1;
            }
        }
    }
    toks
}

/// Parse a bracket expression starting at `p[start] == '['`; `None` if it is not closed.
fn parse_class(p: &[char], start: usize) -> Option<(Tok, usize)> {
    let mut i = start + 1;
    let negated = matches!(p.get(i), Some('!') | Some('^'));
    if negated {
        i += 1;
    }
    let mut items = Vec::new();
    let mut first = true;
    loop {
        let c = *p.get(i)?;
        if c == ']' && !first {
            return Some((Tok::Class { negated, items }, i + 1));
        }
        first = false;
        // [:class:]
        if c == '['
            && p.get(i + 1) == Some(&':')
            && let Some(end) =
                (i + 2..p.len().saturating_sub(1)).find(|&j| p[j] == ':' && p[j + 1] == ']')
        {
            items.push(Item::Named(p[i + 2..end].iter().collect()));
            i = end + 2;
            continue;
        }
        let lo = if c == '\\' {
            i += 1;
            *p.get(i)?
        } else {
            c
        };
        i += 1;
        if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|&n| n != ']') {
            let mut hi = p[i + 1];
            i += 2;
            if hi == '\\' {
                hi = *p.get(i)?;
                i += 1;
            }
            items.push(Item::Range(lo, hi));
        } else {
            items.push(Item::Char(lo));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Pattern;

    fn m(p: &str, s: &str) -> bool {
        Pattern::new(p).matches(s)
    }

    #[test]
    fn find_path_semantics() {
        assert!(m("./usr/share/doc*", "./usr/share/doc"));
        assert!(m("./usr/share/doc*", "./usr/share/doc/a/b"));
        assert!(m("./usr/*/b", "./usr/x/y/b"));
        assert!(m("./a?b", "./a/b"));
        assert!(!m("./usr/share/doc", "./usr/share/doc/x"));
        assert!(m("./[a-c]x", "./bx"));
        assert!(!m("./[!a-c]x", "./bx"));
        assert!(m("./[^a-c]x", "./dx"));
        assert!(m("./[]]x", "./]x"));
        assert!(m("./[x", "./[x"));
        assert!(m("./\\*", "./*"));
        assert!(!m("./\\*", "./a"));
        assert!(!m("./a\\", "./a\\"));
        assert!(m("./[[:digit:]]*", "./9lives"));
        assert!(m("*", ""));
        assert!(m("./.hidden*", "./.hidden/x"));
        assert!(m("**a*b", "xxaxxb"));
    }

    #[test]
    fn pathname_semantics() {
        let p = Pattern::with_pathname("*.conf");
        assert!(p.matches("a.conf"));
        assert!(!p.matches(".a.conf"));
        assert!(!p.matches("x/a.conf"));
        assert!(Pattern::with_pathname(".*").matches(".a"));
        assert!(Pattern::has_wildcards("a[bc]"));
        assert!(!Pattern::has_wildcards("a\\*b"));
    }
}
