//! Subcommands.

pub mod install;
