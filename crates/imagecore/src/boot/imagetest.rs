//! `osimage test`: boot built artifacts with an injected test init (or the image's own init)
//! and wait for the marker.

use std::path::PathBuf;
use std::time::Duration;

use super::{BootError, BootOutcome, BootTest, boot_test, test_init_script, with_test_init};

/// What to boot and what to look for.
#[derive(Clone, Debug)]
pub struct ImageTest {
    /// The kernel image.
    pub kernel: PathBuf,
    /// The initrd (initrd-stateless.zst).
    pub initrd: PathBuf,
    /// The root image archive, attached as a raw virtio disk.
    pub rootimg: PathBuf,
    /// Give up after this long.
    pub timeout: Duration,
    /// The console line that means success.
    pub marker: String,
    /// Boot the image's own `/sbin/init` instead of injecting the test init.
    pub no_inject: bool,
    /// Files of the image whose content the test init prints.
    pub show: Vec<String>,
    /// Extra kernel command line.
    pub append: String,
}

/// Boot `t`; `Ok` only when the marker was seen. With injection, the test init (printing the
/// `show` files and the marker, then powering off) is appended to a copy of the initrd.
pub fn test_image(t: &ImageTest) -> Result<BootOutcome, BootError> {
    let tmp = tempfile::tempdir().map_err(|e| BootError::io(std::env::temp_dir(), e))?;
    let initrd = if t.no_inject {
        t.initrd.clone()
    } else {
        let show: Vec<&str> = t.show.iter().map(String::as_str).collect();
        let script = test_init_script(&t.marker, &show);
        let out = tmp.path().join("initrd-test.zst");
        with_test_init(&t.initrd, &script, &out)?;
        out
    };
    boot_test(&BootTest {
        kernel: t.kernel.clone(),
        initrd,
        rootimg: t.rootimg.clone(),
        timeout: t.timeout,
        marker: t.marker.clone(),
        append: t.append.clone(),
    })
}
