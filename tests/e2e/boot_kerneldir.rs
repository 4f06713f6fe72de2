//! Kernels from `kerneldir`, driver update RPMs, and the initrd split into `initrd-inputs` +
//! `initrd`: real RPMs (the mini distro's, rpmbuild-made), `osimage build`, GNU cpio + zstd to
//! look inside the initrd, kmod's `modprobe --show-depends` as the reference closure, and
//! `osimage test` booting under qemu.

use std::path::Path;
use std::process::Command;

use osimage_e2e::kernelspec::{
    DRIVER_DESCRIPTION, driver_rpm, node_output, unpack_initrd, write_postinstall, write_spec_dir,
};
use osimage_e2e::minidistro::{self, KernelVariant};
use osimage_e2e::spine::osimage;
use osimage_e2e::{require, tools};

fn preconditions() -> bool {
    tools::is_root()
        && minidistro::TOOLS.iter().all(|t| tools::have(t))
        && [
            "createrepo_c",
            "qemu-system-x86_64",
            "rpm2cpio",
            "cpio",
            "zstd",
            "modprobe",
        ]
        .iter()
        .all(|t| tools::have(t))
}
const NEEDS: &str = "needs root, rpmbuild, createrepo_c, apt-get, dpkg-deb, depmod, rpm2cpio, cpio, zstd, modprobe, qemu";

fn build(dir: &Path) -> String {
    let o = osimage(&["build", "spec.toml", "--cache-dir", "c"], dir);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "build failed:\n{err}");
    err
}

fn boot(dir: &Path, show: &[&str]) -> String {
    let mut args = vec!["test", "spec.toml", "--timeout", "240"];
    for s in show {
        args.extend(["--show", s]);
    }
    let o = osimage(&args, dir);
    let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "boot failed:\n{out}");
    out
}

fn out(dir: &Path, node: &str) -> imagecore::graph::step::Output {
    node_output(&dir.join("spec.toml"), &dir.join("c"), node).unwrap()
}

#[test]
fn kerneldir_kernel_wins_by_rpm_order_and_boots() {
    require!(preconditions(), NEEDS);
    let md = minidistro::build().unwrap();
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    // two releases of the same kernel: 1.mini (plain .ko, no modules.dep) and 1.minixz
    // (.ko.xz + depmod output); rpm order puts 1.minixz last
    let kd = dir.join("kernels/Packages");
    std::fs::create_dir_all(&kd).unwrap();
    for k in [&md.kernel, &md.kernel_xz] {
        std::os::unix::fs::symlink(k, kd.join(k.file_name().unwrap())).unwrap();
    }
    // the pkglist installs the plain kernel too: kerneldir's wins
    let lines = "kerneldir = \"kernels\"\nnetdrivers = [\"virtio_net\"]";
    write_spec_dir(&md, dir, true, lines, "kerneldir-stamp").unwrap();
    let t0 = std::time::Instant::now();
    build(dir);
    eprintln!("build with kerneldir: {:.1} s", t0.elapsed().as_secs_f64());
    let k = out(dir, "kernel");
    assert_eq!(k.meta["kernel_version"], md.kver);
    assert_eq!(
        k.meta["kernel_packages"],
        format!(
            "{}",
            md.kernel_xz
                .file_name()
                .unwrap()
                .to_string_lossy()
                .trim_end_matches(".rpm")
        )
    );
    assert!(
        k.tree.is_some(),
        "the kerneldir kernel's tree is the kernel node's output"
    );
    let sel = out(dir, "initrd-inputs");
    assert!(
        sel.meta["module_list"].contains("virtio_net.ko.xz"),
        "modules come from the kerneldir kernel: {}",
        sel.meta["module_list"]
    );
    // the kerneldir kernel is installed into the image too (as xCAT does): its .ko.xz modules
    // replace the pkglist kernel's plain .ko ones, and its vmlinuz is in /boot
    let o = Command::new("bash")
        .arg("-c")
        .arg("zstd -dc out/rootimg.cpio.zst | cpio -t --quiet")
        .current_dir(dir)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&o.stdout);
    assert!(
        listing.lines().any(|l| l.ends_with("/virtio_net.ko.xz")),
        "image lacks the kerneldir kernel's modules"
    );
    assert!(
        !listing.lines().any(|l| l.ends_with("/virtio_net.ko")),
        "the pkglist kernel's modules were not replaced"
    );
    assert!(
        listing
            .lines()
            .any(|l| l == format!("boot/vmlinuz-{}", md.kver)),
        "no boot/vmlinuz-{} in the image",
        md.kver
    );
    // the exported kernel is the vmlinuz of the chosen package
    let x = tempfile::tempdir().unwrap();
    let st = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "cd '{}' && rpm2cpio '{}' | cpio -id --quiet './boot/vmlinuz-*'",
            x.path().display(),
            md.kernel_xz.display()
        ))
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(
        std::fs::read(x.path().join(format!("boot/vmlinuz-{}", md.kver))).unwrap(),
        std::fs::read(dir.join("out/kernel")).unwrap()
    );
    let t0 = std::time::Instant::now();
    let o = boot(dir, &["/etc/postinstall.stamp"]);
    eprintln!("boot to marker: {:.1} s", t0.elapsed().as_secs_f64());
    assert!(o.contains("kerneldir-stamp"), "{o}");
    assert!(o.contains(&format!("kernel {}", md.kver)), "{o}");

    // -g picks the other release
    let lines = format!(
        "kerneldir = \"kernels\"\nnetdrivers = [\"virtio_net\"]\nkrpmver = \"{}\"",
        release_of(&md.kernel)
    );
    write_spec_dir(&md, dir, true, &lines, "kerneldir-stamp").unwrap();
    build(dir);
    let k = out(dir, "kernel");
    assert!(
        k.meta["kernel_packages"].ends_with("-1.mini.x86_64"),
        "{:?}",
        k.meta
    );
    let sel = out(dir, "initrd-inputs");
    assert!(
        sel.meta["module_list"].contains("virtio_net.ko")
            && !sel.meta["module_list"].contains(".xz"),
        "{}",
        sel.meta["module_list"]
    );

    // no kernel in the pkglist at all (xCAT's usual kerneldir case): the modules still come
    // from the kerneldir kernel
    let lines = "kerneldir = \"kernels\"\nnetdrivers = [\"virtio_net\"]";
    write_spec_dir(&md, dir, false, lines, "kerneldir-stamp").unwrap();
    build(dir);
    let sel = out(dir, "initrd-inputs");
    assert!(
        sel.meta["module_list"].contains("virtio_net.ko.xz"),
        "{}",
        sel.meta["module_list"]
    );

    // -k naming a kernel that is not there: the error lists what is
    let lines = "kerneldir = \"kernels\"\nkernelver = \"5.14.0-70.el9.x86_64\"";
    write_spec_dir(&md, dir, true, lines, "kerneldir-stamp").unwrap();
    let o = osimage(&["build", "spec.toml", "--cache-dir", "c"], dir);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("kernelver 5.14.0-70.el9.x86_64") && err.contains(&md.kver),
        "{err}"
    );
}

/// `version-release` of an RPM file, e.g. `6.1.192-1.mini`.
fn release_of(rpm: &Path) -> String {
    let o = Command::new("rpm")
        .args(["-qp", "--qf", "%{VERSION}-%{RELEASE}"])
        .arg(rpm)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn driver_update_rpm_replaces_module_in_initrd_and_boots() {
    require!(preconditions(), NEEDS);
    let md = minidistro::build().unwrap();
    let drv = driver_rpm(&md).unwrap();
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let lines = format!(
        "netdrivers = [\"virtio_net\"]\ndriverupdatesrc = [\"rpm:{}\"]",
        drv.display()
    );
    write_spec_dir(&md, dir, true, &lines, "driver-stamp").unwrap();
    build(dir);
    let x = tempfile::tempdir().unwrap();
    unpack_initrd(&dir.join("out/initrd-stateless.zst"), x.path()).unwrap();
    let list = std::fs::read_to_string(x.path().join("etc/initrd-modules")).unwrap();
    let ours: Vec<&str> = list.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(ours.contains(&"extra/virtio_net.ko"), "{list}");
    assert!(
        !ours.iter().any(|l| l.ends_with("net/virtio_net.ko")),
        "the replaced module must be gone: {list}"
    );
    let ko = std::fs::read(
        x.path()
            .join(format!("lib/modules/{}/extra/virtio_net.ko", md.kver)),
    )
    .unwrap();
    assert!(
        ko.windows(DRIVER_DESCRIPTION.len())
            .any(|w| w == DRIVER_DESCRIPTION.as_bytes())
    );

    // the reference: rpm installs kernel + driver package, the replaced module is removed,
    // depmod; modprobe's load list for virtio_net is in ours, same paths, same order
    let r = tempfile::tempdir().unwrap();
    minidistro::install(&md, r.path(), KernelVariant::Plain, false, true).unwrap();
    let st = Command::new("rpm")
        .arg("--root")
        .arg(r.path())
        .args(["-i", "--nodeps", "--noscripts"])
        .arg(&drv)
        .status()
        .unwrap();
    assert!(st.success());
    let mdir = r.path().join(format!("usr/lib/modules/{}", md.kver));
    std::fs::remove_file(mdir.join("kernel/drivers/net/virtio_net.ko")).unwrap();
    let st = Command::new("depmod")
        .arg("-b")
        .arg(r.path())
        .arg(&md.kver)
        .status()
        .unwrap();
    assert!(st.success());
    let o = Command::new("modprobe")
        .args(["--show-depends", "-d"])
        .arg(r.path())
        .args(["-S", &md.kver, "virtio_net"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let theirs: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("insmod "))
        .map(|l| {
            let p = l.split_whitespace().next().unwrap();
            p.split_once(&format!("/modules/{}/", md.kver))
                .unwrap()
                .1
                .to_string()
        })
        .collect();
    assert_eq!(
        theirs.last().map(String::as_str),
        Some("extra/virtio_net.ko")
    );
    let mut pos = 0;
    for m in &theirs {
        let i = ours
            .iter()
            .position(|o| o == m)
            .unwrap_or_else(|| panic!("modprobe loads {m}, we do not: {ours:?}"));
        assert!(
            i >= pos,
            "{m} out of modprobe's order: {ours:?} vs {theirs:?}"
        );
        pos = i;
    }
    eprintln!("driver update: modprobe closure {theirs:?} is in ours");

    // the original is signed (no taint); the update is unsigned: taint E
    let o = boot(dir, &["/sys/module/virtio_net/taint"]);
    assert!(
        o.contains("/sys/module/virtio_net/taint: E"),
        "the booted kernel must have loaded the updated virtio_net:\n{o}"
    );

    // dud: entries fail loudly
    std::fs::write(dir.join("disk.iso"), b"not a dud").unwrap();
    let lines = format!(
        "driverupdatesrc = [\"dud:{}\"]",
        dir.join("disk.iso").display()
    );
    write_spec_dir(&md, dir, true, &lines, "driver-stamp").unwrap();
    let o = osimage(&["build", "spec.toml", "--cache-dir", "c"], dir);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("not implemented: dud:"), "{err}");
}

#[test]
fn initrd_cached_when_postinstall_changes_rebuilt_when_a_module_changes() {
    require!(preconditions(), NEEDS);
    let md = minidistro::build().unwrap();
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    write_spec_dir(&md, dir, true, "netdrivers = [\"virtio_net\"]", "one").unwrap();
    build(dir);
    let sel1 = out(dir, "initrd-inputs");
    let ird1 = out(dir, "initrd");
    // a postinstall change (early cutoff): the cheap initrd-tree filter re-runs, its output is
    // the same, so the module closure and the initrd are cache hits
    write_postinstall(dir, "two").unwrap();
    let err = build(dir);
    assert!(err.contains("built   postinstall"), "{err}");
    assert!(err.contains("built   initrd-tree"), "{err}");
    assert!(err.contains("cached  initrd-inputs"), "{err}");
    assert!(
        err.lines().any(|l| l.trim() == "cached  initrd"),
        "initrd rebuilt:\n{err}"
    );
    let sel2 = out(dir, "initrd-inputs");
    assert_eq!(sel1.tree, sel2.tree, "the initrd's inputs must not change");
    assert_eq!(sel1.meta, sel2.meta);
    let ird2 = out(dir, "initrd");
    assert_eq!(ird1.artifacts, ird2.artifacts, "same initrd bytes");
    let o = osimage(&["plan", "spec.toml", "--cache-dir", "c", "--json"], dir);
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        plan["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["state"] == "cached"),
        "{plan}"
    );
    // a module change (a driver update replacing virtio_net): the selection differs
    let drv = driver_rpm(&md).unwrap();
    let lines = format!(
        "netdrivers = [\"virtio_net\"]\ndriverupdatesrc = [\"rpm:{}\"]",
        drv.display()
    );
    write_spec_dir(&md, dir, true, &lines, "two").unwrap();
    let err = build(dir);
    assert!(err.contains("built   initrd ("), "{err}");
    let sel3 = out(dir, "initrd-inputs");
    assert_ne!(sel1.tree, sel3.tree);
    assert_ne!(ird2.artifacts, out(dir, "initrd").artifacts);
}
