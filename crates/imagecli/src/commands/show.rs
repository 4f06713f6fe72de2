//! `osimage show SPEC`.

use std::path::PathBuf;

/// Arguments of `show`.
#[derive(clap::Args)]
pub struct ShowArgs {
    /// The osimage spec (TOML).
    pub spec: PathBuf,
}

/// Run `show`.
pub fn run(a: ShowArgs) -> anyhow::Result<i32> {
    let spec = super::load_spec(&a.spec)?;
    print!("{}", spec.to_toml());
    Ok(0)
}
