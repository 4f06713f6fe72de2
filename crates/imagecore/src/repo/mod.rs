//! Package repositories: repomd/primary/filelists/comps reading, directory scanning, createrepo.
//!
//! [`load_repo`] reads `repodata/` (verifying every checksum) or, for a plain directory of
//! `.rpm` files, scans the headers in parallel. [`RepoIndex`] encodes to a compact binary blob
//! ([`blob`]) so the `repo` step can cache it and warm resolves never parse XML again.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::rpm::{PackageMeta, RpmError};

pub mod blob;
pub mod comps;
mod scan;
pub mod write;
pub mod xml;

pub use comps::{Group, GroupPackage, GroupPkgKind};
pub use write::{createrepo, write_repodata};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// I/O on a named path.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Malformed or truncated XML.
    #[error(
        "{path}: malformed repository metadata: {message}; regenerate it with `osimage createrepo` or createrepo_c"
    )]
    Xml {
        /// The metadata file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// A compressed metadata file does not decompress.
    #[error("{path}: cannot decompress: {message} (truncated download?)")]
    Decompress {
        /// The metadata file.
        path: PathBuf,
        /// Decoder message.
        message: String,
    },
    /// A checksum listed in repomd.xml does not match the file.
    #[error(
        "{path}: {what} checksum mismatch: repomd.xml says {expected}, file has {actual}; the repository is corrupt or was modified after createrepo — re-run createrepo or re-copy it"
    )]
    Checksum {
        /// The file whose checksum is wrong.
        path: PathBuf,
        /// `checksum` or `open-checksum`.
        what: &'static str,
        /// What repomd.xml lists.
        expected: String,
        /// What the file hashes to.
        actual: String,
    },
    /// repomd.xml lacks a required entry or uses an unknown checksum.
    #[error("{path}: {message}")]
    Metadata {
        /// The repomd.xml file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Neither repodata nor `.rpm` files were found.
    #[error(
        "{path}: no repository here (no repodata/repomd.xml and no .rpm files below it); check the pkgdir path"
    )]
    NoRepo {
        /// The directory searched.
        path: PathBuf,
    },
    /// An RPM header could not be read while scanning.
    #[error(transparent)]
    Rpm(#[from] RpmError),
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RepoError + '_ {
    move |source| RepoError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A parsed repository: everything the solver needs, and where to find the `.rpm` files.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoIndex {
    /// Repository name (used in the lock and in messages).
    pub name: String,
    /// Packages, in metadata order.
    pub packages: Vec<PackageMeta>,
    /// comps groups and environments.
    pub groups: Vec<Group>,
    /// `sha256:<hex of repomd.xml>` or `scan:<blake3 of the file list>` (see [`repo_fingerprint`]).
    pub checksum: String,
    /// Base directory: package `location`s are relative to it.
    pub base: PathBuf,
}

impl RepoIndex {
    /// Absolute path of a package's `.rpm`.
    pub fn rpm_path(&self, pkg: &PackageMeta) -> PathBuf {
        self.base.join(&pkg.location)
    }
}

fn has_repomd(dir: &Path) -> bool {
    dir.join("repodata").join("repomd.xml").is_file()
}

/// Find repositories below `dir`: every directory at or below it that has
/// `repodata/repomd.xml` (like xCAT's recursive `repodata` search: a DVD root repo and its
/// BaseOS/AppStream sub-repositories), `dir` first, then sorted; when there is none, `dir`
/// itself if it holds `.rpm` files (it will be scanned).
pub fn find_repos(dir: &Path) -> Result<Vec<PathBuf>, RepoError> {
    if !dir.is_dir() {
        return Err(RepoError::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "not a directory"),
        });
    }
    let mut found = Vec::new();
    let mut any_rpm = false;
    let mut it = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter();
    while let Some(entry) = it.next() {
        let entry = entry.map_err(|e| RepoError::Io {
            path: e.path().unwrap_or(dir).to_path_buf(),
            source: e
                .into_io_error()
                .unwrap_or_else(|| std::io::Error::other("filesystem loop")),
        })?;
        if entry.file_type().is_dir() {
            if entry.file_name() == "repodata" {
                it.skip_current_dir();
            } else if has_repomd(entry.path()) {
                found.push(entry.path().to_path_buf());
            }
        } else if entry.path().extension().is_some_and(|e| e == "rpm") {
            any_rpm = true;
        }
    }
    if found.is_empty() && any_rpm {
        found.push(dir.to_path_buf());
    }
    if found.is_empty() {
        return Err(RepoError::NoRepo {
            path: dir.to_path_buf(),
        });
    }
    Ok(found)
}

/// Find and load every repository at or below `dir` (see [`find_repos`]), naming them
/// `prefix` for `dir` itself and `prefix-<relative path>` for sub-repositories
/// (`pkgdir0-AppStream`).
pub fn load_tree(dir: &Path, prefix: &str) -> Result<Vec<RepoIndex>, RepoError> {
    let mut all: Vec<RepoIndex> = Vec::new();
    for r in find_repos(dir)? {
        let name = match r.strip_prefix(dir) {
            Ok(rel) if !rel.as_os_str().is_empty() => {
                format!("{prefix}-{}", rel.display()).replace('/', "-")
            }
            _ => prefix.to_string(),
        };
        let name = if all.iter().any(|x| x.name == name) {
            format!("{name}-{}", all.len())
        } else {
            name
        };
        all.push(load_repo(&r, &name)?);
    }
    Ok(all)
}

/// A cheap identity of a repository's content: `sha256:<repomd.xml digest>`, or for a plain
/// directory `scan:<blake3 over every .rpm's relative path, size and mtime>`.
pub fn repo_fingerprint(dir: &Path) -> Result<String, RepoError> {
    let repomd = dir.join("repodata").join("repomd.xml");
    if repomd.is_file() {
        let data = std::fs::read(&repomd).map_err(io_err(&repomd))?;
        return Ok(format!(
            "sha256:{}",
            xml::digest_hex("sha256", &data).unwrap_or_default()
        ));
    }
    Ok(format!("scan:{}", scan::scan_digest(dir)?))
}

/// Load a repository: `repodata/` when present (every checksum verified), else a header scan of
/// the `.rpm` files below `dir`.
pub fn load_repo(dir: &Path, name: &str) -> Result<RepoIndex, RepoError> {
    if has_repomd(dir) {
        load_repodata(dir, name)
    } else {
        scan::scan_dir(dir, name)
    }
}

/// Read one metadata file listed in repomd, verify both checksums, return decompressed bytes.
fn read_verified(dir: &Path, repomd: &Path, d: &xml::RepomdData) -> Result<Vec<u8>, RepoError> {
    let path = dir.join(&d.href);
    let raw = std::fs::read(&path).map_err(io_err(&path))?;
    let actual = xml::digest_hex(&d.checksum_type, &raw).ok_or_else(|| RepoError::Metadata {
        path: repomd.to_path_buf(),
        message: format!(
            "unsupported checksum type {:?} for {}",
            d.checksum_type, d.href
        ),
    })?;
    if !actual.eq_ignore_ascii_case(&d.checksum) {
        return Err(RepoError::Checksum {
            path,
            what: "checksum",
            expected: d.checksum.clone(),
            actual,
        });
    }
    let data = xml::decompress(&path, &raw)?;
    if let Some(open) = &d.open_checksum {
        let actual = xml::digest_hex(&d.checksum_type, &data).unwrap_or_default();
        if !actual.eq_ignore_ascii_case(open) {
            return Err(RepoError::Checksum {
                path,
                what: "open-checksum",
                expected: open.clone(),
                actual,
            });
        }
    }
    Ok(data)
}

fn load_repodata(dir: &Path, name: &str) -> Result<RepoIndex, RepoError> {
    let repomd = dir.join("repodata").join("repomd.xml");
    let raw = std::fs::read(&repomd).map_err(io_err(&repomd))?;
    let (entries, _) = xml::parse_repomd(&repomd, &raw)?;
    let find = |k: &str| entries.iter().find(|d| d.kind == k);
    let primary = find("primary").ok_or_else(|| RepoError::Metadata {
        path: repomd.clone(),
        message: "no 'primary' entry; regenerate the repodata".into(),
    })?;
    // primary, filelists and comps are independent: read and parse them in parallel.
    let (prim, (files, comps)) = rayon::join(
        || {
            let data = read_verified(dir, &repomd, primary)?;
            xml::parse_primary(&dir.join(&primary.href), &data)
        },
        || {
            rayon::join(
                || {
                    find("filelists")
                        .map(|d| read_verified(dir, &repomd, d).map(|b| (d.href.clone(), b)))
                        .transpose()
                },
                || {
                    find("group_gz")
                        .or_else(|| find("group"))
                        .map(|d| {
                            let data = read_verified(dir, &repomd, d)?;
                            comps::parse_comps(&dir.join(&d.href), &data)
                        })
                        .transpose()
                },
            )
        },
    );
    let mut packages = prim?;
    if let Some((href, data)) = files? {
        xml::merge_filelists(&dir.join(href), &data, &mut packages)?;
    }
    Ok(RepoIndex {
        name: name.to_string(),
        packages,
        groups: comps?.unwrap_or_default(),
        checksum: format!(
            "sha256:{}",
            xml::digest_hex("sha256", &raw).unwrap_or_default()
        ),
        base: dir.to_path_buf(),
    })
}
