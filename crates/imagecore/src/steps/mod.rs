//! One file per node kind, each implementing [`crate::graph::Step`]. The graph, the cache and the
//! executor never look inside a step.

pub mod capture;
pub mod copycds;
pub mod files;
pub mod initrd;
pub mod initrd_tree;
pub mod install;
pub mod kernel;
pub mod otherpkgs;
pub mod pack;
pub mod postinstall;
pub mod repo;
pub mod resolve;
pub mod sync;
pub mod trim;
pub mod util;

use std::path::PathBuf;

/// The boot artifacts a build of `spec` writes into `rootimgdir`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootArtifacts {
    /// `rootimgdir/kernel`.
    pub kernel: PathBuf,
    /// `rootimgdir/initrd-stateless.zst`.
    pub initrd: PathBuf,
    /// `rootimgdir/rootimg.cpio.<zst|gz|xz>`.
    pub rootimg: PathBuf,
}

/// Where a build of `spec` puts its kernel, initrd and root image; an error saying what to run
/// when one is missing.
pub fn boot_artifacts(spec: &crate::spec::Spec) -> Result<BootArtifacts, crate::Error> {
    let d = &spec.image.rootimgdir;
    let a = BootArtifacts {
        kernel: d.join(kernel::KERNEL),
        initrd: d.join(initrd::INITRD),
        rootimg: d.join(format!("rootimg.cpio.{}", spec.pack.compress.suffix())),
    };
    for p in [&a.kernel, &a.initrd, &a.rootimg] {
        if !p.is_file() {
            return Err(crate::Error::Step {
                node: "test".into(),
                message: format!(
                    "{} is missing: run `osimage build {}` first (the spec needs a [kernel] section or a captured tree with a kernel)",
                    p.display(),
                    spec.file.display()
                ),
            });
        }
    }
    Ok(a)
}
