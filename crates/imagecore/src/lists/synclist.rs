//! synclist (xCAT `xdcp -i` / `DSHCLI.pm`): files copied from the build host into the image.
//!
//! ```text
//! line    := blank | "#" comment | entry | section
//! entry   := src (" " src)* " -> " [ "(" noderange ")" " " ] dst
//! section := ("EXECUTE:" | "EXECUTEALWAYS:" | "APPEND:" | "MERGE:") NEWLINE body-line*
//! ```
//! As xCAT in image mode, only plain entries before the first section header of a file are
//! applied; entries with a noderange are skipped and reported ([`Synclist::skipped`]); section
//! bodies are parsed and kept but not applied (they act at node boot / `updatenode` in xCAT).
//! The split is at the *last* ` -> `; sources are whitespace-separated, relative ones resolve
//! against the synclist's directory, and shell globs are expanded (sorted) at load; a source
//! that matches nothing is an error. The destination is a directory when it ends with `/`, when
//! there are several sources, or when a source is a directory (rsync -r semantics) — decided
//! from the sources, never from the build host's filesystem at the destination path (an xCAT
//! bug). `$VAR`/`${VAR}` come from `[osimage] environvar` ([`Synclist::load_with_env`]).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use super::ListError;
use super::fnmatch::Pattern;
use super::text::{expand_vars, lines_of, read_text};
use crate::spec::{Located, Origin};

/// A parsed set of synclists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Synclist {
    /// Plain `src… -> dst` entries applied into the image, in file order.
    pub entries: Vec<SyncEntry>,
    /// `EXECUTE:`, `EXECUTEALWAYS:`, `APPEND:`, `MERGE:` sections, kept but not applied.
    pub sections: Vec<SyncSection>,
    /// Lines with a `(noderange)`, skipped as xCAT does in image mode.
    pub skipped: Vec<(Origin, String)>,
    /// Every synclist read.
    pub files_read: Vec<PathBuf>,
}

/// One `src… -> dst` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncEntry {
    /// Absolute source paths, globs expanded and sorted.
    pub srcs: Vec<PathBuf>,
    /// Destination as written (absolute in the image, may end with `/`).
    pub dst: String,
    /// The destination is a directory the sources go into.
    pub dst_is_dir: bool,
    /// Where the entry is written.
    pub origin: Origin,
}

/// The kind of a synclist section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SectionKind {
    /// `EXECUTE:` scripts run when their file changed.
    Execute,
    /// `EXECUTEALWAYS:` scripts run every sync.
    ExecuteAlways,
    /// `APPEND:` `src -> node-file` appends.
    Append,
    /// `MERGE:` `src -> /etc/passwd|shadow|group` merges.
    Merge,
}

/// A section and its body lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncSection {
    /// Which section.
    pub kind: SectionKind,
    /// The body lines, trimmed, without blanks and comments.
    pub lines: Vec<(Origin, String)>,
}

const HEADERS: [(&str, SectionKind); 4] = [
    ("EXECUTEALWAYS:", SectionKind::ExecuteAlways),
    ("EXECUTE:", SectionKind::Execute),
    ("APPEND:", SectionKind::Append),
    ("MERGE:", SectionKind::Merge),
];

impl Synclist {
    /// Parse `files` with no variables defined (a `$VAR` is an error).
    pub fn load(files: &[Located<PathBuf>]) -> Result<Synclist, ListError> {
        Synclist::load_with_env(files, &BTreeMap::new())
    }

    /// Parse `files`, expanding `$VAR`/`${VAR}` from `env` (the spec's environvar).
    pub fn load_with_env(
        files: &[Located<PathBuf>],
        env: &BTreeMap<String, String>,
    ) -> Result<Synclist, ListError> {
        let mut out = Synclist::default();
        for file in files {
            let text = read_text(&file.value, &file.origin)?;
            if !out.files_read.contains(&file.value) {
                out.files_read.push(file.value.clone());
            }
            let dir = file.value.parent().unwrap_or(Path::new("."));
            let mut in_section = false;
            for line in lines_of(&file.value, &text) {
                let t = line.text.trim();
                if t.is_empty() || t.starts_with('#') {
                    continue;
                }
                if let Some((h, kind)) = HEADERS.iter().find(|(h, _)| t.starts_with(h)) {
                    if t.len() != h.len() {
                        return Err(ListError::syntax(
                            &line.origin,
                            format!("{h} must be alone on its line; put its entries below it"),
                        ));
                    }
                    out.sections.push(SyncSection {
                        kind: *kind,
                        lines: Vec::new(),
                    });
                    in_section = true;
                    continue;
                }
                if in_section {
                    if let Some(s) = out.sections.last_mut() {
                        s.lines.push((line.origin.clone(), t.to_string()));
                    }
                    continue;
                }
                let t = expand_vars(t, env, &line.origin)?;
                if let Some(entry) = parse_entry(&t, dir, &line.origin, &mut out.skipped)? {
                    out.entries.push(entry);
                }
            }
        }
        Ok(out)
    }

    /// The root-relative path (no leading `/`) that source `src` of `e` is copied to.
    /// For a directory source this is where the directory itself goes; its contents go below.
    pub fn dest_path(&self, e: &SyncEntry, src: &Path) -> String {
        let mut parts: Vec<String> = e
            .dst
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .map(str::to_string)
            .collect();
        if e.dst_is_dir
            && let Some(name) = src.file_name()
        {
            parts.push(name.to_string_lossy().into_owned());
        }
        parts.join("/")
    }
}

fn parse_entry(
    t: &str,
    dir: &Path,
    at: &Origin,
    skipped: &mut Vec<(Origin, String)>,
) -> Result<Option<SyncEntry>, ListError> {
    let Some((src_part, dst_part)) = t.rsplit_once(" -> ") else {
        return Err(ListError::syntax(
            at,
            format!("{t:?} is not an entry; write `source... -> /destination`"),
        ));
    };
    let dst = dst_part.trim().trim_end_matches(';').trim();
    if dst.starts_with('(') {
        skipped.push((at.clone(), t.to_string()));
        return Ok(None);
    }
    if !dst.starts_with('/')
        || dst.split('/').any(|c| c == "..")
        || dst.contains(char::is_whitespace)
    {
        return Err(ListError::syntax(
            at,
            format!(
                "destination {dst:?} must be an absolute path in the image without '..' or spaces, e.g. /etc/hosts"
            ),
        ));
    }
    let tokens: Vec<&str> = src_part.split_whitespace().collect();
    if tokens.is_empty() {
        return Err(ListError::syntax(
            at,
            "no source before ->; write `source... -> /destination`",
        ));
    }
    let mut srcs = Vec::new();
    for tok in &tokens {
        let p = crate::spec::normalize(&dir.join(tok));
        if Pattern::has_wildcards(tok) {
            let found = expand_glob(&p);
            if found.is_empty() {
                return Err(ListError::syntax(
                    at,
                    format!(
                        "source {} matches no file; fix the pattern or create the files",
                        p.display()
                    ),
                ));
            }
            srcs.extend(found);
        } else {
            std::fs::metadata(&p).map_err(|source| ListError::Read {
                at: at.clone(),
                path: p.clone(),
                source,
            })?;
            srcs.push(p);
        }
    }
    let dst_is_dir = dst.ends_with('/') || srcs.len() > 1 || srcs.iter().any(|s| s.is_dir());
    Ok(Some(SyncEntry {
        srcs,
        dst: dst.to_string(),
        dst_is_dir,
        origin: at.clone(),
    }))
}

/// Expand a shell glob the way the shell does (per component, dot files only when the pattern
/// starts with a dot), sorted; only existing paths are returned.
fn expand_glob(p: &Path) -> Vec<PathBuf> {
    let mut cur = vec![PathBuf::new()];
    for comp in p.components() {
        match comp {
            Component::Normal(s) => {
                let s = s.to_string_lossy();
                if Pattern::has_wildcards(&s) {
                    let pat = Pattern::with_pathname(&s);
                    let mut next = Vec::new();
                    for base in &cur {
                        let dir = if base.as_os_str().is_empty() {
                            Path::new(".")
                        } else {
                            base
                        };
                        if let Ok(rd) = std::fs::read_dir(dir) {
                            for e in rd.flatten() {
                                let name = e.file_name();
                                if pat.matches(&name.to_string_lossy()) {
                                    next.push(base.join(name));
                                }
                            }
                        }
                    }
                    next.sort();
                    cur = next;
                } else {
                    for b in &mut cur {
                        b.push(&*s);
                    }
                }
            }
            other => {
                for b in &mut cur {
                    b.push(other.as_os_str());
                }
            }
        }
    }
    cur.retain(|p| p.exists());
    cur
}
