//! Kernel selection, module closure, ELF closure, the stateless `/init` and initrd, qemu boot test.
//!
//! The pieces, in the order a build uses them:
//! - [`select_kernel`] picks the kernel of a root tree (highest by rpm EVR order, or `-k`/`-g`).
//! - [`choose_kerneldir`] picks kernel packages in a `kerneldir` by the same rules, and
//!   [`unpack_rpms`] unpacks them (or driver update RPMs) with the install engine.
//! - [`module_closure`] turns driver names into the `.ko` files to load, in load order, from
//!   `modules.dep` or, when the kernel package ships none (Debian-style), from each module's own
//!   `.modinfo` (`depends=`), plus softdeps, `virtio_pci` for virtio devices and firmware.
//! - [`elf_closure`] resolves `PT_INTERP` and `DT_NEEDED` of binaries inside a root.
//! - [`stage_initrd`] fills a staging directory with our `/init` (see `init/init.sh`), busybox,
//!   a zstd decompressor and the decompressed modules; [`pack_initrd`] packs it as newc + zstd.
//! - [`boot_test`] boots kernel + initrd + root image under qemu (TCG) and waits for a marker.

mod elf;
mod imagetest;
mod initrd;
mod kernel;
mod kerneldir;
mod modinfo;
mod modules;
mod pack;
mod qemu;

use std::path::PathBuf;

pub use elf::elf_closure;
pub(crate) use elf::resolve_in_root;
pub use imagetest::{ImageTest, test_image};
pub use initrd::{
    INIT_SCRIPT, InitrdOptions, initrd_root_paths, stage_initrd, test_init_script, with_test_init,
};
pub use kernel::{KernelChoice, list_kernels, select_kernel};
pub use kerneldir::{KernelRpms, choose_kerneldir, unpack_rpms};
pub(crate) use modinfo::module_name;
pub use modules::{DriverSet, default_netdrivers, module_closure};
pub use pack::pack_initrd;
pub use qemu::{BootOutcome, BootTest, boot_test, boot_test_with, pad_to_sector};

/// Errors of this module. Each names the file or directory involved and what to do.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// No kernel at all in the root tree.
    #[error(
        "{root}: no kernel found (looked for boot/vmlinuz-* and lib/modules/*/vmlinuz): install a kernel package or set [kernel] kerneldir"
    )]
    NoKernel {
        /// The root searched.
        root: PathBuf,
    },
    /// `kernelver`/`krpmver` names a kernel that is not in the root.
    #[error("{root}: no kernel matches {wanted}; kernels present: {available}")]
    KernelNotFound {
        /// The root searched.
        root: PathBuf,
        /// What was asked, e.g. `kernelver 5.14.0-70.el9.x86_64`.
        wanted: String,
        /// Comma-separated list of the kernels that are there.
        available: String,
    },
    /// A kernel version has no vmlinuz file.
    #[error(
        "{root}: kernel {version} has no image (looked for boot/vmlinuz-{version}, boot/vmlinux-{version}, boot/image-{version}, lib/modules/{version}/vmlinuz)"
    )]
    NoKernelImage {
        /// The root searched.
        root: PathBuf,
        /// The `uname -r` string.
        version: String,
    },
    /// The kernel has no modules tree, or a module tree without any module.
    #[error(
        "{dir}: kernel {version} has no modules (no .ko, .ko.xz, .ko.zst or .ko.gz files): install the kernel's modules package (e.g. kernel-modules-core)"
    )]
    NoModules {
        /// The modules directory.
        dir: PathBuf,
        /// The `uname -r` string.
        version: String,
    },
    /// Explicitly requested drivers are not in the kernel.
    #[error(
        "{dir}: requested driver(s) not found in this kernel (neither a module nor built in): {names}; fix netdrivers or add the driver package"
    )]
    MissingDrivers {
        /// The modules directory.
        dir: PathBuf,
        /// Space-separated names.
        names: String,
    },
    /// A kernel module could not be read.
    #[error("{path}: cannot read kernel module: {message}")]
    Module {
        /// The module file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// An ELF file could not be parsed.
    #[error("{path}: not a readable ELF file: {message}")]
    Elf {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A binary the initrd needs is not in the root.
    #[error(
        "{root}: {name} not found in the image (searched {searched}): add the package that ships it"
    )]
    BinaryNotFound {
        /// The image root.
        root: PathBuf,
        /// The binary asked for.
        name: String,
        /// Where we looked.
        searched: String,
    },
    /// A shared library needed by a binary is not in the root.
    #[error(
        "{root}: {lib} (needed by /{needed_by}) not found in the image's library paths: add the package that ships it"
    )]
    LibraryNotFound {
        /// The image root.
        root: PathBuf,
        /// The soname or interpreter path.
        lib: String,
        /// The root-relative file that needs it.
        needed_by: String,
    },
    /// The image has no busybox, which the initrd's `/init` runs on.
    #[error(
        "{root}: the image has no busybox (looked in usr/bin, usr/sbin, bin, sbin): the stateless initrd needs it; add busybox to the package list"
    )]
    NoBusybox {
        /// The image root.
        root: PathBuf,
    },
    /// qemu could not be started.
    #[error("cannot start {program}: {source}; install qemu-system-x86 (Debian) or qemu-kvm")]
    QemuStart {
        /// The program name.
        program: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The boot did not reach the marker before the timeout.
    #[error("boot timed out after {seconds} s without '{marker}'; last console lines:\n{log_tail}")]
    Timeout {
        /// The timeout.
        seconds: u64,
        /// The marker waited for.
        marker: String,
        /// The end of the serial log.
        log_tail: String,
    },
    /// qemu ended without printing the marker.
    #[error("qemu exited ({status}) without '{marker}'; last console lines:\n{log_tail}")]
    MarkerNotSeen {
        /// qemu's exit status.
        status: String,
        /// The marker waited for.
        marker: String,
        /// The end of the serial log.
        log_tail: String,
    },
    /// An option value the initrd cannot use.
    #[error("{option} = {value:?}: {why}")]
    BadOption {
        /// The option name, e.g. `rootlimit`.
        option: String,
        /// The value given.
        value: String,
        /// What is wrong and what to write instead.
        why: String,
    },
    /// An RPM in `kerneldir` or `driverupdatesrc` could not be read.
    #[error("{path}: not a readable RPM package: {message}")]
    Rpm {
        /// The RPM file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Unpacking kernel or driver RPMs failed.
    #[error("unpacking {rpms}: {message}")]
    Install {
        /// The RPM files.
        rpms: String,
        /// The install engine's error.
        message: String,
    },
    /// A driver update RPM has nothing for the chosen kernel.
    #[error(
        "{path}: driver update RPM has no kernel modules for kernel {version} (it has modules for: {found}); use a driver package built for this kernel"
    )]
    DriverRpm {
        /// The RPM file.
        path: PathBuf,
        /// The chosen kernel.
        version: String,
        /// Kernel versions the RPM has modules for.
        found: String,
    },
    /// Packing the initrd failed.
    #[error(transparent)]
    Archive(#[from] crate::archive::ArchiveError),
    /// Something not built yet.
    #[error("not implemented: {0}")]
    NotImplemented(String),
    /// An I/O error on a named path.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

impl BootError {
    /// Wrap an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> BootError {
        BootError::Io {
            path: path.into(),
            source,
        }
    }
}
