//! Source locations: [`Origin`] (file:line:col) and [`Located`] values.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where a value was written: a file and a 1-based line and column (columns count characters).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin {
    /// The file (absolute when it comes from a loaded spec).
    pub file: PathBuf,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub col: u32,
}

impl Origin {
    /// An origin at `line:col` of `file`.
    pub fn new(file: impl Into<PathBuf>, line: u32, col: u32) -> Origin {
        Origin {
            file: file.into(),
            line,
            col,
        }
    }

    /// The start of `file` (1:1), for errors about something that is missing from it.
    pub fn start_of(file: impl Into<PathBuf>) -> Origin {
        Origin::new(file, 1, 1)
    }

    /// The origin of byte offset `offset` in `text`, the content of `file`.
    pub fn at_offset(file: &Path, text: &str, offset: usize) -> Origin {
        let offset = offset.min(text.len());
        let mut line = 1u32;
        let mut line_start = 0usize;
        for (i, b) in text.as_bytes()[..offset].iter().enumerate() {
            if *b == b'\n' {
                line += 1;
                line_start = i + 1;
            }
        }
        // Count characters, not bytes; back off to a char boundary if needed.
        let mut end = offset;
        while end > line_start && !text.is_char_boundary(end) {
            end -= 1;
        }
        let col = text[line_start..end].chars().count() as u32 + 1;
        Origin::new(file, line, col)
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

/// A value together with where it was written.
///
/// Equality compares the values only: the origin is diagnostic, so a spec re-loaded from a
/// different file (e.g. the output of [`crate::Spec::to_toml`]) compares equal.
#[derive(Clone, Debug)]
pub struct Located<T> {
    /// The value.
    pub value: T,
    /// Where it was written.
    pub origin: Origin,
}

impl<T> Located<T> {
    /// Pair a value with its origin.
    pub fn new(value: T, origin: Origin) -> Located<T> {
        Located { value, origin }
    }

    /// Transform the value, keeping the origin.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Located<U> {
        Located {
            value: f(self.value),
            origin: self.origin,
        }
    }
}

impl<T: PartialEq> PartialEq for Located<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<T: Eq> Eq for Located<T> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_line_and_char_column() {
        let t = "ab\ncé d\n";
        let p = Path::new("f.toml");
        assert_eq!(Origin::at_offset(p, t, 0).to_string(), "f.toml:1:1");
        assert_eq!(Origin::at_offset(p, t, 3).to_string(), "f.toml:2:1");
        // 'é' is two bytes: "d" is at byte 7 but column 4.
        assert_eq!(Origin::at_offset(p, t, 7).to_string(), "f.toml:2:4");
        assert_eq!(Origin::at_offset(p, t, 999).line, 3);
    }
}
