//! Fixtures for the kernel/initrd tests beyond the mini distro: a spec directory around the mini
//! distro's RPMs (repo made with `createrepo_c`, pkglist, postinstall, `[kernel]` lines of the
//! caller's choice), and a driver update RPM made with `rpmbuild` that carries an altered copy
//! of the Debian kernel's `virtio_net.ko` in `extra/`: its `description=` rewritten to
//! [`DRIVER_DESCRIPTION`] (to find it in an initrd) and its signature stripped, so a booted
//! kernel loads it as an unsigned module and `/sys/module/virtio_net/taint` shows `E` (the
//! original, signed module shows no taint).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::minidistro::{MiniDistro, cache_root};

/// The `description` of the driver update's virtio_net (as long as the real one).
pub const DRIVER_DESCRIPTION: &str = "osimage driver update";

/// The driver update RPM (`kmod-virtio-net-osimage`), built once into the fixture cache.
pub fn driver_rpm(md: &MiniDistro) -> anyhow::Result<PathBuf> {
    let dir = cache_root().join("driverrpm-v1");
    let rpm = dir.join("kmod-virtio-net-osimage-1.0-1.x86_64.rpm");
    if rpm.is_file() {
        return Ok(rpm);
    }
    let tmp = cache_root().join(format!("driverrpm-v1.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(tmp.join("src"))?;
    // the real module out of the plain kernel RPM
    let member = format!("./lib/modules/{}/kernel/drivers/net/virtio_net.ko", md.kver);
    let st = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -eo pipefail; cd '{}' && rpm2cpio '{}' | cpio -id --quiet '{member}'",
            tmp.join("src").display(),
            md.kernel.display()
        ))
        .status()?;
    if !st.success() {
        bail!("extracting {member} from {} failed", md.kernel.display());
    }
    let ko = tmp.join("src").join(member.trim_start_matches("./"));
    let data = std::fs::read(&ko).with_context(|| ko.display().to_string())?;
    std::fs::write(tmp.join("virtio_net.ko"), alter_module(&data)?)?;
    let spec = format!(
        r#"%global debug_package %{{nil}}
%global __os_install_post %{{nil}}
%global _build_id_links none
Name: kmod-virtio-net-osimage
Version: 1.0
Release: 1
Summary: altered virtio_net for kernel {kver} (osimage driver update fixture)
License: GPL-2.0-only
AutoReqProv: no
%description
virtio_net.ko described as {DRIVER_DESCRIPTION}, unsigned, in extra/.
%install
mkdir -p %{{buildroot}}/lib/modules/{kver}/extra
install -m 0644 {src} %{{buildroot}}/lib/modules/{kver}/extra/virtio_net.ko
%files
/lib/modules/{kver}/extra/virtio_net.ko
"#,
        kver = md.kver,
        src = tmp.join("virtio_net.ko").display()
    );
    std::fs::write(tmp.join("kmod.spec"), spec)?;
    let top = tmp.join("rpmbuild");
    let out = Command::new("rpmbuild")
        .arg("-bb")
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .arg("--define")
        .arg(format!("_rpmdir {}", tmp.display()))
        .arg("--define")
        .arg("_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm")
        .arg(tmp.join("kmod.spec"))
        .output()?;
    if !out.status.success() {
        bail!("rpmbuild: {}", String::from_utf8_lossy(&out.stderr));
    }
    let _ = std::fs::remove_dir_all(&top);
    let _ = std::fs::remove_dir_all(tmp.join("src"));
    if std::fs::rename(&tmp, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    Ok(rpm)
}

/// Strip a module's appended signature and rewrite its `description=` value.
pub fn alter_module(data: &[u8]) -> anyhow::Result<Vec<u8>> {
    const MAGIC: &[u8] = b"~Module signature appended~\n";
    let mut d = data.to_vec();
    if d.ends_with(MAGIC) {
        // struct module_signature (12 bytes) precedes the magic; sig_len is its last field
        let end = d.len() - MAGIC.len();
        let sig_len = u32::from_be_bytes(d[end - 4..end].try_into()?) as usize;
        let cut = end - 12 - sig_len;
        d.truncate(cut);
    }
    let key = b"description=";
    let pos = d
        .windows(key.len())
        .position(|w| w == key)
        .context("no description= in the module")?;
    let start = pos + key.len();
    let len = d[start..]
        .iter()
        .position(|b| *b == 0)
        .context("description")?;
    if len != DRIVER_DESCRIPTION.len() {
        bail!(
            "description is {len} characters, expected {}",
            DRIVER_DESCRIPTION.len()
        );
    }
    d[start..start + len].copy_from_slice(DRIVER_DESCRIPTION.as_bytes());
    Ok(d)
}

/// Write a spec directory into `dir`: `repo/` (filesystem, busybox, zstd, stateless-init and,
/// with `pkglist_kernel`, the plain kernel) indexed with createrepo_c, `compute.pkglist`,
/// `compute.postinstall` (writes `/etc/postinstall.stamp` with `stamp`), and `spec.toml` whose
/// `[kernel]` section holds `kernel_lines`.
pub fn write_spec_dir(
    md: &MiniDistro,
    dir: &Path,
    pkglist_kernel: bool,
    kernel_lines: &str,
    stamp: &str,
) -> anyhow::Result<()> {
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo)?;
    let mut rpms = vec![&md.filesystem, &md.busybox, &md.zstd, &md.stateless_init];
    if pkglist_kernel {
        rpms.push(&md.kernel);
    }
    for p in rpms {
        let dst = repo.join(p.file_name().context("rpm name")?);
        if !dst.exists() {
            std::fs::copy(p, dst)?;
        }
    }
    if !repo.join("repodata").exists() {
        let st = Command::new("createrepo_c").arg("-q").arg(&repo).status()?;
        if !st.success() {
            bail!("createrepo_c failed");
        }
    }
    let mut pkgs = "filesystem\nbusybox\nzstd\nstateless-init\n".to_string();
    if pkglist_kernel {
        pkgs.push_str("kernel\n");
    }
    std::fs::write(dir.join("compute.pkglist"), pkgs)?;
    write_postinstall(dir, stamp)?;
    crate::specfile::write_repo_spec(
        dir,
        "kernelspec",
        &format!(
            "[kernel]\n{kernel_lines}\n\n[image]\nrootimgdir = \"out\"\npostinstall = [\"compute.postinstall\"]\n"
        ),
    )?;
    Ok(())
}

/// (Re)write `compute.postinstall` so that it stamps `stamp` into `/etc/postinstall.stamp`.
pub fn write_postinstall(dir: &Path, stamp: &str) -> anyhow::Result<()> {
    let p = dir.join("compute.postinstall");
    std::fs::write(
        &p,
        format!("#!/bin/sh\necho '{stamp}' > \"$1/etc/postinstall.stamp\"\n"),
    )?;
    let st = Command::new("chmod").arg("755").arg(&p).status()?;
    if !st.success() {
        bail!("chmod failed");
    }
    Ok(())
}

/// The output of node `node` for the current inputs of `spec` (in cache `cache`).
pub fn node_output(
    spec: &Path,
    cache: &Path,
    node: &str,
) -> anyhow::Result<imagecore::graph::step::Output> {
    let s = imagecore::Spec::load(spec)?;
    let store = imagecore::store::Store::open(cache)?;
    let plan = imagecore::Plan::new(&s, &store)?;
    let row = plan
        .nodes()
        .iter()
        .find(|n| n.name == node)
        .with_context(|| format!("no node {node}"))?;
    let key = row
        .key
        .with_context(|| format!("{node} waits for a parent to be built"))?;
    let out = store
        .get_output(&key)?
        .with_context(|| format!("{node} not built"))?;
    Ok(out)
}

/// Unpack `file` (a zstd newc initrd) with the zstd CLI and GNU cpio into `dest`.
pub fn unpack_initrd(file: &Path, dest: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dest)?;
    let st = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -eo pipefail; cd '{}' && zstd -dc '{}' | cpio -id --quiet",
            dest.display(),
            file.display()
        ))
        .status()?;
    if !st.success() {
        bail!("unpacking {} failed", file.display());
    }
    Ok(())
}
