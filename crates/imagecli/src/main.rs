//! `osimage`: the command-line driver over imagecore.

mod commands;

use clap::{Parser, Subcommand};

/// Build stateless Linux node images.
#[derive(Parser)]
#[command(name = "osimage", version)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write repodata for a directory of RPMs.
    Createrepo(commands::createrepo::CreaterepoArgs),
    /// Solve package lists into a lock.
    Lock(commands::lock::LockArgs),
}

fn main() {
    let cli = Cli::parse();
    let res = match cli.cmd {
        Cmd::Createrepo(a) => commands::createrepo::run(a),
        Cmd::Lock(a) => commands::lock::run(a),
    };
    match res {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}
