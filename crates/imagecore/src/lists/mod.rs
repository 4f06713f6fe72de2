//! xCAT list-file grammars: pkglist/otherpkglist, exlist, synclist, postinstall entries.

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// Placeholder until the module lands.
    #[error("not implemented: {0}")]
    NotImplemented(String),
}
