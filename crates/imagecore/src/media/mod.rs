//! Install media: ISO 9660 reading (no mount), distro detection, copycds.

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// Placeholder until the module lands.
    #[error("not implemented: {0}")]
    NotImplemented(String),
}
