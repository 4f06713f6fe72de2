//! RPM packages: headers (through the `rpm` crate), payload streams, EVR comparison.

use std::path::PathBuf;

pub mod evr;
pub mod header;
pub mod payload;
mod readahead;
pub mod rich;

pub use evr::{DepFlags, Evr};
pub use header::{Dep, PackageMeta, read_header};
pub use rich::RichDep;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum RpmError {
    /// The header could not be parsed.
    #[error("{path}: not a readable RPM header: {message} (is the file truncated or not an .rpm?)")]
    Header {
        /// The package file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// Reading the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The package file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Placeholder for parts not built yet.
    #[error("not implemented: {0}")]
    NotImplemented(String),
}
