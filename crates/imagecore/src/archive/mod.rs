//! Deterministic newc cpio writing and reading, and the compressors (zstd, gzip, xz).

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Placeholder until the module lands.
    #[error("not implemented: {0}")]
    NotImplemented(String),
}
