//! postinstall entries: `script arg…` (xCAT `linuximage.postinstall`; here one TOML string per
//! script instead of a comma list). Words are split with shell quoting rules.

use std::path::{Path, PathBuf};

use super::ListError;
use crate::spec::Origin;

/// One postinstall script with its extra arguments. xCAT runs it as
/// `script <rootimg> <osvers> <arch> <profile> args…`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostinstallEntry {
    /// The script, resolved against the directory of the file that names it.
    pub script: PathBuf,
    /// The user arguments after the script.
    pub args: Vec<String>,
}

impl PostinstallEntry {
    /// Parse `"script arg…"` (shell words); a relative script resolves against `dir`.
    /// Does not check that the script exists (the spec loader does).
    pub fn parse(text: &str, dir: &Path, at: &Origin) -> Result<PostinstallEntry, ListError> {
        let words = shell_words::split(text).map_err(|e| {
            ListError::syntax(
                at,
                format!("postinstall entry {text:?}: {e}; fix the quoting"),
            )
        })?;
        let mut it = words.into_iter();
        let Some(script) = it.next() else {
            return Err(ListError::syntax(
                at,
                "empty postinstall entry; write \"script arg...\"",
            ));
        };
        Ok(PostinstallEntry {
            script: dir.join(script),
            args: it.collect(),
        })
    }

    /// The entry as one shell-quoted string (re-parsable with [`PostinstallEntry::parse`]).
    pub fn to_line(&self) -> String {
        let mut words = vec![self.script.to_string_lossy().into_owned()];
        words.extend(self.args.iter().cloned());
        shell_words::join(words)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_shell_words_and_resolves_against_the_dir() {
        let at = Origin::new("s.toml", 3, 15);
        let e = PostinstallEntry::parse("post.sh --flag 'a b' \"c\"", Path::new("/specs"), &at)
            .unwrap();
        assert_eq!(e.script, Path::new("/specs/post.sh"));
        assert_eq!(e.args, ["--flag", "a b", "c"]);
        assert_eq!(
            PostinstallEntry::parse(&e.to_line(), Path::new("/x"), &at).unwrap(),
            e
        );
        let abs = PostinstallEntry::parse("/opt/p", Path::new("/specs"), &at).unwrap();
        assert_eq!(abs.script, Path::new("/opt/p"));
        let err = PostinstallEntry::parse("  ", Path::new("/"), &at)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("s.toml:3:15: empty postinstall entry"),
            "{err}"
        );
        let err = PostinstallEntry::parse("p 'open", Path::new("/"), &at)
            .unwrap_err()
            .to_string();
        assert!(err.contains("fix the quoting"), "{err}");
    }
}
