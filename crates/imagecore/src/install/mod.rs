//! The RPM install engine: payload unpack into a root, owners/caps, scriptlets, rpmdb.

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// Placeholder until the module lands.
    #[error("not implemented: {0}")]
    NotImplemented(String),
}
