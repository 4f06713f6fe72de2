//! The content-addressed cache: blobs in pack files, manifests, step outputs, build records.

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Placeholder until the module lands.
    #[error("not implemented: {0}")]
    NotImplemented(String),
}

/// The store.
pub struct Store {}
