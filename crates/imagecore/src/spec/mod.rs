//! The osimage spec: TOML model, `extends` merging, validation (errors name file:line:col).

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// Placeholder until the module lands.
    #[error("not implemented: {0}")]
    NotImplemented(String),
}

/// A loaded spec.
pub struct Spec {}
