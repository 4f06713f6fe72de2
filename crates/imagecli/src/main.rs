//! `osimage`: the command-line driver over imagecore.

mod commands;

use clap::{Parser, Subcommand};

/// Build stateless (diskless) Linux node images.
#[derive(Debug, Parser)]
#[command(name = "osimage", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Import distro media (ISO, block device, directory) into the media store.
    Copycds(commands::copycds::CopycdsArgs),
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Copycds(a) => commands::copycds::run(a),
    };
    match code {
        Ok(c) => std::process::exit(c),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}
