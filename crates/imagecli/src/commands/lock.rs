//! `osimage lock SPEC [--json]`: solve the spec's package lists (through the build graph's
//! repo and resolve nodes, so indexes are cached) and write `osimage.lock` next to the spec.
//!
//! Without a spec, repositories and passes come from the command line:
//! `osimage lock --repo DIR [--repo DIR]... [PKG...] [--pass "PKG PKG -PKG"]... [-o osimage.lock]`.

use std::path::PathBuf;

use imagecore::repo::load_tree;
use imagecore::solve::{PassRequest, SolveRequest, solve};

/// Arguments of `osimage lock`.
#[derive(Debug, clap::Args)]
pub struct LockArgs {
    /// Package directories (searched for repodata/ like xCAT pkgdir; plain dirs are scanned).
    /// Without `--repo`, the first argument is an osimage spec.
    #[arg(long = "repo")]
    pub repos: Vec<PathBuf>,
    /// SPEC, or with `--repo` the install specs of the first pass (names, NEVRAs,
    /// `cap >= v`, /paths, @group, @^env).
    pub packages: Vec<String>,
    #[command(flatten)]
    pub cache: super::CacheArg,
    /// With SPEC: fail if the existing lock is missing or out of date instead of re-solving.
    #[arg(long)]
    pub locked: bool,
    /// A further pass (`#NEW_INSTALL_LIST#`): whitespace-separated specs, `-name` removes.
    #[arg(long = "pass")]
    pub passes: Vec<String>,
    /// Image arch.
    #[arg(long, default_value = "x86_64")]
    pub arch: String,
    /// Install weak dependencies (dnf install_weak_deps).
    #[arg(long)]
    pub weak_deps: bool,
    /// Allow multilib packages.
    #[arg(long)]
    pub multilib: bool,
    /// Package name globs to exclude.
    #[arg(long = "exclude")]
    pub excludes: Vec<String>,
    /// Print JSON instead of TOML.
    #[arg(long)]
    pub json: bool,
    /// Write the lock here instead of printing it.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
}

fn pass_of(words: &[String]) -> PassRequest {
    let mut p = PassRequest::default();
    for w in words {
        match w.strip_prefix('-') {
            Some(r) if !r.is_empty() => p.remove.push(r.to_string()),
            _ => p.install.push(w.clone()),
        }
    }
    p
}

/// Run the command.
pub fn run(args: LockArgs) -> anyhow::Result<i32> {
    if args.repos.is_empty() {
        let [spec] = args.packages.as_slice() else {
            anyhow::bail!("usage: osimage lock SPEC [--json], or osimage lock --repo DIR PKG…");
        };
        let spec = super::load_spec(std::path::Path::new(spec))?;
        let store = args.cache.open()?;
        let plan = imagecore::Plan::new(&spec, &store)?;
        let lock = plan.lock(args.locked)?;
        if args.json {
            println!("{}", lock.to_json());
        } else {
            print!("{}", lock.to_toml());
        }
        return Ok(0);
    }
    let mut repos = Vec::new();
    for (i, dir) in args.repos.iter().enumerate() {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("repo{i}"));
        repos.extend(load_tree(dir, &name)?);
    }
    let mut passes = vec![pass_of(&args.packages)];
    for p in &args.passes {
        let words: Vec<String> = p.split_whitespace().map(String::from).collect();
        passes.push(pass_of(&words));
    }
    let req = SolveRequest {
        repos: &repos,
        arch: args.arch.clone(),
        passes,
        weak_deps: args.weak_deps,
        multilib: args.multilib,
        excludes: args.excludes.clone(),
    };
    let lock = match solve(&req) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(1);
        }
    };
    let text = if args.json {
        lock.to_json()
    } else {
        lock.to_toml()
    };
    match &args.output {
        Some(path) => {
            std::fs::write(path, text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        None => print!("{text}"),
    }
    Ok(0)
}
