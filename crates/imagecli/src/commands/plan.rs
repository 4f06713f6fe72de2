//! `osimage plan SPEC [--json]`.

use std::path::PathBuf;

use imagecore::Plan;

/// Arguments of `plan`.
#[derive(clap::Args)]
pub struct PlanArgs {
    /// The osimage spec (TOML).
    pub spec: PathBuf,
    #[command(flatten)]
    pub cache: super::CacheArg,
    /// Print JSON: {"nodes":[{"name","kind","key","state","reason"}]}.
    #[arg(long)]
    pub json: bool,
}

/// Run `plan`.
pub fn run(a: PlanArgs) -> anyhow::Result<i32> {
    let spec = super::load_spec(&a.spec)?;
    let store = a.cache.open()?;
    let plan = Plan::new(&spec, &store)?;
    if a.json {
        println!("{}", plan.to_json());
        return Ok(0);
    }
    println!(
        "{:<14} {:<12} {:<14} {:<7} reason",
        "node", "kind", "key", "state"
    );
    for n in plan.nodes() {
        println!(
            "{:<14} {:<12} {:<14} {:<7} {}",
            n.name,
            n.kind.name(),
            n.key_short(),
            n.state.name(),
            n.reason.as_deref().unwrap_or("")
        );
        for note in &n.notes {
            println!("{:>16} note: {note}", "");
        }
    }
    Ok(0)
}
