//! `osimage test`: boot kernel + initrd + root image under qemu and wait for a marker.

use std::path::PathBuf;
use std::time::Duration;

use imagecore::boot;

/// Arguments of `osimage test`.
#[derive(clap::Args, Debug)]
pub struct TestArgs {
    /// The osimage spec whose built artifacts (rootimgdir/kernel, initrd-stateless.zst,
    /// rootimg.cpio.*) to boot.
    pub spec: Option<PathBuf>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    /// The kernel image.
    #[arg(long, requires_all = ["initrd", "rootimg"])]
    pub kernel: Option<PathBuf>,
    /// The initrd (osimage's initrd-stateless.zst).
    #[arg(long)]
    pub initrd: Option<PathBuf>,
    /// The root image archive (rootimg.cpio.zst), attached as a raw virtio disk.
    #[arg(long)]
    pub rootimg: Option<PathBuf>,
    /// The console line that means success.
    #[arg(long, default_value = "OSIMAGE-TEST-OK")]
    pub marker: String,
    /// Boot the image's own /sbin/init instead of injecting the test init (then --marker must be
    /// something the image prints).
    #[arg(long)]
    pub no_inject: bool,
    /// A file of the image whose content the test init prints (repeatable).
    #[arg(long)]
    pub show: Vec<String>,
    /// Extra kernel command line.
    #[arg(long, default_value = "")]
    pub append: String,
}

/// Run `osimage test`; exit code 0 only when the marker was seen.
pub fn run(args: TestArgs) -> anyhow::Result<i32> {
    let (kernel, initrd, rootimg) = match (args.kernel, args.initrd, args.rootimg, &args.spec) {
        (Some(k), Some(i), Some(r), _) => (k, i, r),
        (_, _, _, Some(spec)) => {
            let spec = super::load_spec(spec)?;
            let a = imagecore::steps::boot_artifacts(&spec)?;
            (a.kernel, a.initrd, a.rootimg)
        }
        _ => anyhow::bail!(
            "usage: osimage test SPEC, or osimage test --kernel K --initrd I --rootimg R"
        ),
    };
    let t = boot::ImageTest {
        kernel,
        initrd,
        rootimg,
        timeout: Duration::from_secs(args.timeout),
        marker: args.marker,
        no_inject: args.no_inject,
        show: args.show,
        append: args.append,
    };
    match boot::test_image(&t) {
        Ok(o) => {
            for l in o.log.lines() {
                if l.contains("osimage-initrd:") || l.contains("osimage-test:") {
                    println!("{}", l.trim_end_matches('\r'));
                }
            }
            println!(
                "marker seen after {:.2} s (qemu ended after {:.2} s, {} MiB, TCG)",
                o.seconds_to_marker, o.seconds_total, o.memory_mib
            );
            Ok(0)
        }
        Err(e) => {
            eprintln!("osimage test: FAILED: {e}");
            Ok(1)
        }
    }
}
