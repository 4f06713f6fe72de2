//! The media module's error type.

use std::path::PathBuf;

/// Errors of the media module. Every message names the file involved and what to do.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The media path could not be opened.
    #[error("{path}: cannot open the media: {source}")]
    Open {
        /// The media path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The path is not something copycds can read.
    #[error("{path}: not install media: {why}")]
    NotMedia {
        /// The media path.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// The file is not an ISO 9660 image.
    #[error(
        "{path}: not an ISO 9660 image ({why}); pass a distro DVD .iso, a block device or an extracted directory"
    )]
    NotIso {
        /// The file.
        path: PathBuf,
        /// What the reader said.
        why: String,
    },
    /// The ISO image is shorter than its own descriptors say.
    #[error(
        "{path}: the ISO image is truncated: it needs {needed} bytes but the file has {have}; download or copy it again"
    )]
    Truncated {
        /// The image.
        path: PathBuf,
        /// Bytes the image structures need.
        needed: u64,
        /// Bytes the file has.
        have: u64,
    },
    /// The ISO image's structures are damaged.
    #[error("{path}: the ISO image is corrupt ({why}); download or copy it again")]
    Corrupt {
        /// The image.
        path: PathBuf,
        /// What was wrong.
        why: String,
    },
    /// A path on the media does not exist.
    #[error("{media}: no such file on the media: /{path}")]
    NotFound {
        /// The media.
        media: PathBuf,
        /// The missing path.
        path: String,
    },
    /// Reading a file of the media failed.
    #[error("{media}: reading /{path} failed: {source}")]
    Read {
        /// The media.
        media: PathBuf,
        /// The file on the media.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The distro could not be identified.
    #[error(
        "{media}: copycds could not identify the distro ({why}); pass -n DISTNAME and -a ARCH to name it"
    )]
    Unidentified {
        /// The media.
        media: PathBuf,
        /// What was missing.
        why: String,
    },
    /// `.treeinfo` or `.discinfo` is malformed.
    #[error("{media}: /{file}: {why}")]
    BadInfo {
        /// The media.
        media: PathBuf,
        /// `.treeinfo` or `.discinfo`.
        file: String,
        /// What is wrong.
        why: String,
    },
    /// A `.treeinfo` `[checksums]` entry did not match the file.
    #[error(
        "{media}: /{path} does not match its .treeinfo checksum (expected {expected}, got {actual}); the media is damaged, nothing was copied"
    )]
    ChecksumMismatch {
        /// The media.
        media: PathBuf,
        /// The file on the media.
        path: String,
        /// The checksum in `.treeinfo`.
        expected: String,
        /// What the file hashes to.
        actual: String,
    },
    /// `-a` disagrees with the media.
    #[error("{media}: requested architecture {requested}, but the media is {media_arch}")]
    ArchMismatch {
        /// The media.
        media: PathBuf,
        /// `-a`.
        requested: String,
        /// The media's arch.
        media_arch: String,
    },
    /// `-w` and the destination holds different content.
    #[error(
        "{dest}: already holds different media ({why}); not overwriting because of -w/--nonoverwrite (drop -w to replace it, or use -n/-p for another destination)"
    )]
    WouldOverwrite {
        /// The destination.
        dest: PathBuf,
        /// What differs.
        why: String,
    },
    /// Two media in one call disagree.
    #[error("{0}")]
    Conflict(String),
    /// A `media:` reference names media that were not imported.
    #[error(
        "media {reference}: {path} does not exist; run `osimage copycds <ISO> --store {store}` first"
    )]
    NotImported {
        /// The reference (`rocky9.4/x86_64`).
        reference: String,
        /// Where it was looked for.
        path: PathBuf,
        /// The store.
        store: PathBuf,
    },
    /// A `media:` reference is malformed.
    #[error("media reference {0:?}: expected DISTNAME/ARCH, e.g. rocky9.4/x86_64")]
    BadReference(String),
    /// The media has something copycds cannot store.
    #[error("{media}: /{path}: {why}")]
    Unsupported {
        /// The media.
        media: PathBuf,
        /// The entry.
        path: String,
        /// Why.
        why: String,
    },
    /// An I/O error on a destination path.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The media record file is unreadable.
    #[error("{path}: bad media record ({why}); delete the directory and run copycds again")]
    BadRecord {
        /// The record file.
        path: PathBuf,
        /// Why.
        why: String,
    },
}

impl MediaError {
    /// Wraps an I/O error with the destination path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> MediaError {
        MediaError::Io {
            path: path.into(),
            source,
        }
    }
}
