//! xCAT list-file grammars, parsed into typed values: pkglist/otherpkglist ([`Pkglist`]),
//! exlist ([`Exlist`]), synclist ([`Synclist`]) and postinstall entries ([`PostinstallEntry`]).
//!
//! The grammars follow xCAT (`imgutils.pm`, `packimage.pm`, `DSHCLI.pm`) with its known bugs
//! fixed:
//! - `#INCLUDE:path#` resolves relative to the *including* file (xCAT: the top-level file), include
//!   cycles are an error naming the chain (xCAT loops forever), `$VAR`/`${VAR}` in pkglist include
//!   paths come from `[osimage] environvar` and an unknown variable is an error.
//! - pkglists: a comma never splits a line (xCAT joins and re-splits at commas; here a comma in an
//!   entry is an error with advice), indented `-pkg`/`--pkg` removals work, and removals are kept
//!   for both distro and other-package lists.
//! - exlist: matching is find(1) `-path` (see [`fnmatch`]); an exclude and a re-include of the
//!   same path never duplicate an entry.
//!
//! Every error names `file:line:col` and says what to do.

use std::path::PathBuf;

use crate::spec::Origin;

pub mod exlist;
pub mod fnmatch;
pub mod pkglist;
pub mod postinstall;
pub mod synclist;
mod text;

pub use exlist::{ExRule, Exlist};
pub use pkglist::{PkgEntry, PkgPass, Pkglist};
pub use postinstall::PostinstallEntry;
pub use synclist::{SectionKind, SyncEntry, SyncSection, Synclist};

/// Errors of this module. Each names the file, line and column, and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// A list file (or an included file, or a synclist source) cannot be read.
    #[error("{at}: cannot read {path}: {source}; check that the file exists and is readable")]
    Read {
        /// Where the file is named (the spec value or the `#INCLUDE` line).
        at: Origin,
        /// The file that could not be read.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file is not UTF-8 text.
    #[error("{at}: {path} is not UTF-8 text; list files must be UTF-8")]
    NotUtf8 {
        /// Where the file is named.
        at: Origin,
        /// The file.
        path: PathBuf,
    },
    /// `#INCLUDE` directives form a cycle.
    #[error("{at}: #INCLUDE cycle: {chain}; remove one of these #INCLUDE lines")]
    IncludeCycle {
        /// The `#INCLUDE` line that closes the cycle.
        at: Origin,
        /// The chain of files, `a -> b -> a`.
        chain: String,
    },
    /// A `$VAR` that `[osimage] environvar` does not define.
    #[error("{at}: unknown variable ${var}; define it in [osimage] environvar of the spec")]
    UnknownVar {
        /// Where the variable is used.
        at: Origin,
        /// The variable name.
        var: String,
    },
    /// A line that does not follow the grammar; the message says how to fix it.
    #[error("{at}: {message}")]
    Syntax {
        /// The offending line (and column).
        at: Origin,
        /// What is wrong and what to do.
        message: String,
    },
}

impl ListError {
    pub(crate) fn syntax(at: &Origin, message: impl Into<String>) -> ListError {
        ListError::Syntax {
            at: at.clone(),
            message: message.into(),
        }
    }
}
