//! `osimage createrepo DIR [--comps FILE]`: write repodata for a directory of RPMs.

use std::path::PathBuf;

/// Arguments of `osimage createrepo`.
#[derive(Debug, clap::Args)]
pub struct CreaterepoArgs {
    /// Directory holding the .rpm files (searched recursively).
    pub dir: PathBuf,
    /// comps XML to include as the group metadata.
    #[arg(long, short = 'g')]
    pub comps: Option<PathBuf>,
}

/// Run the command.
pub fn run(args: CreaterepoArgs) -> anyhow::Result<i32> {
    imagecore::repo::createrepo(&args.dir, args.comps.as_deref())?;
    let idx = imagecore::repo::load_repo(&args.dir, "repo")?;
    println!(
        "{}: {} packages, {}",
        args.dir.display(),
        idx.packages.len(),
        idx.checksum
    );
    Ok(0)
}
