//! The osimage spec: the TOML model, `extends` merging, defaults and validation. Every error
//! names `file:line:col` of the offending key or value and says what to do.
//!
//! Keys (names follow xCAT's osimage/linuximage attributes; unknown keys are errors):
//!
//! ```toml
//! [osimage]
//! name = "compute"            # required
//! osvers = "rocky9.4"         # required
//! arch = "x86_64"             # required: x86_64 aarch64 ppc64le ppc64 s390x riscv64 i686
//! profile = "compute"         # default: name
//! provmethod = "netboot"      # the only value supported
//! extends = "base.toml"       # relative to this file; deep-merge, child wins; cycles are errors
//! description = ""
//! environvar = { KEY = "v" }  # exported to postinstall, $KEY in pkglist includes and synclists
//!
//! [source]                    # capture an existing tree; excludes [repos] and [packages]
//! rootimg = "tree"            # an existing directory
//!
//! [repos]
//! pkgdir = ["/srv/repo", "media:rocky9.4/x86_64", "https://…"]  # first = OS base
//! otherpkgdir = "otherpkgs"
//! gpgcheck = false
//! gpgkeys = ["RPM-GPG-KEY-rocky"]   # existing files
//!
//! [packages]                  # needs [repos] with a pkgdir
//! pkglist = ["compute.pkglist"]          # existing files, xCAT grammar
//! otherpkglist = []                      # needs [repos] otherpkgdir
//! install = ["chrony"]                   # one extra final pass
//! weak_deps = false
//! scriptlets = "run"                     # run | skip
//!
//! [kernel]
//! kerneldir = "kernels"       # an existing directory
//! kernelver = ""              # genimage -k
//! krpmver = ""                # genimage -g
//! netdrivers = ["virtio_net"]
//! netdrivers_defaults = true
//! driverupdatesrc = []        # "[dud:|rpm:]path", existing files
//! rootlimit = ""              # tmpfs size: "" (tmpfs default), "80%", "4G"
//! addkcmdline = ""
//!
//! [image]
//! rootimgdir = "build/compute"     # default: build/<name> beside the top spec
//! postinstall = ["compute.postinstall --flag"]   # "script arg…", scripts must be executable
//! synclists = ["compute.synclist"]
//! exlist = ["compute.exlist"]
//! permission = "755"            # xCAT: mode of /.statelite (statelite only; kept, unused here)
//! nodebootif = ""
//! otherifce = []
//!
//! [pack]
//! method = "cpio"
//! compress = "zstd"           # zstd (level 1..=22) | gzip (1..=9) | xz (0..=9)
//! level = 3
//! source_date_epoch = 1767225600  # default DEFAULT_SOURCE_DATE_EPOCH (2026-01-01)
//! ```
//!
//! Relative paths resolve against the directory of the file that names them (so a path in a
//! parent spec is relative to the parent). Tables merge key by key across `extends` (also
//! `environvar`); arrays and scalars are replaced by the child's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::lists::{ListError, PostinstallEntry};

mod load;
mod origin;
mod raw;
mod resolve;
mod to_toml;

pub use origin::{Located, Origin};
pub(crate) use resolve::normalize;

/// The `source_date_epoch` used when the spec sets none: 2026-01-01T00:00:00Z. Archives are
/// reproducible by default (mtimes newer than this — files written at build time by
/// scriptlets and postinstall — are clamped to it), while the older mtimes packages carry are
/// kept, so `rpm -V` on a node stays quiet about them.
pub const DEFAULT_SOURCE_DATE_EPOCH: i64 = 1_767_225_600;

/// Errors of this module. Each names `file:line:col` and what to do.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The spec file itself cannot be read.
    #[error("{path}: cannot read the spec: {source}; check the path")]
    Read {
        /// The spec file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// TOML syntax error, unknown key or wrong value type.
    #[error("{at}: {message}")]
    Toml {
        /// Where.
        at: Origin,
        /// The parser's message and advice.
        message: String,
    },
    /// A value that parses but is not acceptable.
    #[error("{at}: {message}")]
    Invalid {
        /// Where.
        at: Origin,
        /// What is wrong and what to do.
        message: String,
    },
    /// A file or directory the spec names does not exist.
    #[error("{at}: {what} {path} does not exist ({source}); create it or fix the path")]
    MissingFile {
        /// The string that names it.
        at: Origin,
        /// What it is (e.g. "pkglist").
        what: String,
        /// The resolved path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// `extends` forms a cycle.
    #[error("{at}: extends cycle: {chain}; remove one of these extends")]
    ExtendsCycle {
        /// The `extends` value that closes the cycle.
        at: Origin,
        /// The files in order, `a -> b -> a`.
        chain: String,
    },
    /// A postinstall entry that does not parse.
    #[error(transparent)]
    List(#[from] ListError),
}

/// A fully loaded spec: `extends` merged, defaults applied, every path absolute and checked.
#[derive(Clone, Debug)]
pub struct Spec {
    /// The spec file (absolute, canonical).
    pub file: PathBuf,
    /// Its directory.
    pub dir: PathBuf,
    /// The spec and every `extends` file read, child first.
    pub files: Vec<PathBuf>,
    /// `[osimage]`.
    pub osimage: OsImage,
    /// `[source]`: capture an existing tree.
    pub source: Option<Source>,
    /// `[repos]`.
    pub repos: Option<Repos>,
    /// `[packages]`.
    pub packages: Option<Packages>,
    /// `[kernel]`.
    pub kernel: Option<KernelSpec>,
    /// `[image]` (always present, defaults applied).
    pub image: Image,
    /// `[pack]` (always present, defaults applied).
    pub pack: Pack,
}

/// Two specs are equal when their content is: `file`, `dir`, `files` and origins are ignored.
impl PartialEq for Spec {
    fn eq(&self, o: &Self) -> bool {
        self.osimage == o.osimage
            && self.source == o.source
            && self.repos == o.repos
            && self.packages == o.packages
            && self.kernel == o.kernel
            && self.image == o.image
            && self.pack == o.pack
    }
}

/// `[osimage]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OsImage {
    /// Image name (xCAT imagename).
    pub name: String,
    /// OS version, e.g. `rocky9.4`.
    pub osvers: String,
    /// Architecture, e.g. `x86_64`.
    pub arch: String,
    /// Profile (default: the name).
    pub profile: String,
    /// Always `netboot`.
    pub provmethod: String,
    /// Free text.
    pub description: String,
    /// Variables for postinstall, list includes and synclists.
    pub environvar: BTreeMap<String, String>,
}

/// `[source]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// The existing root tree to capture (absolute, an existing directory).
    pub rootimg: Located<PathBuf>,
}

/// A package directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PkgDir {
    /// A local directory (absolute), searched recursively for `repodata/`.
    Path(PathBuf),
    /// Install media copied by copycds: the part after `media:`, e.g. `rocky9.4/x86_64`.
    Media(String),
    /// An `http://`, `https://` or `ftp://` URL.
    Url(String),
}

/// `[repos]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repos {
    /// Package directories, the OS base first.
    pub pkgdir: Vec<Located<PkgDir>>,
    /// Where `subdir/pkg` entries of otherpkglists are found.
    pub otherpkgdir: Option<Located<PkgDir>>,
    /// Check package signatures.
    pub gpgcheck: bool,
    /// Public key files (absolute, existing).
    pub gpgkeys: Vec<Located<PathBuf>>,
}

/// Whether RPM scriptlets run during install.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ScriptletPolicy {
    /// Run them (default).
    #[default]
    Run,
    /// Skip them.
    Skip,
}

/// `[packages]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packages {
    /// Distro pkglists (absolute, existing).
    pub pkglist: Vec<Located<PathBuf>>,
    /// Other-package lists (absolute, existing).
    pub otherpkglist: Vec<Located<PathBuf>>,
    /// Inline entries: one extra final pass.
    pub install: Vec<String>,
    /// Install weak dependencies (Recommends).
    pub weak_deps: bool,
    /// Run or skip scriptlets.
    pub scriptlets: ScriptletPolicy,
}

/// `[kernel]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelSpec {
    /// Directory of kernel packages (absolute, existing).
    pub kerneldir: Option<Located<PathBuf>>,
    /// Kernel version to use (`-k`), "" for the newest.
    pub kernelver: String,
    /// Kernel package version (`-g`).
    pub krpmver: String,
    /// Extra network drivers for the initrd.
    pub netdrivers: Vec<String>,
    /// Also add the per-arch default driver list.
    pub netdrivers_defaults: bool,
    /// Driver update sources, `[dud:|rpm:]/absolute/path`.
    pub driverupdatesrc: Vec<Located<String>>,
    /// tmpfs size of the root at boot ("" = tmpfs default).
    pub rootlimit: String,
    /// Extra kernel command line.
    pub addkcmdline: String,
}

/// `[image]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// Output directory (absolute).
    pub rootimgdir: PathBuf,
    /// Postinstall scripts (existing, executable) with their arguments.
    pub postinstall: Vec<Located<PostinstallEntry>>,
    /// Synclists (absolute, existing).
    pub synclists: Vec<Located<PathBuf>>,
    /// Exlists (absolute, existing).
    pub exlist: Vec<Located<PathBuf>>,
    /// xCAT's `linuximage.permission`: the mount permission of `/.statelite` (default "755").
    /// It only matters for statelite images; stateless builds keep it (so an xCAT osimage
    /// round-trips) but it changes nothing in the image.
    pub permission: String,
    /// Boot interface ("" = none).
    pub nodebootif: String,
    /// Other interfaces to configure.
    pub otherifce: Vec<String>,
}

/// Archive format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PackMethod {
    /// newc cpio.
    #[default]
    Cpio,
}

/// Archive compression.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Compress {
    /// zstd (default).
    #[default]
    Zstd,
    /// gzip.
    Gzip,
    /// xz.
    Xz,
}

impl Compress {
    /// The name used in specs and archive suffixes' source: `zstd`, `gzip`, `xz`.
    pub fn name(self) -> &'static str {
        match self {
            Compress::Zstd => "zstd",
            Compress::Gzip => "gzip",
            Compress::Xz => "xz",
        }
    }

    /// The archive file suffix: `zst`, `gz`, `xz`.
    pub fn suffix(self) -> &'static str {
        match self {
            Compress::Zstd => "zst",
            Compress::Gzip => "gz",
            Compress::Xz => "xz",
        }
    }

    /// The valid levels.
    pub fn levels(self) -> std::ops::RangeInclusive<i32> {
        match self {
            Compress::Zstd => 1..=22,
            Compress::Gzip => 1..=9,
            Compress::Xz => 0..=9,
        }
    }
}

/// `[pack]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pack {
    /// Archive format.
    pub method: PackMethod,
    /// Compression.
    pub compress: Compress,
    /// Compression level (default 3).
    pub level: i32,
    /// mtimes are clamped to this (default [`DEFAULT_SOURCE_DATE_EPOCH`]).
    pub source_date_epoch: i64,
}

impl Spec {
    /// Load `path`, following `extends`, applying defaults and validating everything.
    pub fn load(path: &Path) -> Result<Spec, SpecError> {
        load::load(path)
    }

    /// The fully resolved spec (after `extends` and defaults, absolute paths) as TOML that
    /// [`Spec::load`] reads back to an equal spec.
    pub fn to_toml(&self) -> String {
        to_toml::to_toml(self)
    }
}
