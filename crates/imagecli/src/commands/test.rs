//! `osimage test`: boot kernel + initrd + root image under qemu and wait for a marker.

use std::path::PathBuf;
use std::time::Duration;

use imagecore::boot::{self, BootTest};

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
    let tmp = std::env::temp_dir().join(format!("osimage-test-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let result = boot_it(
        args.no_inject,
        &args.show,
        &args.marker,
        args.timeout,
        args.append,
        kernel,
        initrd,
        rootimg,
        &tmp,
    );
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

#[allow(clippy::too_many_arguments)]
fn boot_it(
    no_inject: bool,
    show: &[String],
    marker: &str,
    timeout: u64,
    append: String,
    kernel: PathBuf,
    initrd: PathBuf,
    rootimg: PathBuf,
    tmp: &std::path::Path,
) -> anyhow::Result<i32> {
    let initrd = if no_inject {
        initrd
    } else {
        let show: Vec<&str> = show.iter().map(String::as_str).collect();
        let script = boot::test_init_script(marker, &show);
        let out = tmp.join("initrd-test.zst");
        boot::with_test_init(&initrd, &script, &out)?;
        out
    };
    let t = BootTest {
        kernel,
        initrd,
        rootimg,
        timeout: Duration::from_secs(timeout),
        marker: marker.to_string(),
        append,
    };
    match boot::boot_test(&t) {
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
