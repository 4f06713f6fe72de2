//! `osimage graph SPEC [--format dot|json]`.

use std::path::PathBuf;

use imagecore::Plan;

/// Output format of `graph`.
#[derive(clap::ValueEnum, Clone, Copy)]
pub enum Format {
    /// Graphviz dot.
    Dot,
    /// JSON (same rows as `plan --json`, with parents).
    Json,
}

/// Arguments of `graph`.
#[derive(clap::Args)]
pub struct GraphArgs {
    /// The osimage spec (TOML).
    pub spec: PathBuf,
    #[command(flatten)]
    pub cache: super::CacheArg,
    /// Output format.
    #[arg(long, value_enum, default_value = "dot")]
    pub format: Format,
}

/// Run `graph`.
pub fn run(a: GraphArgs) -> anyhow::Result<i32> {
    let spec = super::load_spec(&a.spec)?;
    let store = a.cache.open()?;
    let plan = Plan::new(&spec, &store)?;
    match a.format {
        Format::Dot => print!("{}", plan.to_dot()),
        Format::Json => println!("{}", plan.to_json()),
    }
    Ok(0)
}
