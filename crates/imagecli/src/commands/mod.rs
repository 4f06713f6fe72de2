//! Subcommands.

pub mod createrepo;
pub mod lock;
