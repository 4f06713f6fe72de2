//! pkglist / otherpkgs.pkglist (xCAT `imgutils::get_package_names`), bugs fixed.
//!
//! ```text
//! line := blank | "#" comment | "#INCLUDE:path#" | "#NEW_INSTALL_LIST#" | "#ENV:K=V ...#"
//!       | "--" name…   (post-install removal)   | "-" name…  (pre-install removal)
//!       | [subdir "/"] name…                    (install; name may be "@group" or "@module:stream")
//! ```
//! Leading and trailing whitespace is ignored (so indented `-pkg` is a removal), text from a `#`
//! inside an entry line is a comment, several whitespace-separated names on one line are
//! several entries (as xCAT's shell would split them), and a comma is an error, never a
//! separator. Passes: each file of the list starts at pass 1, `#NEW_INSTALL_LIST#` starts the
//! next pass, and same-numbered passes of several files merge (as xCAT).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::ListError;
use super::text::{Line, read_expanded};
use crate::spec::{Located, Origin};

/// A parsed pkglist: the install passes of all its files, merged by pass number.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pkglist {
    /// Pass 1 first. Never empty after [`Pkglist::load`] of at least one file.
    pub passes: Vec<PkgPass>,
    /// Every file read (list files and their includes), in first-read order.
    pub files_read: Vec<PathBuf>,
}

/// One install pass (xCAT: one `yum`/`dnf` transaction).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PkgPass {
    /// `#ENV:K=V#` assignments for this pass, in order.
    pub env: Vec<(String, String)>,
    /// Packages and groups to install.
    pub install: Vec<PkgEntry>,
    /// `-pkg`: remove before installing this pass.
    pub pre_remove: Vec<PkgEntry>,
    /// `--pkg`: remove after installing this pass.
    pub post_remove: Vec<PkgEntry>,
}

/// One package entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PkgEntry {
    /// The package name, `@group`, `@module:stream` or a dnf-style spec.
    pub name: String,
    /// `subdir/pkg`: the sub-directory of otherpkgdir holding the package's repo (its own
    /// `repodata/`). Distro pkglists ignore it, as xCAT does.
    pub subdir: Option<String>,
    /// Where the entry is written.
    pub origin: Origin,
}

impl Pkglist {
    /// Parse `files` (pass numbering restarts at 1 for each), expanding includes; `$VAR`s in
    /// include paths come from `env`.
    pub fn load(
        files: &[Located<PathBuf>],
        env: &BTreeMap<String, String>,
    ) -> Result<Pkglist, ListError> {
        let mut list = Pkglist::default();
        for file in files {
            let lines = read_expanded(file, Some(env), &mut list.files_read)?;
            let mut pass = 0usize;
            for line in &lines {
                parse_line(line, &mut pass, &mut list.passes)?;
            }
            if list.passes.is_empty() {
                list.passes.push(PkgPass::default());
            }
        }
        Ok(list)
    }

    /// All install entries of all passes.
    pub fn all_install(&self) -> impl Iterator<Item = &PkgEntry> {
        self.passes.iter().flat_map(|p| p.install.iter())
    }
}

fn pass_mut(passes: &mut Vec<PkgPass>, pass: usize) -> &mut PkgPass {
    while passes.len() <= pass {
        passes.push(PkgPass::default());
    }
    &mut passes[pass]
}

fn parse_line(line: &Line, pass: &mut usize, passes: &mut Vec<PkgPass>) -> Result<(), ListError> {
    let t = line.text.trim();
    if t.is_empty() {
        return Ok(());
    }
    if t == "#NEW_INSTALL_LIST#" {
        *pass += 1;
        pass_mut(passes, *pass);
        return Ok(());
    }
    if let Some(rest) = t.strip_prefix("#ENV:") {
        let Some(body) = rest.strip_suffix('#') else {
            return Err(ListError::syntax(
                &line.origin,
                "#ENV directive without its closing '#'; write #ENV:NAME=value ...#",
            ));
        };
        let p = pass_mut(passes, *pass);
        for kv in body.split_whitespace() {
            let Some((k, v)) = kv.split_once('=') else {
                return Err(ListError::syntax(
                    &line.origin,
                    format!("#ENV entry {kv:?} is not NAME=value; write #ENV:NAME=value ...#"),
                ));
            };
            if !valid_var(k) {
                return Err(ListError::syntax(
                    &line.origin,
                    format!("#ENV variable name {k:?} is not a valid shell name"),
                ));
            }
            p.env.push((k.to_string(), v.to_string()));
        }
        return Ok(());
    }
    if t.starts_with('#') {
        return Ok(()); // comment (including unknown #directives#, as xCAT)
    }
    let indent = line.text.len() - line.text.trim_start().len();
    let body = t.split('#').next().unwrap_or("").trim_end();
    let (kind, names) = if let Some(r) = body.strip_prefix("--") {
        (2, r)
    } else if let Some(r) = body.strip_prefix('-') {
        (1, r)
    } else {
        (0, body)
    };
    let mut any = false;
    for (off, word) in words(names) {
        any = true;
        let col = (indent + (body.len() - names.len()) + off) as u32 + 1;
        let at = Origin::new(&line.origin.file, line.origin.line, col);
        if word.contains(',') {
            return Err(ListError::syntax(
                &at,
                format!(
                    "{word:?}: a comma does not separate packages here (xCAT would split it); \
                     put each package on its own line"
                ),
            ));
        }
        if word.starts_with('-') {
            return Err(ListError::syntax(
                &at,
                format!(
                    "{word:?}: a removal must start its own line; put each -pkg/--pkg on its own line"
                ),
            ));
        }
        let (subdir, name) = match word.rsplit_once('/') {
            Some((d, n)) => (Some(d.trim_start_matches("./").to_string()), n),
            None => (None, word),
        };
        if name.is_empty() || subdir.as_deref() == Some("") {
            return Err(ListError::syntax(
                &at,
                format!("{word:?}: write subdir/package (no leading or trailing '/')"),
            ));
        }
        let entry = PkgEntry {
            name: name.to_string(),
            subdir,
            origin: at,
        };
        let p = pass_mut(passes, *pass);
        match kind {
            0 => p.install.push(entry),
            1 => p.pre_remove.push(entry),
            _ => p.post_remove.push(entry),
        }
    }
    if !any {
        return Err(ListError::syntax(
            &line.origin,
            "a removal needs a package name; write -pkg (before install) or --pkg (after)",
        ));
    }
    Ok(())
}

/// Whitespace-separated words with their byte offsets.
fn words(s: &str) -> impl Iterator<Item = (usize, &str)> {
    let base = s.as_ptr() as usize;
    s.split_whitespace()
        .map(move |w| (w.as_ptr() as usize - base, w))
}

pub(crate) fn valid_var(k: &str) -> bool {
    let mut c = k.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}
