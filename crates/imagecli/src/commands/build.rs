//! `osimage build SPEC`.

use std::path::PathBuf;
use std::sync::Arc;

use imagecore::Plan;
use imagecore::graph::{BuildOptions, Event};
use indicatif::{ProgressBar, ProgressStyle};

/// Arguments of `build`.
#[derive(clap::Args)]
pub struct BuildArgs {
    /// The osimage spec (TOML).
    pub spec: PathBuf,
    #[command(flatten)]
    pub cache: super::CacheArg,
    /// Nodes run at once (default: number of CPUs).
    #[arg(long, short = 'j', default_value_t = 0)]
    pub jobs: usize,
    /// Stop after this node (e.g. `install`, `postinstall`).
    #[arg(long)]
    pub target: Option<String>,
    /// Also materialise `rootimgdir/rootimg/`.
    #[arg(long)]
    pub rootimg: bool,
    /// Fail instead of re-solving when `osimage.lock` is missing or out of date.
    #[arg(long)]
    pub locked: bool,
    /// HTTP base URL that will serve rootimgdir; written into the netboot stanzas (imgurl=).
    #[arg(long)]
    pub image_url: Option<String>,
}

/// Run `build`.
pub fn run(a: BuildArgs) -> anyhow::Result<i32> {
    let spec = super::load_spec(&a.spec)?;
    let store = a.cache.open()?;
    let plan = Plan::new(&spec, &store)?;
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {elapsed} {msg}")?);
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    let b = bar.clone();
    // progress lines on the bar, or plain lines on stderr when it is hidden (not a terminal)
    let line = move |b: &ProgressBar, s: String| {
        if b.is_hidden() {
            eprintln!("{s}");
        } else {
            b.println(s);
        }
    };
    let events = Arc::new(move |e: &Event| match e {
        Event::Cached { name } => line(&b, format!("  cached  {name}")),
        Event::Started { name, .. } => b.set_message(format!("running {name}")),
        Event::Finished { name, elapsed } => line(
            &b,
            format!("  built   {name} ({:.2}s)", elapsed.as_secs_f64()),
        ),
        Event::Failed { name, .. } => line(&b, format!("  FAILED  {name}")),
    });
    let opts = BuildOptions {
        jobs: a.jobs,
        target: a.target,
        rootimg: a.rootimg,
        events: Some(events),
        locked: a.locked,
        export: imagecore::graph::ExportOptions {
            image_url: a.image_url,
        },
    };
    let res = plan.build(&opts);
    bar.finish_and_clear();
    let report = res?;
    println!(
        "{} built, {} cached; outputs in {}",
        report.built.len(),
        report.cached.len(),
        plan.rootimgdir().display()
    );
    // OSIMAGE_MEMTRACE: resident memory per node (MiB), largest sample while it ran
    for m in &report.memory {
        let mib = |k: u64| k as f64 / 1024.0;
        eprintln!(
            "memtrace {:<16} peak {:7.1} MiB (anon {:6.1} + file {:5.1} + shmem {:6.1}; max anon {:6.1}, max shmem {:6.1}) start {:6.1} end {:6.1} hwm {:6.1}{}",
            m.name,
            mib(m.peak.total),
            mib(m.peak.anon),
            mib(m.peak.file),
            mib(m.peak.shmem),
            mib(m.peak_anon),
            mib(m.peak_shmem),
            mib(m.start.total),
            mib(m.end.total),
            mib(m.end.hwm),
            if m.overlapped.is_empty() {
                String::new()
            } else {
                format!(" with {}", m.overlapped.join(","))
            }
        );
    }
    Ok(0)
}
