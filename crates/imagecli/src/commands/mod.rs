//! One module per subcommand.

pub mod copycds;
