//! `osimage`: the command-line driver over imagecore. Each subcommand parses its arguments and
//! calls the library; no build logic lives here.

mod commands;

use clap::{Parser, Subcommand};

/// Build stateless (diskless) Linux node images from a TOML osimage spec.
#[derive(Parser)]
#[command(name = "osimage", version, about)]
struct Cli {
    /// Log level filter (e.g. `info`, `debug`, `imagecore=trace`); also RUST_LOG.
    #[arg(long, global = true, env = "OSIMAGE_LOG", default_value = "warn")]
    log: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build a demo image from a repository it generates (no ISO, no network).
    Demo(commands::demo::DemoArgs),
    /// Build the image: run every node whose output is not cached.
    Build(commands::build::BuildArgs),
    /// Show, per node, whether it will rebuild and which input changed.
    Plan(commands::plan::PlanArgs),
    /// Print the build graph (dot or json).
    Graph(commands::graph::GraphArgs),
    /// Print the fully resolved spec (after `extends` and defaults) as TOML.
    Show(commands::show::ShowArgs),
    /// Inspect and maintain the cache.
    Cache(commands::cache::CacheArgs),
    /// Solve the spec's package lists and write (or print) `osimage.lock`.
    Lock(commands::lock::LockArgs),
    /// Import install media (ISO, directory, block device) without mounting it.
    Copycds(commands::copycds::CopycdsArgs),
    /// Boot the built kernel + initrd + root image under qemu and wait for a marker.
    Test(commands::test::TestArgs),
    /// Install RPMs into a root directory without a spec (like `dnf --installroot`).
    Install(commands::install::InstallArgs),
    /// Write repodata for a directory of RPMs.
    Createrepo(commands::createrepo::CreaterepoArgs),
}

fn main() {
    // `osimage plan | head`: die quietly on a closed pipe like other Unix tools, instead of
    // panicking in println!.
    // SAFETY: called first thing, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    commands::init_logging(&cli.log);
    let code = match cli.cmd {
        Cmd::Demo(a) => commands::demo::run(a),
        Cmd::Build(a) => commands::build::run(a),
        Cmd::Plan(a) => commands::plan::run(a),
        Cmd::Graph(a) => commands::graph::run(a),
        Cmd::Show(a) => commands::show::run(a),
        Cmd::Cache(c) => commands::cache::run(c),
        Cmd::Lock(a) => commands::lock::run(a),
        Cmd::Createrepo(a) => commands::createrepo::run(a),
        Cmd::Install(a) => commands::install::run(a),
        Cmd::Test(a) => commands::test::run(a),
        Cmd::Copycds(a) => commands::copycds::run(a),
    };
    std::process::exit(commands::finish(code));
}
