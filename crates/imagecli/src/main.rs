//! `osimage`: the command-line driver over imagecore.

mod commands;

use clap::Parser;

/// Build stateless Linux node images from TOML osimage specs.
#[derive(Parser, Debug)]
#[command(name = "osimage", version)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Subcommand, Debug)]
enum Cmd {
    /// Inspect, clean and check the build cache.
    Cache(commands::cache::CacheArgs),
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.cmd {
        Cmd::Cache(a) => commands::cache::run(a),
    };
    match code {
        Ok(c) => std::process::exit(c),
        Err(e) => {
            eprintln!("osimage: {e:#}");
            std::process::exit(1);
        }
    }
}
