//! RPM packages: headers (through the `rpm` crate), payload streams, EVR comparison.

pub mod payload;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum RpmError {
    /// Placeholder until the module lands.
    #[error("not implemented: {0}")]
    NotImplemented(String),
}
