//! `osimage`: the command-line driver over imagecore.
mod commands;

use clap::{Parser, Subcommand};

/// Build stateless (diskless) Linux node images.
#[derive(Parser)]
#[command(name = "osimage", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Boot a built image under qemu and wait for a marker.
    Test(commands::test::TestArgs),
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Test(a) => commands::test::run(a),
    };
    match code {
        Ok(c) => std::process::exit(c),
        Err(e) => {
            eprintln!("osimage: {e:#}");
            std::process::exit(1);
        }
    }
}
