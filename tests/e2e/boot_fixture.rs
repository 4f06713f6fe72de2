//! The boot fixture builds real RPMs that rpm can query.
use osimage_e2e::{minidistro, require, tools};

#[test]
fn minidistro_builds_and_rpm_reads_it() {
    require!(
        minidistro::TOOLS.iter().all(|t| tools::have(t)),
        "rpmbuild/rpm/apt-get/dpkg-deb/depmod/xz missing"
    );
    let md = minidistro::build().unwrap();
    for p in [
        &md.filesystem,
        &md.busybox,
        &md.kernel,
        &md.kernel_xz,
        &md.zstd,
        &md.stateless_init,
    ] {
        let out = std::process::Command::new("rpm")
            .args(["-qp", "--qf", "%{NAME}"])
            .arg(p)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", p.display());
    }
    let out = std::process::Command::new("rpm")
        .args(["-qlp"])
        .arg(&md.kernel)
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(
        list.contains("virtio_blk.ko\n"),
        "plain kernel has .ko files"
    );
    assert!(
        !list.contains("modules.dep\n"),
        "plain kernel has no modules.dep"
    );
    let out = std::process::Command::new("rpm")
        .args(["-qlp"])
        .arg(&md.kernel_xz)
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(list.contains("virtio_blk.ko.xz\n") && list.contains("modules.dep\n"));
}
