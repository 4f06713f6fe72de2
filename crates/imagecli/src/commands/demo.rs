//! `osimage demo [DIR]`: generate a demo repository of real RPMs and a spec, build the image,
//! show the plan before and after, rebuild to show the cache, and say where the archive is.

use std::path::PathBuf;

use imagecore::Plan;
use imagecore::graph::{BuildOptions, NodeState};

/// Arguments of `demo`.
#[derive(clap::Args)]
pub struct DemoArgs {
    /// Where to write the demo project (default: ./osimage-demo).
    #[arg(default_value = "osimage-demo")]
    pub dir: PathBuf,
    /// Cache directory (default: DIR/cache).
    #[arg(long, env = "OSIMAGE_CACHE")]
    pub cache_dir: Option<PathBuf>,
}

fn show(plan: &Plan<'_>) {
    for n in plan.nodes() {
        let state = match (n.state, &n.reason) {
            (NodeState::Cached, _) | (_, None) => n.state.name().to_string(),
            (s, Some(why)) => format!("{}: {why}", s.name()),
        };
        println!(
            "  {:<12} {:<12} {}  {state}",
            n.name,
            n.kind.name(),
            n.key_short()
        );
    }
}

/// Run `demo`.
pub fn run(a: DemoArgs) -> anyhow::Result<i32> {
    std::fs::create_dir_all(&a.dir)?;
    let spec_path = imagecore::demo::write_demo(&a.dir)?;
    println!("demo project written to {}", a.dir.display());
    let spec = super::load_spec(&spec_path)?;
    let cache = a.cache_dir.unwrap_or_else(|| a.dir.join("cache"));
    let store = imagecore::Store::open(&cache)?;

    let plan = Plan::new(&spec, &store)?;
    println!("\nplan:");
    show(&plan);
    let t0 = std::time::Instant::now();
    let r = plan.build(&BuildOptions::default())?;
    println!(
        "\nbuilt {} nodes ({} cached) in {:.2} s",
        r.built.len(),
        r.cached.len(),
        t0.elapsed().as_secs_f64()
    );

    let again = Plan::new(&spec, &store)?;
    let t1 = std::time::Instant::now();
    let r2 = again.build(&BuildOptions::default())?;
    println!(
        "rebuild: {} built, {} cached in {:.3} s — nothing changed, nothing ran",
        r2.built.len(),
        r2.cached.len(),
        t1.elapsed().as_secs_f64()
    );
    println!("\nplan now:");
    show(&again);
    let archive = spec.image.rootimgdir.join("rootimg.cpio.zst");
    let size = std::fs::metadata(&archive)?.len();
    println!(
        "\nroot image: {} ({} bytes)\nlock: {}\nlook inside: zstd -dc {} | cpio -t",
        archive.display(),
        size,
        spec.dir.join("osimage.lock").display(),
        archive.display()
    );
    Ok(0)
}
