//! `osimage show SPEC`: print the fully resolved spec (after `extends` and defaults) as TOML.

use std::path::PathBuf;

use imagecore::Spec;

/// Arguments of `osimage show`.
#[derive(clap::Args, Debug)]
pub struct ShowArgs {
    /// The spec file (TOML).
    pub spec: PathBuf,
}

/// Print the resolved spec on stdout. Exit code 0, or 2 with the error (file:line:col) on
/// stderr when the spec is invalid.
pub fn run(args: ShowArgs) -> anyhow::Result<i32> {
    match Spec::load(&args.spec) {
        Ok(spec) => {
            print!("{}", spec.to_toml());
            Ok(0)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(2)
        }
    }
}
