//! Package repositories: repomd/primary/filelists/comps reading, directory scanning, createrepo.

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// Placeholder until the module lands.
    #[error("not implemented: {0}")]
    NotImplemented(String),
}
