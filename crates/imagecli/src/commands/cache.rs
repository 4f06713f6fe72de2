//! `osimage cache ls|gc|verify`: inspect, clean and check the build cache.

use std::path::PathBuf;

use anyhow::Context;
use imagecore::Hash;
use imagecore::store::Store;

/// Arguments of `osimage cache`.
#[derive(clap::Args, Debug)]
pub struct CacheArgs {
    /// Cache directory (default: $OSIMAGE_CACHE, else $XDG_CACHE_HOME/osimage, else
    /// ~/.cache/osimage).
    #[arg(long, env = "OSIMAGE_CACHE", global = true)]
    pub cache_dir: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub cmd: CacheCmd,
}

/// `osimage cache` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum CacheCmd {
    /// List cached step outputs: key, size, age, content.
    Ls {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Remove outputs not named by a build record (the last build of each spec) or by --keep,
    /// then the blobs nothing kept references; compact the pack files.
    Gc {
        /// Also keep the output with this node key (hex); repeatable.
        #[arg(long = "keep", value_name = "KEY")]
        keep: Vec<String>,
    },
    /// Re-hash every blob and check every output is complete. Exits 1 on any problem.
    Verify {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

fn human(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

fn age(t: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(t);
    let s = (now - t).max(0);
    match s {
        0..=119 => format!("{s}s ago"),
        120..=7199 => format!("{}m ago", s / 60),
        7200..=172_799 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86400),
    }
}

/// Run `osimage cache …`; returns the exit code.
pub fn run(args: CacheArgs) -> anyhow::Result<i32> {
    let dir = args.cache_dir.unwrap_or_else(Store::default_dir);
    let store = Store::open(&dir).with_context(|| format!("opening cache {}", dir.display()))?;
    match args.cmd {
        CacheCmd::Ls { json } => {
            let list = store.list()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(0);
            }
            println!("{:<64}  {:>10}  {:>8}  CONTENT", "KEY", "SIZE", "AGE");
            let mut total = 0;
            for o in &list {
                let mut what: Vec<String> = o
                    .tree
                    .iter()
                    .map(|t| format!("tree {}", t.short()))
                    .collect();
                what.extend(o.artifacts.iter().cloned());
                println!(
                    "{}  {:>10}  {:>8}  {}",
                    o.key,
                    human(o.size),
                    age(o.time),
                    what.join(", ")
                );
                total += o.size;
            }
            println!(
                "{} outputs, {} referenced (before dedup)",
                list.len(),
                human(total)
            );
            Ok(0)
        }
        CacheCmd::Gc { keep } => {
            let mut keys = Vec::new();
            for k in &keep {
                keys.push(Hash::from_hex(k).with_context(|| {
                    format!("--keep {k}: not a node key (expected 64 hex digits, see `osimage cache ls`)")
                })?);
            }
            let r = store.gc(&keys)?;
            println!(
                "outputs: {} kept, {} removed; blobs: {} kept, {} removed; packs {} -> {}; {} -> {}; {} checkouts removed",
                r.outputs_kept,
                r.outputs_removed,
                r.blobs_kept,
                r.blobs_removed,
                r.packs_before,
                r.packs_after,
                human(r.bytes_before),
                human(r.bytes_after),
                r.checkouts_removed
            );
            Ok(0)
        }
        CacheCmd::Verify { json } => {
            let r = store.verify()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                for p in &r.bad_blobs {
                    println!("BAD blob {} in {}: {}", p.hash, p.path.display(), p.what);
                }
                for p in &r.incomplete_outputs {
                    println!(
                        "INCOMPLETE output {} ({}): {}",
                        p.hash,
                        p.path.display(),
                        p.what
                    );
                }
                println!(
                    "{} blobs ({}) and {} outputs checked: {}",
                    r.blobs_checked,
                    human(r.bytes_checked),
                    r.outputs_checked,
                    if r.ok() {
                        "ok"
                    } else {
                        "PROBLEMS FOUND (run `osimage cache gc` to drop damaged outputs, then rebuild)"
                    }
                );
            }
            Ok(if r.ok() { 0 } else { 1 })
        }
    }
}
