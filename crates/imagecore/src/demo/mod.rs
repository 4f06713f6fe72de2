//! `osimage demo`: a complete image build that needs no ISO and no network.
//!
//! [`write_demo`] builds a small repository of real RPMs with the `rpm` crate's builder (a
//! usrmerged filesystem skeleton, a release package, a shell, an application whose `%post`
//! runs in the image, a package depending on it), writes its repodata with our createrepo, and
//! writes a spec with an xCAT pkglist, postinstall script, synclist and exlist. The shell is the
//! build host's own `/bin/sh` (dash on Debian) with its shared-library closure, repackaged so
//! that the `%post` scriptlet has an interpreter inside the image.

mod packages;

use std::path::{Path, PathBuf};

use crate::error::Error;

pub use packages::demo_packages;

/// The files of the demo project, relative to its directory.
pub const SPEC: &str = "demo.toml";

fn write(path: &Path, text: &str) -> Result<(), Error> {
    if std::fs::read_to_string(path).ok().as_deref() == Some(text) {
        return Ok(());
    }
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
    }
    std::fs::write(path, text).map_err(|e| Error::io(path, e))
}

fn chmod_x(path: &Path) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| Error::io(path, e))
}

/// Write the demo repository and spec into `dir`; returns the spec path. Idempotent: the
/// packages are rebuilt bit-identically (fixed build time), so a second call changes nothing.
pub fn write_demo(dir: &Path) -> Result<PathBuf, Error> {
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).map_err(|e| Error::io(&repo, e))?;
    let mut changed = !repo.join("repodata/repomd.xml").is_file();
    for (name, pkg) in demo_packages()? {
        let path = repo.join(name);
        let mut bytes = Vec::new();
        pkg.write(&mut bytes).map_err(|e| Error::Step {
            node: "demo".into(),
            message: format!("{}: writing the package failed: {e}", path.display()),
        })?;
        if std::fs::read(&path).ok().as_deref() != Some(&bytes[..]) {
            std::fs::write(&path, &bytes).map_err(|e| Error::io(&path, e))?;
            changed = true;
        }
    }
    // repodata carries timestamps: rewrite it only when a package changed, so that running
    // the demo again is a pure cache hit
    if changed {
        crate::repo::createrepo(&repo, None)?;
    }
    write(
        &dir.join("compute.pkglist"),
        "# xCAT pkglist grammar: one package per line, passes, includes\n\
         demo-motd\n#NEW_INSTALL_LIST#\n# a second transaction on top of the first\ndemo-tools\n",
    )?;
    let post = dir.join("compute.postinstall");
    write(
        &post,
        "#!/bin/sh\n# xCAT calling convention: $1 = rootimg dir, $2 = osvers, $3 = arch, $4 = profile\n\
         echo \"image $IMG_NAME ($2 $3 $4) customised by postinstall\" > \"$1/etc/demo-postinstall\"\n",
    )?;
    chmod_x(&post)?;
    write(
        &dir.join("files/hosts"),
        "127.0.0.1 localhost\n10.0.0.1 mgmt\n",
    )?;
    write(&dir.join("compute.synclist"), "files/hosts -> /etc/hosts\n")?;
    write(
        &dir.join("compute.exlist"),
        "# find -path patterns, as xCAT's packimage applies them\n./usr/share/doc*\n+./usr/share/doc/demo-hello/COPYING\n",
    )?;
    let scriptlets = if rustix::process::geteuid().is_root() {
        "run"
    } else {
        "skip"
    };
    let spec = dir.join(SPEC);
    write(
        &spec,
        &format!(
            "# The osimage demo: every stage but kernel/initrd, from a repository it generated.\n\
             [osimage]\nname = \"demo\"\nosvers = \"demo1\"\narch = \"x86_64\"\nprofile = \"compute\"\n\n\
             [repos]\npkgdir = [\"repo\"]\n\n\
             [packages]\npkglist = [\"compute.pkglist\"]\n# scriptlets run chrooted in a private mount namespace (needs root)\n\
             scriptlets = \"{scriptlets}\"\n\n\
             [image]\nrootimgdir = \"build/demo\"\npostinstall = [\"compute.postinstall\"]\n\
             synclists = [\"compute.synclist\"]\nexlist = [\"compute.exlist\"]\n\n\
             [pack]\ncompress = \"zstd\"\nlevel = 3\n"
        ),
    )?;
    Ok(spec)
}
