//! Kernel selection, module closure, ELF closure, the stateless /init and initrd, qemu boot test.

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// Placeholder until the module lands.
    #[error("not implemented: {0}")]
    NotImplemented(String),
}
