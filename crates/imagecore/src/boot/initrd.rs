//! Staging the stateless initrd: our `/init` (`init/init.sh`), the image's busybox, a zstd
//! decompressor with its libraries, the decompressed modules in load order and their firmware.
//!
//! Everything user-space comes from the image root (so the initrd matches the image's
//! architecture and libc), never from the build host; only a static zstd named explicitly in
//! [`InitrdOptions::static_zstd`] is taken from outside.

use std::io::Write;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::BootError;
use super::elf::{elf_closure, resolve_in_root};
use super::kernel::KernelChoice;
use super::modinfo::{ModInfo, modinfo, module_name, read_module, uncompressed_rel};
use super::modules::DriverSet;

/// The `/init` program of every osimage initrd (busybox sh; documented in its header).
pub const INIT_SCRIPT: &str = include_str!("init/init.sh");
/// The udhcpc event script the init uses for `ip=dhcp`.
const UDHCPC_SCRIPT: &str = include_str!("init/udhcpc.script");

/// What goes into the initrd besides the kernel's modules tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitrdOptions {
    /// Default tmpfs size for the root (`rootlimit=` on the command line overrides it), e.g.
    /// `80%` or `4G`.
    pub rootlimit: String,
    /// The modules (from [`super::module_closure`]) to load, in order.
    pub drivers: DriverSet,
    /// A static zstd binary on the build host, used when the image has no `zstd`.
    pub static_zstd: Option<PathBuf>,
    /// More binaries from the image to copy with their libraries (names or absolute paths).
    pub extra_binaries: Vec<String>,
}

impl Default for InitrdOptions {
    fn default() -> Self {
        InitrdOptions {
            rootlimit: "80%".to_string(),
            drivers: DriverSet::default(),
            static_zstd: None,
            extra_binaries: Vec::new(),
        }
    }
}

/// Where the image keeps busybox, in search order.
const BUSYBOX_PATHS: [&str; 4] = [
    "/usr/bin/busybox",
    "/usr/sbin/busybox",
    "/bin/busybox",
    "/sbin/busybox",
];

/// Fill `staging` (created if needed; should be empty) with the initrd tree for `kernel`.
pub fn stage_initrd(
    root: &Path,
    kernel: &KernelChoice,
    opts: &InitrdOptions,
    staging: &Path,
) -> Result<(), BootError> {
    if opts.rootlimit.is_empty()
        || !opts
            .rootlimit
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '%')
    {
        return Err(BootError::BadOption {
            option: "rootlimit".into(),
            value: opts.rootlimit.clone(),
            why: "must be a tmpfs size such as 80%, 2G or 512m".into(),
        });
    }
    mkdir(staging)?;
    // usrmerge links as in the image (bin -> usr/bin ...), real directories otherwise
    for top in ["bin", "sbin", "lib", "lib64"] {
        let src = root.join(top);
        match std::fs::symlink_metadata(&src) {
            Ok(m) if m.file_type().is_symlink() => {
                let t = std::fs::read_link(&src).map_err(|e| BootError::io(&src, e))?;
                let rel = t.to_string_lossy().trim_start_matches('/').to_string();
                mkdir(&staging.join(&rel))?;
                link(&rel, &staging.join(top))?;
            }
            _ => mkdir(&staging.join(top))?,
        }
    }
    for d in [
        "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "run", "tmp", "newroot",
    ] {
        mkdir(&staging.join(d))?;
    }

    let busybox = BUSYBOX_PATHS
        .iter()
        .find(|p| resolve_in_root(root, p).is_some_and(|(_, f)| root.join(f).is_file()))
        .ok_or_else(|| BootError::NoBusybox {
            root: root.to_path_buf(),
        })?;
    copy_closure(root, &[busybox], staging)?;
    if !staging.join("bin/busybox").exists() {
        let (_, real) = resolve_in_root(root, busybox).ok_or_else(|| BootError::NoBusybox {
            root: root.to_path_buf(),
        })?;
        copy_file(&root.join(real), &staging.join("bin/busybox"))?;
    }
    if std::fs::symlink_metadata(staging.join("bin/sh")).is_err() {
        link("busybox", &staging.join("bin/sh"))?;
    }

    let zstd_in_image = ["/usr/bin/zstd", "/bin/zstd"]
        .into_iter()
        .find(|p| resolve_in_root(root, p).is_some_and(|(_, f)| root.join(f).is_file()));
    match (zstd_in_image, &opts.static_zstd) {
        (Some(z), _) => copy_closure(root, &[z], staging)?,
        (None, Some(host)) => copy_file(host, &staging.join("usr/bin/zstd"))?,
        (None, None) => tracing::warn!(
            root = %root.display(),
            "the image has no zstd: this initrd can unpack gzip, xz and plain cpio root images only"
        ),
    }
    let extra: Vec<&str> = opts.extra_binaries.iter().map(String::as_str).collect();
    copy_closure(root, &extra, staging)?;

    write_file(&staging.join("init"), INIT_SCRIPT.as_bytes(), 0o755)?;
    write_file(
        &staging.join("etc/udhcpc.script"),
        UDHCPC_SCRIPT.as_bytes(),
        0o755,
    )?;
    write_file(
        &staging.join("etc/initrd.conf"),
        format!(
            "# defaults of this initrd (the kernel command line overrides them)\nrootlimit={}\n",
            opts.rootlimit
        )
        .as_bytes(),
        0o644,
    )?;

    // modules, decompressed (busybox insmod reads plain .ko), in load order
    let kdir = staging.join("lib/modules").join(&kernel.version);
    mkdir(&kdir)?;
    let mut rels = Vec::new();
    for m in &opts.drivers.modules {
        let rel = m
            .strip_prefix(&kernel.modules_dir)
            .map_err(|_| BootError::Module {
                path: m.clone(),
                message: format!(
                    "not under the kernel's modules dir {}",
                    kernel.modules_dir.display()
                ),
            })?;
        rels.push((m.clone(), uncompressed_rel(&rel.to_string_lossy())));
    }
    let infos: Vec<ModInfo> = rels
        .par_iter()
        .map(|(src, rel)| -> Result<ModInfo, BootError> {
            let data = read_module(src)?;
            let dst = kdir.join(rel);
            if let Some(p) = dst.parent() {
                mkdir(p)?;
            }
            write_file(&dst, &data, 0o644)?;
            modinfo(src, &data)
        })
        .collect::<Result<_, _>>()?;
    write_depmod(&kdir, &rels, &infos)?;
    let mut list = format!("# kernel {}\n", kernel.version);
    for (_, rel) in &rels {
        list.push_str(rel);
        list.push('\n');
    }
    write_file(&staging.join("etc/initrd-modules"), list.as_bytes(), 0o644)?;

    let fw_root = kernel
        .modules_dir
        .parent()
        .and_then(Path::parent)
        .map(|l| l.join("firmware"));
    for fw in &opts.drivers.firmware {
        let rel = fw_root
            .as_ref()
            .and_then(|r| fw.strip_prefix(r).ok())
            .ok_or_else(|| BootError::Module {
                path: fw.clone(),
                message: "firmware file is not under lib/firmware".into(),
            })?;
        let dst = staging.join("lib/firmware").join(rel);
        if let Some(p) = dst.parent() {
            mkdir(p)?;
        }
        copy_file(fw, &dst)?;
    }
    Ok(())
}

/// The root-relative paths (files and the symlinks met on the way) that [`stage_initrd`] reads
/// from `root` besides the kernel's modules and firmware: the usrmerge links `bin sbin lib
/// lib64`, busybox, zstd and `opts.extra_binaries` with their shared-library closure, and the
/// `ld.so.conf` files the closure was resolved with. A root holding just these (and the
/// modules) stages the same initrd; the `initrd-inputs` node publishes exactly that subset.
pub fn initrd_root_paths(root: &Path, opts: &InitrdOptions) -> Result<Vec<PathBuf>, BootError> {
    let mut out: Vec<PathBuf> = Vec::new();
    for top in ["bin", "sbin", "lib", "lib64"] {
        if std::fs::symlink_metadata(root.join(top)).is_ok_and(|m| m.file_type().is_symlink()) {
            out.push(PathBuf::from(top));
        }
    }
    let busybox = BUSYBOX_PATHS
        .iter()
        .find(|p| resolve_in_root(root, p).is_some_and(|(_, f)| root.join(f).is_file()))
        .ok_or_else(|| BootError::NoBusybox {
            root: root.to_path_buf(),
        })?;
    let mut bins: Vec<&str> = vec![busybox];
    if let Some(z) = ["/usr/bin/zstd", "/bin/zstd"]
        .into_iter()
        .find(|p| resolve_in_root(root, p).is_some_and(|(_, f)| root.join(f).is_file()))
    {
        bins.push(z);
    }
    bins.extend(opts.extra_binaries.iter().map(String::as_str));
    out.extend(elf_closure(root, &bins)?);
    for f in ["/etc/ld.so.conf", "/etc/ld.so.conf.d"] {
        if let Some((links, real)) = resolve_in_root(root, f) {
            out.extend(links);
            let abs = root.join(&real);
            if abs.is_dir() {
                for e in walkdir::WalkDir::new(&abs).sort_by_file_name() {
                    let e = e.map_err(|e| BootError::io(&abs, std::io::Error::other(e)))?;
                    if let Ok(rel) = e.path().strip_prefix(root)
                        && !e.file_type().is_dir()
                    {
                        out.push(rel.to_path_buf());
                    }
                }
            } else if abs.is_file() {
                out.push(real);
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Our depmod for the initrd's subset: `modules.dep` (transitive dependencies, nearest first,
/// as depmod writes them) and `modules.alias`, so that the kernel's `request_module` (through
/// busybox `/sbin/modprobe`) finds the modules that are there.
fn write_depmod(
    kdir: &Path,
    rels: &[(PathBuf, String)],
    infos: &[ModInfo],
) -> Result<(), BootError> {
    let mut by_name = std::collections::HashMap::new();
    for ((_, rel), info) in rels.iter().zip(infos) {
        if let Some(n) = rel.rsplit('/').next().and_then(module_name) {
            by_name.insert(n, (rel.as_str(), info));
        }
    }
    fn walk<'a>(
        n: &str,
        by_name: &std::collections::HashMap<String, (&'a str, &'a ModInfo)>,
        seen: &mut std::collections::HashSet<String>,
        out: &mut Vec<&'a str>,
    ) {
        let Some((rel, info)) = by_name.get(n) else {
            return;
        };
        if !seen.insert(n.to_string()) {
            return;
        }
        for d in &info.depends {
            walk(d, by_name, seen, out);
        }
        out.push(rel);
    }
    let mut dep = String::new();
    let mut alias = String::from("# Aliases extracted from modules themselves.\n");
    for ((_, rel), info) in rels.iter().zip(infos) {
        let mut order = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for d in &info.depends {
            walk(d, &by_name, &mut seen, &mut order);
        }
        order.reverse();
        dep.push_str(&format!("{rel}:"));
        for d in order {
            dep.push(' ');
            dep.push_str(d);
        }
        dep.push('\n');
        if let Some(n) = rel.rsplit('/').next().and_then(module_name) {
            for a in &info.alias {
                alias.push_str(&format!("alias {a} {n}\n"));
            }
        }
    }
    write_file(&kdir.join("modules.dep"), dep.as_bytes(), 0o644)?;
    write_file(&kdir.join("modules.alias"), alias.as_bytes(), 0o644)
}

/// A `/bin/sh` init for `osimage test`: prints what it sees, then `marker`, and powers off.
/// `show` names files of the image whose content it prints (e.g. a postinstall stamp).
pub fn test_init_script(marker: &str, show: &[&str]) -> String {
    let mut s = String::from(
        "#!/bin/sh\n# osimage test init: proves the root image booted, prints the marker, powers off.\n\
         export PATH=/usr/sbin:/usr/bin:/sbin:/bin\n\
         mount -t proc proc /proc 2>/dev/null\n\
         mount -t sysfs sysfs /sys 2>/dev/null\n\
         echo \"osimage-test: booted kernel $(uname -r), / is $(awk '$2==\"/\"{print $3}' /proc/mounts | tail -n1)\"\n\
         [ -f /etc/os-release ] && . /etc/os-release && echo \"osimage-test: $PRETTY_NAME\"\n\
         if [ -e /sbin/init ] || [ -L /sbin/init ]; then echo 'osimage-test: /sbin/init present'; else echo 'osimage-test: WARNING no /sbin/init'; fi\n",
    );
    for f in show {
        let q = shell_quote(f);
        s.push_str(&format!(
            "echo \"osimage-test: {f}: $(cat {q} 2>&1)\"\n",
            f = f.replace(['"', '$', '`', '\\'], "_")
        ));
    }
    s.push_str(&format!(
        "echo {}\nsync\npoweroff -f\n",
        shell_quote(marker)
    ));
    s
}

/// Write `initrd` + a second (zstd newc) archive holding `/osimage/test-init` = `script` to
/// `out`. The kernel unpacks both; the `/init` then runs the script as the root's init.
pub fn with_test_init(initrd: &Path, script: &str, out: &Path) -> Result<(), BootError> {
    let t = tempfile::tempdir().map_err(|e| BootError::io(std::env::temp_dir(), e))?;
    mkdir(&t.path().join("osimage"))?;
    write_file(
        &t.path().join("osimage/test-init"),
        script.as_bytes(),
        0o755,
    )?;
    let extra = t.path().join("extra.zst");
    super::pack::pack_initrd(t.path(), &extra, 3)?;
    let mut data = std::fs::read(initrd).map_err(|e| BootError::io(initrd, e))?;
    while data.len() % 4 != 0 {
        data.push(0); // the kernel skips zero padding between archives
    }
    data.extend(std::fs::read(&extra).map_err(|e| BootError::io(&extra, e))?);
    let mut f = std::fs::File::create(out).map_err(|e| BootError::io(out, e))?;
    f.write_all(&data).map_err(|e| BootError::io(out, e))
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Copy the ELF closure of `binaries` (inside `root`) into `staging`, symlinks as symlinks.
fn copy_closure(root: &Path, binaries: &[&str], staging: &Path) -> Result<(), BootError> {
    if binaries.is_empty() {
        return Ok(());
    }
    for rel in elf_closure(root, binaries)? {
        let src = root.join(&rel);
        let dst = staging.join(&rel);
        if std::fs::symlink_metadata(&dst).is_ok() {
            continue;
        }
        if let Some(p) = dst.parent() {
            mkdir(p)?;
        }
        let meta = std::fs::symlink_metadata(&src).map_err(|e| BootError::io(&src, e))?;
        if meta.file_type().is_symlink() {
            let t = std::fs::read_link(&src).map_err(|e| BootError::io(&src, e))?;
            link(&t.to_string_lossy(), &dst)?;
        } else {
            copy_file(&src, &dst)?;
        }
    }
    Ok(())
}

fn mkdir(p: &Path) -> Result<(), BootError> {
    std::fs::create_dir_all(p).map_err(|e| BootError::io(p, e))
}

fn link(target: &str, at: &Path) -> Result<(), BootError> {
    symlink(target, at).map_err(|e| BootError::io(at, e))
}

fn copy_file(src: &Path, dst: &Path) -> Result<(), BootError> {
    std::fs::copy(src, dst).map_err(|e| BootError::io(src, e))?;
    let mode = std::fs::metadata(src)
        .map_err(|e| BootError::io(src, e))?
        .permissions()
        .mode();
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(mode & 0o7777))
        .map_err(|e| BootError::io(dst, e))
}

fn write_file(p: &Path, data: &[u8], mode: u32) -> Result<(), BootError> {
    std::fs::write(p, data).map_err(|e| BootError::io(p, e))?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .map_err(|e| BootError::io(p, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_script_is_valid_sh() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("init");
        std::fs::write(&p, INIT_SCRIPT).unwrap();
        let st = std::process::Command::new("sh")
            .arg("-n")
            .arg(&p)
            .status()
            .unwrap();
        assert!(st.success());
        let q = t.path().join("test-init");
        std::fs::write(&q, test_init_script("MARK'X", &["/etc/a b"])).unwrap();
        let st = std::process::Command::new("sh")
            .arg("-n")
            .arg(&q)
            .status()
            .unwrap();
        assert!(st.success());
    }

    #[test]
    fn no_busybox_and_bad_rootlimit() {
        let t = tempfile::tempdir().unwrap();
        let k = KernelChoice {
            version: "1".into(),
            vmlinuz: t.path().join("boot/vmlinuz-1"),
            modules_dir: t.path().join("lib/modules/1"),
        };
        let st = t.path().join("staging");
        let e = stage_initrd(t.path(), &k, &InitrdOptions::default(), &st).unwrap_err();
        assert!(matches!(e, BootError::NoBusybox { .. }), "{e}");
        assert!(e.to_string().contains("has no busybox"));
        let o = InitrdOptions {
            rootlimit: "1G; rm -rf /".into(),
            ..Default::default()
        };
        assert!(matches!(
            stage_initrd(t.path(), &k, &o, &st),
            Err(BootError::BadOption { .. })
        ));
    }
}
