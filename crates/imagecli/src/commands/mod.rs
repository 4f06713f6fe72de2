//! One module per subcommand: argument parsing and printing only.

pub mod cache;
