//! Package metadata: what the solver and repodata need from an RPM header (through the `rpm`
//! crate) or from a `primary.xml` entry.

use std::io::Read;
use std::path::Path;

use rpm::DependencyFlags as RF;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::RpmError;
use super::evr::{DepFlags, Evr};
use super::rich::RichDep;

/// One dependency entry (Provides, Requires, ...).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dep {
    /// Capability name (for rich dependencies, the whole `( ... )` text).
    pub name: String,
    /// Comparison.
    pub flags: DepFlags,
    /// Version, when constrained.
    pub evr: Option<Evr>,
    /// `Requires(pre)` / `Requires(post)` style install-time dependency.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pre: bool,
    /// Parsed boolean dependency when `name` starts with `(`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rich: Option<RichDep>,
}

impl Dep {
    /// Build a dependency, parsing rich expressions. An unparsable rich dependency keeps
    /// `rich = None` and a name starting with `(`: the solver treats the package as broken.
    pub fn new(name: impl Into<String>, flags: DepFlags, evr: Option<Evr>, pre: bool) -> Dep {
        let name = name.into();
        let rich = if name.starts_with('(') {
            RichDep::parse(&name).ok()
        } else {
            None
        };
        let evr = if flags.is_any() { None } else { evr };
        Dep {
            name,
            flags: flags.sense(),
            evr,
            pre,
            rich,
        }
    }

    /// Parse a dependency as written in a spec or on the command line: `name`,
    /// `name >= 1.2-3`, or a rich `( ... )` expression.
    pub fn parse(s: &str) -> Dep {
        let s = s.trim();
        if s.starts_with('(') {
            return Dep::new(s, DepFlags::ANY, None, false);
        }
        let parts: Vec<&str> = s.split_whitespace().collect();
        if let [name, op, evr] = parts.as_slice()
            && let Some(flags) = DepFlags::from_op(op)
        {
            return Dep::new(*name, flags, Some(Evr::parse(evr)), false);
        }
        Dep::new(s, DepFlags::ANY, None, false)
    }
}

impl std::fmt::Display for Dep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.evr {
            Some(evr) if !self.flags.is_any() => {
                write!(f, "{} {} {}", self.name, self.flags.op(), evr)
            }
            _ => f.write_str(&self.name),
        }
    }
}

/// Everything the repository and solver layers know about one package.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageMeta {
    /// Name.
    pub name: String,
    /// Epoch (0 when absent).
    pub epoch: u32,
    /// Version.
    pub version: String,
    /// Release.
    pub release: String,
    /// Architecture (`x86_64`, `noarch`, ...).
    pub arch: String,
    /// Provides (rpm adds the `name = EVR` self-provide; we keep what the header lists).
    pub provides: Vec<Dep>,
    /// Requires (without `rpmlib(...)`).
    pub requires: Vec<Dep>,
    /// Conflicts.
    pub conflicts: Vec<Dep>,
    /// Obsoletes.
    pub obsoletes: Vec<Dep>,
    /// Recommends.
    pub recommends: Vec<Dep>,
    /// Suggests.
    pub suggests: Vec<Dep>,
    /// Supplements.
    pub supplements: Vec<Dep>,
    /// Enhances.
    pub enhances: Vec<Dep>,
    /// Every packaged path (files, directories, ghosts), absolute.
    pub files: Vec<String>,
    /// The subset of `files` that are directories.
    #[serde(default)]
    pub dirs: Vec<String>,
    /// The subset of `files` that are `%ghost`.
    #[serde(default)]
    pub ghosts: Vec<String>,
    /// Location of the `.rpm` relative to the repository base (`Packages/f/foo.rpm`).
    pub location: String,
    /// sha256 of the `.rpm` file, hex.
    pub sha256: String,
    /// Size of the `.rpm` file in bytes.
    pub size: u64,
    /// Installed size in bytes.
    #[serde(default)]
    pub installed_size: u64,
    /// Source RPM name.
    #[serde(default)]
    pub sourcerpm: String,
    /// Summary.
    #[serde(default)]
    pub summary: String,
    /// Build time (seconds since the epoch).
    #[serde(default)]
    pub build_time: u64,
    /// Names of the scriptlets present (`pre`, `post`, `preun`, `postun`, `pretrans`,
    /// `posttrans`); empty when read from repodata (which does not record them).
    #[serde(default)]
    pub scriptlets: Vec<String>,
    /// Byte range of the header in the `.rpm` (`start`, `end`), for `primary.xml`'s
    /// `rpm:header-range`.
    #[serde(default)]
    pub header_range: (u64, u64),
}

/// `name-[epoch:]version-release.arch` (epoch 0 left out), the way dnf and rpm print it.
pub fn nevra(name: &str, epoch: u32, version: &str, release: &str, arch: &str) -> String {
    if epoch != 0 {
        format!("{name}-{epoch}:{version}-{release}.{arch}")
    } else {
        format!("{name}-{version}-{release}.{arch}")
    }
}

impl PackageMeta {
    /// The package's EVR.
    pub fn evr(&self) -> Evr {
        Evr::new(self.epoch, self.version.clone(), self.release.clone())
    }

    /// `name-[epoch:]version-release.arch`, the way dnf prints it.
    pub fn nevra(&self) -> String {
        nevra(
            &self.name,
            self.epoch,
            &self.version,
            &self.release,
            &self.arch,
        )
    }

    /// `name-version-release.arch` (no epoch): the rpm `-qa` spelling.
    pub fn nvra(&self) -> String {
        format!(
            "{}-{}-{}.{}",
            self.name, self.version, self.release, self.arch
        )
    }
}

/// Read the header of an `.rpm` file (not its payload) and hash the whole file.
/// `location` is set to the file name; repository code replaces it with the relative path.
pub fn read_header(path: &Path) -> Result<PackageMeta, RpmError> {
    let bad = |e: rpm::Error| RpmError::Header {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let md = rpm::PackageMetadata::open(path).map_err(bad)?;
    let mut meta = from_metadata(&md).map_err(bad)?;
    let mut f = std::fs::File::open(path).map_err(|e| RpmError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| RpmError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        if n == 0 {
            break;
        }
        size += n as u64;
        h.update(&buf[..n]);
    }
    meta.sha256 = hex::encode(h.finalize());
    meta.size = size;
    meta.location = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(meta)
}

fn convert(deps: Vec<rpm::Dependency>, drop_rpmlib: bool) -> Vec<Dep> {
    deps.into_iter()
        .filter(|d| {
            !(drop_rpmlib && (d.flags.contains(RF::RPMLIB) || d.name.starts_with("rpmlib(")))
        })
        .map(|d| {
            let pre = d.flags.intersects(
                RF::PREREQ | RF::SCRIPT_PRE | RF::SCRIPT_POST | RF::PRETRANS | RF::POSTTRANS,
            );
            let flags = DepFlags(d.flags.bits() & DepFlags::SENSE_MASK);
            let evr = if d.version.is_empty() {
                None
            } else {
                Some(Evr::parse(&d.version))
            };
            Dep::new(d.name, flags, evr, pre)
        })
        .collect()
}

/// Merge repeated requires (e.g. `Requires(pre): /bin/sh` plus the `%post` interpreter
/// dependency) the way createrepo_c does: one entry, `pre` if any copy is.
fn dedup(deps: Vec<Dep>) -> Vec<Dep> {
    let mut out: Vec<Dep> = Vec::with_capacity(deps.len());
    for d in deps {
        if let Some(prev) = out
            .iter_mut()
            .find(|x| x.name == d.name && x.flags == d.flags && x.evr == d.evr)
        {
            prev.pre |= d.pre;
        } else {
            out.push(d);
        }
    }
    out
}

/// Convert the `rpm` crate's parsed header into a [`PackageMeta`] (no file hash).
pub fn from_metadata(md: &rpm::PackageMetadata) -> Result<PackageMeta, rpm::Error> {
    let opt = |r: Result<Vec<rpm::Dependency>, rpm::Error>| r.unwrap_or_default();
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    let mut ghosts = Vec::new();
    for e in md.get_file_entries().unwrap_or_default() {
        let p = e.path().to_string_lossy().into_owned();
        if e.file_type() == rpm::FileType::Dir {
            dirs.push(p.clone());
        }
        if e.flags().contains(rpm::FileFlags::GHOST) {
            ghosts.push(p.clone());
        }
        files.push(p);
    }
    let mut scriptlets = Vec::new();
    for (name, s) in [
        ("pretrans", md.get_pre_trans_script()),
        ("pre", md.get_pre_install_script()),
        ("post", md.get_post_install_script()),
        ("preun", md.get_pre_uninstall_script()),
        ("postun", md.get_post_uninstall_script()),
        ("posttrans", md.get_post_trans_script()),
    ] {
        if s.is_ok() {
            scriptlets.push(name.to_string());
        }
    }
    let offsets = md.get_package_segment_offsets();
    Ok(PackageMeta {
        name: md.get_name()?.to_string(),
        epoch: md.get_epoch().unwrap_or(0),
        version: md.get_version()?.to_string(),
        release: md.get_release()?.to_string(),
        arch: if md.is_source_package() {
            "src".into()
        } else {
            md.get_arch()?.to_string()
        },
        provides: convert(opt(md.get_provides()), false),
        requires: dedup(convert(opt(md.get_requires()), true)),
        conflicts: convert(opt(md.get_conflicts()), false),
        obsoletes: convert(opt(md.get_obsoletes()), false),
        recommends: convert(opt(md.get_recommends()), false),
        suggests: convert(opt(md.get_suggests()), false),
        supplements: convert(opt(md.get_supplements()), false),
        enhances: convert(opt(md.get_enhances()), false),
        files,
        dirs,
        ghosts,
        installed_size: md.get_installed_size().unwrap_or(0),
        sourcerpm: md.get_source_rpm().unwrap_or("").to_string(),
        summary: md.get_summary().unwrap_or("").to_string(),
        build_time: md.get_build_time().unwrap_or(0),
        scriptlets,
        header_range: (offsets.header, offsets.payload),
        ..PackageMeta::default()
    })
}
