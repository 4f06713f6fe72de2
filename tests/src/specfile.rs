//! Spec files for the tests that build images from a package repository: one common head
//! (`[osimage]` for rocky9.4/x86_64/compute, `[repos] pkgdir = ["repo"]`, `[packages] pkglist =
//! ["compute.pkglist"]`), the test's own sections after it.

use std::path::{Path, PathBuf};

/// The spec text: the common head named `name`, then `extra` (TOML sections, e.g. `[image]`).
pub fn repo_spec(name: &str, extra: &str) -> String {
    format!(
        "[osimage]\nname = \"{name}\"\nosvers = \"rocky9.4\"\narch = \"x86_64\"\nprofile = \"compute\"\n\
         \n[repos]\npkgdir = [\"repo\"]\n\n[packages]\npkglist = [\"compute.pkglist\"]\n\n{extra}"
    )
}

/// Writes [`repo_spec`] to `dir/spec.toml` and returns that path.
pub fn write_repo_spec(dir: &Path, name: &str, extra: &str) -> std::io::Result<PathBuf> {
    let spec = dir.join("spec.toml");
    std::fs::write(&spec, repo_spec(name, extra))?;
    Ok(spec)
}
