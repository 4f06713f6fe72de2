//! Shared reading of list files: lines with origins, `#INCLUDE:path#` expansion relative to the
//! including file with cycle detection, and `$VAR`/`${VAR}` expansion.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::ListError;
use crate::spec::{Located, Origin};

/// One line of a list file, after include expansion, with where it was written.
#[derive(Clone, Debug)]
pub(crate) struct Line {
    /// The line without its newline (and without a trailing `\r`).
    pub text: String,
    /// File and line number (column 1).
    pub origin: Origin,
}

/// Read a whole file as UTF-8, naming `at` (where the file is referenced) on failure.
pub(crate) fn read_text(path: &Path, at: &Origin) -> Result<String, ListError> {
    let bytes = std::fs::read(path).map_err(|source| ListError::Read {
        at: at.clone(),
        path: path.to_path_buf(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|_| ListError::NotUtf8 {
        at: at.clone(),
        path: path.to_path_buf(),
    })
}

/// Split a file's text into lines with origins.
pub(crate) fn lines_of(path: &Path, text: &str) -> Vec<Line> {
    text.lines()
        .enumerate()
        .map(|(i, l)| Line {
            text: l.strip_suffix('\r').unwrap_or(l).to_string(),
            origin: Origin::new(path, i as u32 + 1, 1),
        })
        .collect()
}

/// Expand `$NAME` and `${NAME}` from `env`; an unknown name is an error at `at`.
/// A `$` not followed by a name is kept literally.
pub(crate) fn expand_vars(
    s: &str,
    env: &BTreeMap<String, String>,
    at: &Origin,
) -> Result<String, ListError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
            let Some(end) = braced.find('}') else {
                return Err(ListError::syntax(
                    at,
                    format!("unclosed ${{ in {s:?}; write ${{NAME}}"),
                ));
            };
            (&braced[..end], end + 2)
        } else {
            let starts_name = after
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
            let n = if starts_name {
                after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len())
            } else {
                0
            };
            (&after[..n], n)
        };
        if name.is_empty() {
            out.push('$');
            rest = after;
            continue;
        }
        match env.get(name) {
            Some(v) => out.push_str(v),
            None => {
                return Err(ListError::UnknownVar {
                    at: at.clone(),
                    var: name.to_string(),
                });
            }
        }
        rest = &after[consumed..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Parse `#INCLUDE:path#` on a trimmed line: `Ok(None)` if the line is not an include.
pub(crate) fn include_target(trimmed: &str, at: &Origin) -> Result<Option<String>, ListError> {
    let Some(rest) = trimmed.strip_prefix("#INCLUDE:") else {
        return Ok(None);
    };
    let Some(inner) = rest.strip_suffix('#') else {
        return Err(ListError::syntax(
            at,
            "#INCLUDE directive without its closing '#'; write #INCLUDE:path#",
        ));
    };
    let inner = inner.trim();
    if inner.is_empty() || inner.contains('#') {
        return Err(ListError::syntax(
            at,
            "#INCLUDE directive needs one path; write #INCLUDE:path#",
        ));
    }
    Ok(Some(inner.to_string()))
}

/// Read `top` and expand its `#INCLUDE:path#` lines recursively. Include paths are relative to
/// the including file's directory; with `env`, `$VAR`s in include paths are expanded. Every file
/// read is appended (once) to `files_read`.
pub(crate) fn read_expanded(
    top: &Located<PathBuf>,
    env: Option<&BTreeMap<String, String>>,
    files_read: &mut Vec<PathBuf>,
) -> Result<Vec<Line>, ListError> {
    let mut out = Vec::new();
    let mut stack = Vec::new();
    expand_into(
        &top.value,
        &top.origin,
        env,
        &mut stack,
        files_read,
        &mut out,
    )?;
    Ok(out)
}

fn expand_into(
    path: &Path,
    at: &Origin,
    env: Option<&BTreeMap<String, String>>,
    stack: &mut Vec<(PathBuf, PathBuf)>,
    files_read: &mut Vec<PathBuf>,
    out: &mut Vec<Line>,
) -> Result<(), ListError> {
    let text = read_text(path, at)?;
    let canon = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if let Some(pos) = stack.iter().position(|(c, _)| *c == canon) {
        let mut chain: Vec<String> = stack[pos..]
            .iter()
            .map(|(_, shown)| shown.display().to_string())
            .collect();
        chain.push(path.display().to_string());
        return Err(ListError::IncludeCycle {
            at: at.clone(),
            chain: chain.join(" -> "),
        });
    }
    if !files_read.contains(&path.to_path_buf()) {
        files_read.push(path.to_path_buf());
    }
    stack.push((canon, path.to_path_buf()));
    let dir = path.parent().unwrap_or(Path::new("."));
    for line in lines_of(path, &text) {
        let trimmed = line.text.trim();
        match include_target(trimmed, &line.origin)? {
            Some(target) => {
                let target = match env {
                    Some(env) => expand_vars(&target, env, &line.origin)?,
                    None => target,
                };
                let inc = crate::spec::normalize(&dir.join(&target));
                expand_into(&inc, &line.origin, env, stack, files_read, out)?;
            }
            None => out.push(line),
        }
    }
    stack.pop();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vars_expand_and_unknown_is_an_error() {
        let env = BTreeMap::from([("OS".to_string(), "rocky9".to_string())]);
        let at = Origin::new("x", 1, 1);
        assert_eq!(
            expand_vars("a/$OS/${OS}x/$", &env, &at).unwrap(),
            "a/rocky9/rocky9x/$"
        );
        assert_eq!(expand_vars("$1", &env, &at).unwrap(), "$1");
        let e = expand_vars("$NOPE/x", &env, &at).unwrap_err().to_string();
        assert!(e.contains("unknown variable $NOPE"), "{e}");
        assert!(expand_vars("${OS", &env, &at).is_err());
    }
}
