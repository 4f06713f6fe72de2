//! `osimage`: the command-line driver over imagecore.

mod commands;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "osimage", about = "Build stateless Linux node images")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install RPM files into a directory (like `rpm -i --root`), or erase packages.
    Install(commands::install::InstallArgs),
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Install(a) => commands::install::run(a),
    };
    match r {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}
