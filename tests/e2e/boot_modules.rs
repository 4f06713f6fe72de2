//! Module closure against kmod's `modprobe --show-depends -d ROOT -S KVER MOD` (one module per
//! call) on the same installed kernel tree: the Debian kernel without modules.dep (our own
//! modinfo scan; modprobe gets a depmod run afterwards) and the `.ko.xz` kernel with modules.dep.
//! Also the kernel choice on the installed tree and the missing-driver errors.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::process::Command;

use imagecore::boot;
use osimage_e2e::minidistro::{self, KernelVariant};
use osimage_e2e::{require, tools};

const DRIVERS: [&str; 13] = [
    "virtio_blk",
    "virtio_net",
    "e1000",
    "tg3",
    "bnx2x",
    "mlx4_en",
    "igb",
    "ext4",
    "xfs",
    "nvme",
    "ahci",
    "nfs",
    "btrfs",
];
/// What we add to virtio device drivers on purpose (the PCI transport, bound only via alias).
const VIRTIO_EXTRA: [&str; 3] = [
    "virtio_pci",
    "virtio_pci_modern_dev",
    "virtio_pci_legacy_dev",
];

fn name_of(p: &str) -> String {
    let f = p.rsplit('/').next().unwrap();
    let f = f.split(".ko").next().unwrap();
    f.replace('-', "_")
}

/// modprobe's load list for one module: names in order.
fn modprobe(root: &Path, kver: &str, m: &str) -> Vec<String> {
    let out = Command::new("modprobe")
        .args(["--show-depends", "-d"])
        .arg(root)
        .args(["-S", kver, m])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "modprobe {m}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("insmod "))
        .map(|l| name_of(l.split_whitespace().next().unwrap()))
        .collect()
}

fn compare(root: &Path, kver: &str, modules_dir: &Path, label: &str) {
    for m in DRIVERS {
        let ours = boot::module_closure(modules_dir, &[], &[m.to_string()]).unwrap();
        let ours: Vec<String> = ours
            .modules
            .iter()
            .map(|p| name_of(&p.to_string_lossy()))
            .collect();
        let theirs = modprobe(root, kver, m);
        let a: BTreeSet<&str> = ours.iter().map(String::as_str).collect();
        let b: BTreeSet<&str> = theirs.iter().map(String::as_str).collect();
        let extra: BTreeSet<&str> = a.difference(&b).copied().collect();
        let missing: BTreeSet<&str> = b.difference(&a).copied().collect();
        assert!(
            missing.is_empty(),
            "{label} {m}: modprobe loads {missing:?} that we do not\nours {ours:?}\nmodprobe {theirs:?}"
        );
        let allowed: HashSet<&str> = match m {
            m if m.starts_with("virtio_") => VIRTIO_EXTRA.into(),
            // btrfs has four `softdep=pre:` entries (blake2b-256, sha256, xxhash64, crc32c);
            // kmod applies only the last one (first match in its prepended config list), we
            // load all of them on purpose
            "btrfs" => ["sha256_ssse3", "xxhash_generic", "blake2b_generic"].into(),
            _ => HashSet::new(),
        };
        assert!(
            extra.iter().all(|e| allowed.contains(e)),
            "{label} {m}: we load {extra:?} that modprobe does not"
        );
        // load order: what modprobe loads before X is before X in our list too
        for (i, x) in ours.iter().enumerate() {
            let list = modprobe(root, kver, x);
            let pos = list.iter().position(|n| n == x).unwrap();
            for pre in &list[..pos] {
                assert!(
                    ours[..i].contains(pre),
                    "{label} {m}: {pre} must load before {x}: {ours:?}"
                );
            }
        }
        eprintln!("{label} {m}: {} modules, same set as modprobe", ours.len());
    }
}

fn installed(variant: KernelVariant) -> (tempfile::TempDir, minidistro::MiniDistro) {
    let md = minidistro::build().unwrap();
    let t = tempfile::tempdir().unwrap();
    minidistro::install(&md, t.path(), variant, false, true).unwrap();
    (t, md)
}

fn preconditions() -> bool {
    tools::is_root() && minidistro::TOOLS.iter().all(|t| tools::have(t)) && tools::have("modprobe")
}

#[test]
fn closure_matches_modprobe_plain_kernel_without_modules_dep() {
    require!(
        preconditions(),
        "needs root, rpmbuild, rpm, apt-get, dpkg-deb, depmod, xz, modprobe"
    );
    let (t, md) = installed(KernelVariant::Plain);
    let k = boot::select_kernel(t.path(), None, None).unwrap();
    assert_eq!(k.version, md.kver);
    assert!(!k.modules_dir.join("modules.dep").exists());
    // our closure first (own scan), kept, then depmod for modprobe's sake
    let ours: Vec<_> = DRIVERS
        .iter()
        .map(|m| boot::module_closure(&k.modules_dir, &[], &[m.to_string()]).unwrap())
        .collect();
    let st = Command::new("depmod")
        .arg("-b")
        .arg(t.path())
        .arg(&md.kver)
        .status()
        .unwrap();
    assert!(st.success());
    for (m, o) in DRIVERS.iter().zip(&ours) {
        let after = boot::module_closure(&k.modules_dir, &[], &[m.to_string()]).unwrap();
        let a: BTreeSet<_> = o.modules.iter().collect();
        let b: BTreeSet<_> = after.modules.iter().collect();
        assert_eq!(a, b, "{m}: own scan and modules.dep disagree");
    }
    compare(t.path(), &md.kver, &k.modules_dir, "plain");
}

#[test]
fn closure_matches_modprobe_xz_kernel_with_modules_dep() {
    require!(
        preconditions(),
        "needs root, rpmbuild, rpm, apt-get, dpkg-deb, depmod, xz, modprobe"
    );
    let (t, md) = installed(KernelVariant::Xz);
    let k = boot::select_kernel(t.path(), None, None).unwrap();
    assert!(k.modules_dir.join("modules.dep").exists());
    compare(t.path(), &md.kver, &k.modules_dir, "xz");
}

#[test]
fn driver_errors_and_defaults() {
    require!(
        preconditions(),
        "needs root, rpmbuild, rpm, apt-get, dpkg-deb, depmod, xz, modprobe"
    );
    let (t, md) = installed(KernelVariant::Plain);
    let k = boot::select_kernel(t.path(), Some(&md.kver), None).unwrap();
    let e = boot::module_closure(&k.modules_dir, &[], &["e1000".into(), "no_such_nic".into()])
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, boot::BootError::MissingDrivers { .. }), "{msg}");
    assert!(
        msg.contains("no_such_nic") && !msg.contains("e1000 "),
        "{msg}"
    );
    // a missing default is a warning, not an error; built-in names count as present
    let wanted: Vec<String> = ["e1000", "ehea", "mlx_en"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let d = boot::module_closure(&k.modules_dir, &wanted, &[]).unwrap();
    assert_eq!(
        d.missing_default,
        vec!["ehea".to_string(), "mlx_en".to_string()]
    );
    assert_eq!(d.modules.len(), 1);
    // a kernel asked for by -k that is not there
    let e = boot::select_kernel(t.path(), Some("5.14.0-70.el9.x86_64"), None).unwrap_err();
    assert!(e.to_string().contains(&md.kver), "{e}");
    // firmware named by modinfo is taken only when the image has it (tg3 names tigon/*.bin)
    let d = boot::module_closure(&k.modules_dir, &[], &["tg3".into()]).unwrap();
    assert!(d.firmware.is_empty());
    let fw = t.path().join("usr/lib/firmware/tigon/tg3_tso5.bin");
    std::fs::create_dir_all(fw.parent().unwrap()).unwrap();
    std::fs::write(&fw, b"fw").unwrap();
    let d = boot::module_closure(&k.modules_dir, &[], &["tg3".into()]).unwrap();
    assert_eq!(d.firmware.len(), 1, "{:?}", d.firmware);
    assert!(d.firmware[0].ends_with("firmware/tigon/tg3_tso5.bin"));
    let staging = tempfile::tempdir().unwrap();
    let opts = boot::InitrdOptions {
        drivers: d,
        ..Default::default()
    };
    boot::stage_initrd(t.path(), &k, &opts, staging.path()).unwrap();
    assert!(
        staging
            .path()
            .join("lib/firmware/tigon/tg3_tso5.bin")
            .is_file()
    );
    assert!(staging.path().join("usr/bin/busybox").is_file());
    let dep = std::fs::read_to_string(
        staging
            .path()
            .join(format!("lib/modules/{}/modules.dep", md.kver)),
    )
    .unwrap();
    assert!(
        dep.contains(
            "kernel/drivers/net/ethernet/broadcom/tg3.ko: kernel/drivers/net/phy/libphy.ko"
        ),
        "{dep}"
    );
    // the image has no zstd here: the initrd is still built (gzip/xz/cpio root images only)
    assert!(!staging.path().join("usr/bin/zstd").exists());

    // an image without busybox: a clear error naming the root
    let nobb = tempfile::tempdir().unwrap();
    minidistro::install(&md, nobb.path(), KernelVariant::Plain, true, false).unwrap();
    let k2 = boot::select_kernel(nobb.path(), None, None).unwrap();
    let e = boot::stage_initrd(
        nobb.path(),
        &k2,
        &boot::InitrdOptions::default(),
        &nobb.path().join("st"),
    )
    .unwrap_err();
    assert!(matches!(e, boot::BootError::NoBusybox { .. }), "{e}");
    assert!(
        e.to_string().contains("add busybox to the package list"),
        "{e}"
    );

    // image without a kernel
    let empty = tempfile::tempdir().unwrap();
    minidistro::install(&md, empty.path(), KernelVariant::None, false, true).unwrap();
    let e = boot::select_kernel(empty.path(), None, None).unwrap_err();
    assert!(matches!(e, boot::BootError::NoKernel { .. }), "{e}");
}
