//! One file per subcommand. Shared: logging set-up, opening the store, error → exit code.

pub mod build;
pub mod cache;
pub mod copycds;
pub mod createrepo;
pub mod demo;
pub mod graph;
pub mod install;
pub mod lock;
pub mod plan;
pub mod show;
pub mod test;

use std::path::PathBuf;

use imagecore::{Spec, Store};

/// `--cache-dir` shared by the commands that use the store.
#[derive(clap::Args, Clone, Debug)]
pub struct CacheArg {
    /// Cache directory (default: $OSIMAGE_CACHE, else $XDG_CACHE_HOME/osimage).
    #[arg(long, env = "OSIMAGE_CACHE")]
    pub cache_dir: Option<PathBuf>,
}

impl CacheArg {
    /// Open the store.
    pub fn open(&self) -> Result<Store, imagecore::Error> {
        let dir = self.cache_dir.clone().unwrap_or_else(Store::default_dir);
        Ok(Store::open(&dir)?)
    }
}

/// Load a spec, turning errors into exit code 2 material.
pub fn load_spec(path: &std::path::Path) -> Result<Spec, imagecore::Error> {
    Ok(Spec::load(path)?)
}

/// Set up tracing (to stderr, without tearing progress bars).
pub fn init_logging(level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Print an error and map it to the exit code: 0 ok, 1 build failed, 2 bad spec/usage.
pub fn finish(r: anyhow::Result<i32>) -> i32 {
    match r {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            match e.downcast_ref::<imagecore::Error>() {
                Some(ie) if ie.is_usage() => 2,
                _ => 1,
            }
        }
    }
}
