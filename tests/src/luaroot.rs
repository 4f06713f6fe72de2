//! An image root that holds a working rpm: the host's `/usr/bin/rpm` with its shared-library
//! closure (found by `imagecore::boot::elf_closure`, never by running `ldd`) and the
//! `rpmrc`/`macros` files it reads, copied from the host. Enough for `rpm --eval '%{lua:…}'`
//! chrooted into the root, which is how osimage runs Lua scriptlets.

use std::path::Path;

/// Copy the host's rpm and everything it needs to start into `root`.
pub fn install_host_rpm(root: &Path) -> anyhow::Result<()> {
    let host = Path::new("/");
    let mut paths = imagecore::boot::elf_closure(host, &["/usr/bin/rpm"])?;
    for cfg in ["usr/lib/rpm/rpmrc", "usr/lib/rpm/macros"] {
        paths.push(cfg.into());
    }
    for rel in paths {
        let src = host.join(&rel);
        let dst = root.join(&rel);
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if dst.symlink_metadata().is_ok() {
            continue;
        }
        let md = std::fs::symlink_metadata(&src)?;
        if md.file_type().is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if md.is_dir() {
            std::fs::create_dir_all(&dst)?;
        } else {
            std::fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}
