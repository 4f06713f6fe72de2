//! The whole pipeline from a spec: real RPMs (Debian's kernel and busybox repackaged with
//! rpmbuild) → createrepo_c → `osimage build` (resolve, install, kernel, files, postinstall,
//! sync, trim, initrd, pack) → `osimage test SPEC` boots it under qemu (TCG) and the booted
//! system prints what the postinstall script and the synclist put into the image.

use std::process::Command;

use osimage_e2e::minidistro;
use osimage_e2e::spine::osimage;
use osimage_e2e::{require, tools};

#[test]
fn spec_build_boots_under_qemu() {
    require!(
        tools::is_root()
            && minidistro::TOOLS.iter().all(|t| tools::have(t))
            && tools::have("qemu-system-x86_64")
            && tools::have("createrepo_c"),
        "needs root, rpmbuild, createrepo_c, apt-get, dpkg-deb, depmod and qemu-system-x86_64"
    );
    let md = minidistro::build().unwrap();
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    for p in [
        &md.filesystem,
        &md.busybox,
        &md.kernel,
        &md.zstd,
        &md.stateless_init,
    ] {
        std::fs::copy(p, repo.join(p.file_name().unwrap())).unwrap();
    }
    assert!(
        Command::new("createrepo_c")
            .arg("-q")
            .arg(&repo)
            .status()
            .unwrap()
            .success()
    );
    std::fs::write(
        dir.join("compute.pkglist"),
        "filesystem\nbusybox\nkernel\nzstd\nstateless-init\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("compute.postinstall"),
        "#!/bin/sh\necho \"postinstall ran for $IMG_NAME kernel $IMG_KERNELVERSION\" > \"$1/etc/postinstall.stamp\"\n",
    )
    .unwrap();
    Command::new("chmod")
        .arg("755")
        .arg(dir.join("compute.postinstall"))
        .status()
        .unwrap();
    std::fs::write(dir.join("synced.conf"), "synced-by-synclist\n").unwrap();
    std::fs::write(
        dir.join("compute.synclist"),
        "synced.conf -> /etc/synced.conf\n",
    )
    .unwrap();
    // like xCAT's shipped exlist: the kernel ships separately; the initrd carries the drivers
    std::fs::write(
        dir.join("compute.exlist"),
        "./boot*\n./usr/lib/modules/*/kernel*\n",
    )
    .unwrap();
    osimage_e2e::specfile::write_repo_spec(
        dir,
        "bootme",
        r#"[kernel]
netdrivers = ["virtio_net"]
rootlimit = "80%"

[image]
rootimgdir = "out"
postinstall = ["compute.postinstall"]
synclists = ["compute.synclist"]
exlist = ["compute.exlist"]
"#,
    )
    .unwrap();
    let o = osimage(&["build", "spec.toml", "--cache-dir", "c"], dir);
    assert!(
        o.status.success(),
        "build failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for f in [
        "kernel",
        "initrd-stateless.zst",
        "rootimg.cpio.zst",
        "netboot.ipxe",
    ] {
        assert!(dir.join("out").join(f).is_file(), "{f} missing");
    }
    let o = osimage(
        &[
            "test",
            "spec.toml",
            "--timeout",
            "240",
            "--show",
            "/etc/postinstall.stamp",
            "--show",
            "/etc/synced.conf",
        ],
        dir,
    );
    let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "boot failed:\n{out}");
    assert!(
        out.contains(&format!("postinstall ran for bootme kernel {}", md.kver)),
        "{out}"
    );
    assert!(out.contains("synced-by-synclist"), "{out}");
}
