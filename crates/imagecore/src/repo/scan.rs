//! Indexing a plain directory of `.rpm` files (no repodata): parallel header reads.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::{RepoError, RepoIndex};

/// Every `.rpm` below `dir`, sorted, as (absolute, relative) paths.
pub(crate) fn rpm_files(dir: &Path) -> Result<Vec<(PathBuf, String)>, RepoError> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name()
    {
        let entry = entry.map_err(|e| RepoError::Io {
            path: e.path().unwrap_or(dir).to_path_buf(),
            source: e
                .into_io_error()
                .unwrap_or_else(|| std::io::Error::other("filesystem loop")),
        })?;
        let p = entry.path();
        if entry.file_type().is_file() && p.extension().is_some_and(|e| e == "rpm") {
            let rel = p
                .strip_prefix(dir)
                .unwrap_or(p)
                .to_string_lossy()
                .into_owned();
            out.push((p.to_path_buf(), rel));
        }
    }
    Ok(out)
}

/// blake3 over (relative path, size, mtime) of every `.rpm`.
pub(crate) fn scan_digest(dir: &Path) -> Result<String, RepoError> {
    let files = rpm_files(dir)?;
    if files.is_empty() {
        return Err(RepoError::NoRepo {
            path: dir.to_path_buf(),
        });
    }
    let mut h = blake3::Hasher::new();
    for (abs, rel) in &files {
        let md = std::fs::metadata(abs).map_err(super::io_err(abs))?;
        let mtime = md
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
        h.update(rel.as_bytes());
        h.update(&[0]);
        h.update(&md.len().to_le_bytes());
        h.update(&mtime.map(|d| d.as_nanos()).unwrap_or(0).to_le_bytes());
    }
    Ok(h.finalize().to_hex().to_string())
}

/// Read every header below `dir` in parallel (source RPMs are skipped).
pub(crate) fn scan_dir(dir: &Path, name: &str) -> Result<RepoIndex, RepoError> {
    let files = rpm_files(dir)?;
    if files.is_empty() {
        return Err(RepoError::NoRepo {
            path: dir.to_path_buf(),
        });
    }
    let checksum = format!("scan:{}", scan_digest(dir)?);
    let packages = files
        .par_iter()
        .map(|(abs, rel)| {
            let mut m = crate::rpm::read_header(abs)?;
            m.location = rel.clone();
            Ok(m)
        })
        .collect::<Result<Vec<_>, RepoError>>()?
        .into_iter()
        .filter(|m| m.arch != "src" && m.arch != "nosrc")
        .collect();
    Ok(RepoIndex {
        name: name.to_string(),
        packages,
        groups: Vec::new(),
        checksum,
        base: dir.to_path_buf(),
    })
}
