//! Dependency resolution on resolvo: the provider, passes, weak deps, explanations, the lock.

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum SolveError {
    /// Placeholder until the module lands.
    #[error("not implemented: {0}")]
    NotImplemented(String),
}
