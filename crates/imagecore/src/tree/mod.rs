//! Trees: [`manifest`] types, scanning a directory into the store, materialising a manifest into a
//! directory.

pub mod manifest;

pub use manifest::{Entry, Kind, Manifest};

/// Errors of tree scanning and materialising.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// Placeholder until the module lands.
    #[error("not implemented: {0}")]
    NotImplemented(String),
}
