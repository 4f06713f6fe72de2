//! exlist (xCAT `packimage`): which paths of the final tree go into the archive.
//!
//! ```text
//! line := "#INCLUDE:path#"        (relative to the including file; cycles are an error)
//!       | blank | "#" comment     (text from a '#' to the end of a line is a comment)
//!       | ["-"] pattern           exclude: find . ! -path 'pattern'   (AND-ed)
//!       | "+" pattern             re-include: find . -path 'pattern'  (OR-ed)
//! ```
//! Patterns are find(1) `-path` globs relative to the image root and start with `./`; `*`
//! matches `/` too, so `./usr/share/doc*` drops the directory and everything below it, while
//! `./usr/share/doc` drops only the directory entry (find does not prune). A path is kept when
//! no exclude matches it or some re-include matches it — the union of xCAT's two `find`s, but
//! never duplicated. Unlike xCAT, [`Exlist::filter`] also keeps the ancestors of kept entries so
//! their metadata is preserved (xCAT relies on `cpio -d` recreating them with default modes).
//! xCAT's statelite-only built-in excludes (`./.statelite*`, `./.default*`, …) are not added.

use std::collections::HashMap;
use std::path::PathBuf;

use rayon::prelude::*;

use super::ListError;
use super::fnmatch::Pattern;
use super::text::read_expanded;
use crate::spec::{Located, Origin};
use crate::tree::manifest::Manifest;

/// One exlist rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExRule {
    /// `+pattern` (re-include) when true, else an exclude.
    pub include: bool,
    /// The find(1) `-path` pattern, starting with `./`.
    pub pattern: String,
    /// Where the rule is written.
    pub origin: Origin,
}

/// A parsed exlist (all files together).
#[derive(Clone, Debug, Default)]
pub struct Exlist {
    /// Rules in file order (order does not change the result).
    pub rules: Vec<ExRule>,
    /// Every file read (list files and their includes).
    pub files_read: Vec<PathBuf>,
    excludes: Vec<(bool, Pattern)>,
    includes: Vec<(bool, Pattern)>,
}

impl PartialEq for Exlist {
    fn eq(&self, other: &Self) -> bool {
        self.rules == other.rules && self.files_read == other.files_read
    }
}

impl Exlist {
    /// Parse `files`, expanding `#INCLUDE:path#` (no `$VAR` expansion, as xCAT).
    pub fn load(files: &[Located<PathBuf>]) -> Result<Exlist, ListError> {
        let mut files_read = Vec::new();
        let mut rules = Vec::new();
        for file in files {
            for line in read_expanded(file, None, &mut files_read)? {
                let body = line.text.split('#').next().unwrap_or("");
                let t = body.trim();
                if t.is_empty() {
                    continue;
                }
                let col = (body.len() - body.trim_start().len()) as u32 + 1;
                let at = Origin::new(&line.origin.file, line.origin.line, col);
                let (include, pattern) = match t.strip_prefix('+') {
                    Some(p) => (true, p.trim_start()),
                    None => (false, t.strip_prefix('-').unwrap_or(t).trim_start()),
                };
                check_pattern(pattern, &at)?;
                rules.push(ExRule {
                    include,
                    pattern: pattern.to_string(),
                    origin: at,
                });
            }
        }
        Ok(Exlist::from_rules(rules, files_read))
    }

    /// Build an exlist from rules (compiles the patterns).
    pub fn from_rules(rules: Vec<ExRule>, files_read: Vec<PathBuf>) -> Exlist {
        // Patterns are matched against the path without its "./" (stripped from both sides,
        // which is equivalent because "./" is literal); others see the full "./path".
        let pick = |inc: bool| {
            rules
                .iter()
                .filter(|r| r.include == inc)
                .map(|r| match r.pattern.strip_prefix("./") {
                    Some(rest) => (true, Pattern::new(rest)),
                    None => (false, Pattern::new(&r.pattern)),
                })
                .collect::<Vec<_>>()
        };
        Exlist {
            excludes: pick(false),
            includes: pick(true),
            rules,
            files_read,
        }
    }

    /// Is `path` (root-relative, no leading `./` or `/`) kept in the archive?
    pub fn keep(&self, path: &str) -> bool {
        let full = format!("./{path}");
        let hit = |(stripped, pat): &(bool, Pattern)| {
            if *stripped {
                pat.matches(path)
            } else {
                pat.matches(&full)
            }
        };
        !self.excludes.iter().any(hit) || self.includes.iter().any(hit)
    }

    /// The entries of `m` that are kept, plus the ancestors of kept entries; in manifest order,
    /// never duplicated.
    pub fn filter(&self, m: &Manifest) -> Manifest {
        let mut keep: Vec<bool> = m.entries.par_iter().map(|e| self.keep(&e.path)).collect();
        let index: HashMap<&str, usize> = m
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.path.as_str(), i))
            .collect();
        for i in 0..m.entries.len() {
            if !keep[i] {
                continue;
            }
            let mut p = m.entries[i].path.as_str();
            while let Some((parent, _)) = p.rsplit_once('/') {
                if let Some(&j) = index.get(parent) {
                    keep[j] = true;
                }
                p = parent;
            }
        }
        Manifest {
            entries: m
                .entries
                .iter()
                .zip(keep)
                .filter(|(_, k)| *k)
                .map(|(e, _)| e.clone())
                .collect(),
        }
    }
}

fn check_pattern(p: &str, at: &Origin) -> Result<(), ListError> {
    if p.ends_with('/') {
        return Err(ListError::syntax(
            at,
            format!(
                "{p:?} ends with '/', which never matches (find -path sees no trailing '/'); \
                 write {:?} to drop the directory and everything below it",
                format!("{}*", p.trim_end_matches('/'))
            ),
        ));
    }
    if !p.starts_with("./") {
        let fixed = format!("./{}", p.trim_start_matches("./").trim_start_matches('/'));
        return Err(ListError::syntax(
            at,
            format!(
                "{p:?} does not start with \"./\"; exlist patterns are find -path patterns \
                 relative to the image root: write {fixed:?}"
            ),
        ));
    }
    Ok(())
}
