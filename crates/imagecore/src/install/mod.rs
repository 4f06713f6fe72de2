//! The RPM install engine: verify packages, unpack their payloads in parallel into per-package
//! staging, assemble the tree in transaction order (owners, modes, caps, mtimes, hardlinks),
//! run scriptlets and file triggers in a sandbox, and record the packages in the image's rpmdb.
//!
//! ```no_run
//! use imagecore::install::{install_packages, InstallOptions};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let report = install_packages(
//!     std::path::Path::new("/tmp/root"),
//!     &["filesystem-3.16-1.noarch.rpm".into()],
//!     &InstallOptions::default(),
//! )?;
//! println!("{:?}", report.packages);
//! # Ok(()) }
//! ```

pub mod caps;
mod conflict;
mod deps;
mod erase;
mod erase_triggers;
pub mod gpg;
mod live;
mod lua;
mod package;
mod place;
mod rawheader;
pub mod rpmdb;
pub mod safepath;
pub mod scriptlet;
mod stage;
mod stagecache;
mod trans_triggers;
mod transaction;
mod triggers;
pub mod users;

use std::path::PathBuf;

pub use erase::{erase_nevras, erase_packages};
pub use stagecache::STAGE_VERSION;
pub(crate) use transaction::cpu_secs;
pub use transaction::{install_packages, install_with_store};

/// Whether scriptlets run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScriptletMode {
    /// Run them (needs root: chroot and mount namespace).
    #[default]
    Run,
    /// Skip them, with a warning per package that has any.
    Skip,
}

/// Options of an install (or erase) transaction.
#[derive(Debug, Clone)]
pub struct InstallOptions {
    /// Run or skip scriptlets.
    pub scriptlets: ScriptletMode,
    /// rpmdb directory inside the image (e.g. `/var/lib/rpm`). `None`: detect from the image
    /// (`/usr/lib/sysimage/rpm` if it exists there, else `/var/lib/rpm`).
    pub dbpath: Option<String>,
    /// Do not check that every `Requires` is provided by the transaction or the image (the
    /// engine never resolves: callers pass the solved set; rich deps are never checked here).
    pub nodeps: bool,
    /// Worker threads for payload unpacking (0 = all cores).
    pub jobs: usize,
    /// `gpgcheck`: when set, every package must carry a header signature made by a key in
    /// these ASCII-armored public key files (checked before anything is unpacked).
    pub gpgkeys: Option<Vec<PathBuf>>,
}

impl Default for InstallOptions {
    fn default() -> Self {
        InstallOptions {
            scriptlets: ScriptletMode::Run,
            dbpath: None,
            nodeps: false,
            jobs: 0,
            gpgkeys: None,
        }
    }
}

/// One package of a transaction: the `.rpm` file and, when known (e.g. from a lock), the
/// sha256 the whole file must have. That digest is checked in the same read that unpacks the
/// payload (or before a cached unpack is reused).
#[derive(Debug, Clone)]
pub struct RpmInput {
    /// The `.rpm` file.
    pub path: PathBuf,
    /// Expected sha256 of the file (hex), if any.
    pub sha256: Option<String>,
}

/// The store side of an install ([`install_with_store`]): unpacked packages are cached in the
/// store by package sha256, every placed file's content is a blob of the store, and `placed`
/// collects the stat entries of the placed regular files so that a [`crate::tree::scan`] of the
/// finished tree re-reads only what scriptlets changed.
pub struct InstallStore<'a> {
    /// The store.
    pub store: &'a crate::store::Store,
    /// Stat entries of placed files (accumulated over transactions; may be pre-filled with the
    /// stat cache of a materialised tree).
    pub placed: crate::tree::StatCache,
    /// Packages restored from the stage cache.
    pub cache_hits: usize,
    /// Packages unpacked from their payload.
    pub cache_misses: usize,
}

impl<'a> InstallStore<'a> {
    /// A store side with an empty stat cache.
    pub fn new(store: &'a crate::store::Store) -> InstallStore<'a> {
        InstallStore {
            store,
            placed: crate::tree::StatCache::default(),
            cache_hits: 0,
            cache_misses: 0,
        }
    }
}

/// What an install did.
#[derive(Debug, Clone, Default)]
pub struct InstallReport {
    /// NEVRAs installed, in transaction order.
    pub packages: Vec<String>,
    /// Warnings (unknown owners, skipped scriptlets, failed %post, .rpmnew files …).
    pub warnings: Vec<String>,
    /// Number of scriptlets and triggers run.
    pub scriptlets_run: usize,
}

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// An RPM file could not be read or failed verification.
    #[error(transparent)]
    Payload(#[from] crate::rpm::payload::PayloadError),
    /// A package is unusable (names the file).
    #[error("{path}: {message}")]
    Package {
        /// The RPM file (or packaged path).
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// File conflicts between packages of the transaction.
    #[error("file conflicts (remove one of the packages or fix the repository):\n  {}", .0.join("\n  "))]
    Conflicts(Vec<String>),
    /// An I/O error on a named path.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A scriptlet could not run or failed fatally.
    #[error("{which} scriptlet of {package} {message}")]
    Scriptlet {
        /// Package NEVRA.
        package: String,
        /// "%pre", "%post", …
        which: String,
        /// What happened.
        message: String,
    },
    /// Unsatisfied dependencies (`nodeps = false`).
    #[error("failed dependencies (add the providing packages, or use --nodeps):\n  {}", .0.join("\n  "))]
    Dependencies(Vec<String>),
    /// Scriptlets need root.
    #[error(
        "{0} has scriptlets, which need root (chroot + mount namespace); run as root or set scriptlets = \"skip\""
    )]
    NotRoot(String),
    /// The rpmdb could not be written or read.
    #[error("rpmdb {path}: {message}")]
    Rpmdb {
        /// The database file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Erase: package not installed.
    #[error("package {0} is not installed in the image")]
    NotInstalled(String),
    /// The store (stage cache, blobs) failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Something not built yet.
    #[error("not implemented: {0}")]
    NotImplemented(String),
}
