//! The library's top-level error. Each module has its own `thiserror` enum; this one wraps them.

use std::path::PathBuf;

/// Any error imagecore returns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A spec file is wrong (names file:line:col).
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    /// An xCAT list file is wrong (names file:line).
    #[error(transparent)]
    List(#[from] crate::lists::ListError),
    /// The cache store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Tree scanning / materialising failed.
    #[error(transparent)]
    Tree(#[from] crate::tree::TreeError),
    /// Archive writing/reading failed.
    #[error(transparent)]
    Archive(#[from] crate::archive::ArchiveError),
    /// An RPM package could not be read.
    #[error(transparent)]
    Rpm(#[from] crate::rpm::RpmError),
    /// Repository metadata problem.
    #[error(transparent)]
    Repo(#[from] crate::repo::RepoError),
    /// Dependency resolution failed.
    #[error(transparent)]
    Solve(#[from] crate::solve::SolveError),
    /// Package installation failed.
    #[error(transparent)]
    Install(#[from] crate::install::InstallError),
    /// Install media problem.
    #[error(transparent)]
    Media(#[from] crate::media::MediaError),
    /// Kernel / initrd / boot problem.
    #[error(transparent)]
    Boot(#[from] crate::boot::BootError),
    /// A stage that is not built yet.
    #[error("not implemented: {0}")]
    NotImplemented(String),
    /// A step failed with a message.
    #[error("{node}: {message}")]
    Step {
        /// Node name.
        node: String,
        /// What went wrong and what to do.
        message: String,
    },
    /// An I/O error on a named path.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

impl Error {
    /// Wrap an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// True when the error is the user's input (spec, list files): the CLI exits 2 for these
    /// and 1 for build failures.
    pub fn is_usage(&self) -> bool {
        matches!(self, Error::Spec(_) | Error::List(_))
    }
}
