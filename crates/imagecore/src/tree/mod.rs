//! Trees: [`manifest`] types, scanning a directory into the store ([`scan`]), materialising a
//! manifest into a directory ([`materialize`]), and content hashes of directories for node keys
//! ([`hash_tree`]).

pub mod manifest;
mod materialize;
pub mod overlay;
mod scan;
mod statcache;
pub(crate) mod trash;
mod walk;

use std::path::PathBuf;

pub use manifest::{Entry, Kind, Manifest};
pub use materialize::{MaterializeStats, materialize, materialize_with_stats};
pub use scan::{ScanStats, hash_tree, hash_tree_cached, scan, scan_with_stats};
pub use statcache::{StatCache, StatEntry};

/// Errors of tree scanning and materialising.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// An I/O error on a named path.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A name (or link target, or xattr name) is not UTF-8.
    #[error(
        "{path}: {what} is not valid UTF-8; image trees need UTF-8 names: rename the file or remove it from the tree"
    )]
    NonUtf8 {
        /// The path (as the OS gives it).
        path: PathBuf,
        /// What is not UTF-8.
        what: String,
    },
    /// The materialise target is not empty.
    #[error("{0}: not empty; materialise into a new or empty directory")]
    NotEmpty(PathBuf),
    /// A manifest entry cannot be recreated.
    #[error("{path}: cannot recreate manifest entry: {what}")]
    BadEntry {
        /// The target path.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// Store failure.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}
