//! End to end: RPMs built with rpmbuild from Debian's kernel and busybox, installed with real
//! rpm, a postinstall step, our kernel choice + module closure + initrd, the root packed with GNU
//! cpio + zstd and padded by us, booted under qemu (TCG) until the image's init prints the marker
//! and the postinstall stamp. Also the `osimage test` command on the same artifacts.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use imagecore::boot::{self, BootTest, InitrdOptions};
use osimage_e2e::minidistro::{self, KernelVariant};
use osimage_e2e::{require, tools};

struct Built {
    _dir: tempfile::TempDir,
    kernel: PathBuf,
    initrd: PathBuf,
    rootimg: PathBuf,
}

/// Install, postinstall, stage + pack the initrd, pack the root.
fn build(variant: KernelVariant, with_zstd: bool, stamp: &str) -> Built {
    let md = minidistro::build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rootimg");
    minidistro::install(&md, &root, variant, with_zstd, true).unwrap();
    // an xCAT-style postinstall: runs on the build host with the root image dir as $1
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo '{stamp}' > \"$1/etc/osimage-postinstall.stamp\""
        ))
        .arg("postinstall")
        .arg(&root)
        .status()
        .unwrap();
    assert!(st.success());

    let t0 = Instant::now();
    let k = boot::select_kernel(&root, None, None).unwrap();
    assert_eq!(k.version, md.kver);
    let wanted: Vec<String> = boot::default_netdrivers("x86_64")
        .iter()
        .map(|s| s.to_string())
        .collect();
    let drivers =
        boot::module_closure(&k.modules_dir, &wanted, &["virtio_blk".to_string()]).unwrap();
    let t_closure = t0.elapsed().as_secs_f64();
    let staging = dir.path().join("initrd");
    let opts = InitrdOptions {
        drivers,
        ..Default::default()
    };
    boot::stage_initrd(&root, &k, &opts, &staging).unwrap();
    let t_stage = t0.elapsed().as_secs_f64();
    let initrd = dir.path().join("initrd-stateless.zst");
    boot::pack_initrd(&staging, &initrd, 12).unwrap();
    eprintln!("kernel+closure {t_closure:.2} s, staged at {t_stage:.2} s");
    eprintln!(
        "initrd: {} modules, {} bytes, built in {:.2} s",
        opts.drivers.modules.len(),
        std::fs::metadata(&initrd).unwrap().len(),
        t0.elapsed().as_secs_f64()
    );
    let kernel = dir.path().join("kernel");
    std::fs::copy(&k.vmlinuz, &kernel).unwrap();
    let rootimg = dir.path().join("rootimg.cpio.zst");
    minidistro::pack_root(&root, &rootimg, &[]).unwrap();
    boot::pad_to_sector(&rootimg).unwrap();
    assert_eq!(std::fs::metadata(&rootimg).unwrap().len() % 512, 0);
    if let Some(keep) = std::env::var_os("OSIMAGE_BOOT_KEEP") {
        // debugging aid: keep the artifacts of the last build
        std::fs::create_dir_all(&keep).unwrap();
        for p in [&kernel, &initrd, &rootimg] {
            std::fs::copy(p, std::path::Path::new(&keep).join(p.file_name().unwrap())).unwrap();
        }
    }
    Built {
        _dir: dir,
        kernel,
        initrd,
        rootimg,
    }
}

fn boot(b: &Built, marker: &str, timeout: u64) -> Result<boot::BootOutcome, boot::BootError> {
    boot::boot_test(&BootTest {
        kernel: b.kernel.clone(),
        initrd: b.initrd.clone(),
        rootimg: b.rootimg.clone(),
        timeout: Duration::from_secs(timeout),
        marker: marker.to_string(),
        append: "rd.faildelay=1".to_string(),
    })
}

fn preconditions() -> bool {
    tools::is_root()
        && minidistro::TOOLS.iter().all(|t| tools::have(t))
        && tools::have("qemu-system-x86_64")
        && tools::have("cpio")
        && tools::have("zstd")
}

fn initrd_lines(log: &str) -> String {
    log.lines()
        .filter(|l| {
            l.contains("osimage-initrd:")
                || l.contains("stateless-init:")
                || l.contains("INITRD-FAIL")
        })
        .map(|l| l.trim_end_matches('\r'))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Builds an image of `variant` whose postinstall stamps `stamp`, boots it to the marker and
/// checks the init saw the stamp.
fn build_and_boot(variant: KernelVariant, stamp: &str) -> (Built, boot::BootOutcome) {
    let b = build(variant, true, stamp);
    let out = boot(&b, minidistro::MARKER, 240).unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "{}\nmarker after {:.1} s",
        initrd_lines(&out.log),
        out.seconds_to_marker
    );
    assert!(
        out.log
            .contains(&format!("stateless-init: postinstall stamp: {stamp}")),
        "{}",
        out.log_tail
    );
    (b, out)
}

#[test]
fn boots_plain_ko_kernel_without_modules_dep_and_osimage_test_cli() {
    require!(
        preconditions(),
        "needs root, rpmbuild, rpm, apt-get, dpkg-deb, depmod, xz, cpio, zstd, qemu-system-x86_64"
    );
    let (b, out) = build_and_boot(KernelVariant::Plain, "postinstall ran (plain)");
    assert!(out.log.contains("/ is tmpfs"), "{}", out.log_tail);
    assert!(
        out.log.contains("zstd -dcq"),
        "the root image went through the image's zstd"
    );
    assert!(
        out.log.contains("decompressor rc=0"),
        "padding is a skippable frame: {}",
        out.log_tail
    );

    // the CLI, with its injected test init and the raw-path form
    let o = Command::new(tools::osimage_bin())
        .args([
            "test",
            "--timeout",
            "240",
            "--show",
            "/etc/osimage-postinstall.stamp",
            "--kernel",
        ])
        .arg(&b.kernel)
        .arg("--initrd")
        .arg(&b.initrd)
        .arg("--rootimg")
        .arg(&b.rootimg)
        .output()
        .unwrap();
    let so = String::from_utf8_lossy(&o.stdout);
    let se = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "osimage test failed:\n{so}\n{se}");
    assert!(so.contains("marker seen after"), "{so}");
    assert!(
        so.contains("/etc/osimage-postinstall.stamp: postinstall ran (plain)"),
        "{so}"
    );
}

#[test]
fn boots_ko_xz_kernel_with_modules_dep() {
    require!(
        preconditions(),
        "needs root, rpmbuild, rpm, apt-get, dpkg-deb, depmod, xz, cpio, zstd, qemu-system-x86_64"
    );
    let (_, out) = build_and_boot(KernelVariant::Xz, "postinstall ran (xz)");
    assert!(out.log.contains("virtio_blk"), "{}", out.log_tail);
}

#[test]
fn image_without_zstd_fails_loudly_not_silently() {
    require!(
        preconditions(),
        "needs root, rpmbuild, rpm, apt-get, dpkg-deb, depmod, xz, cpio, zstd, qemu-system-x86_64"
    );
    let b = build(KernelVariant::Plain, false, "unused");
    let e = boot(&b, minidistro::MARKER, 240).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, boot::BootError::MarkerNotSeen { .. }), "{msg}");
    assert!(
        msg.contains("INITRD-FAIL: root image is zstd but this initrd has no zstd"),
        "{msg}"
    );
}

#[test]
fn boots_from_imgurl_over_restricted_user_network() {
    require!(
        preconditions(),
        "needs root, rpmbuild, rpm, apt-get, dpkg-deb, depmod, xz, cpio, zstd, qemu-system-x86_64"
    );
    let b = build(KernelVariant::Plain, true, "postinstall ran (imgurl)");
    // qemu runs this for each guest connection to 10.0.2.100:80 (no host socket): it reads the
    // request and answers with the root image, like an HTTP server would
    let t = tempfile::tempdir().unwrap();
    let responder = t.path().join("http.sh");
    std::fs::write(
        &responder,
        format!(
            "#!/bin/sh\nwhile read -r line; do [ -z \"$(printf %s \"$line\" | tr -d '\\r')\" ] && break; done\n\
             printf 'HTTP/1.0 200 OK\\r\\nContent-Type: application/octet-stream\\r\\nContent-Length: %s\\r\\n\\r\\n' \"$(stat -c %s '{img}')\"\n\
             cat '{img}'\n",
            img = b.rootimg.display()
        ),
    )
    .unwrap();
    let st = Command::new("chmod")
        .arg("755")
        .arg(&responder)
        .status()
        .unwrap();
    assert!(st.success());
    let extra = vec![
        "-netdev".to_string(),
        format!(
            "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:80-cmd:{}",
            responder.display()
        ),
        "-device".to_string(),
        "virtio-net-pci,netdev=n0".to_string(),
    ];
    let out = boot::boot_test_with(
        &BootTest {
            kernel: b.kernel.clone(),
            initrd: b.initrd.clone(),
            rootimg: b.rootimg.clone(),
            timeout: Duration::from_secs(240),
            marker: minidistro::MARKER.to_string(),
            append: "imgurl=http://10.0.2.100/install/netboot/rootimg.cpio.zst rd.faildelay=1"
                .to_string(),
        },
        &extra,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "{}\nmarker after {:.1} s",
        initrd_lines(&out.log),
        out.seconds_to_marker
    );
    assert!(out.log.contains("configured by DHCP"), "{}", out.log_tail);
    assert!(
        out.log.contains("downloading http://10.0.2.100/"),
        "{}",
        out.log_tail
    );
    assert!(
        out.log
            .contains("stateless-init: postinstall stamp: postinstall ran (imgurl)"),
        "{}",
        out.log_tail
    );
}
