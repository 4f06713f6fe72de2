//! Walking a directory into manifest entries (metadata, xattrs, hardlink groups); the content of
//! regular files is filled in by a caller-supplied function, in parallel.

use std::collections::{BTreeMap, HashMap};
use std::fs::Metadata;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::hash::Hash;

use super::TreeError;
use super::manifest::{Entry, Kind, Manifest};

/// One walked filesystem object.
pub(crate) struct Walked {
    /// Root-relative path.
    pub rel: String,
    /// Absolute path.
    pub abs: PathBuf,
    /// lstat result.
    pub md: Metadata,
    /// Extended attributes.
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

fn io(path: &Path, source: std::io::Error) -> TreeError {
    TreeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Read every extended attribute of `path` (not following symlinks). A filesystem without
/// xattr support gives none.
pub(crate) fn read_xattrs(path: &Path) -> Result<BTreeMap<String, Vec<u8>>, TreeError> {
    let mut out = BTreeMap::new();
    let names = match xattr::list(path) {
        Ok(n) => n,
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOTSUP.raw_os_error()) => {
            return Ok(out);
        }
        Err(e) => return Err(io(path, e)),
    };
    for name in names {
        let Some(n) = name.to_str() else {
            return Err(TreeError::NonUtf8 {
                path: path.to_path_buf(),
                what: format!("extended attribute name {name:?}"),
            });
        };
        match xattr::get(path, &name) {
            Ok(Some(v)) => {
                out.insert(n.to_string(), v);
            }
            Ok(None) => {}
            Err(e) => return Err(io(path, e)),
        }
    }
    Ok(out)
}

/// Walk `dir` (not including `dir` itself), in manifest order, with metadata and xattrs.
pub(crate) fn walk(dir: &Path) -> Result<Vec<Walked>, TreeError> {
    let mut paths: Vec<(String, PathBuf)> = Vec::new();
    for ent in walkdir::WalkDir::new(dir)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name()
    {
        let ent = ent.map_err(|e| {
            let p = e.path().unwrap_or(dir).to_path_buf();
            match e.into_io_error() {
                Some(ioe) => io(&p, ioe),
                None => io(&p, std::io::Error::other("filesystem loop")),
            }
        })?;
        let abs = ent.path().to_path_buf();
        let rel = abs
            .strip_prefix(dir)
            .ok()
            .and_then(|r| r.to_str())
            .ok_or_else(|| TreeError::NonUtf8 {
                path: abs.clone(),
                what: "file name".into(),
            })?
            .to_string();
        paths.push((rel, abs));
    }
    paths
        .into_par_iter()
        .map(|(rel, abs)| {
            let md = std::fs::symlink_metadata(&abs).map_err(|e| io(&abs, e))?;
            let xattrs = read_xattrs(&abs)?;
            Ok(Walked {
                rel,
                abs,
                md,
                xattrs,
            })
        })
        .collect()
}

/// Nanoseconds since the epoch from seconds + nanoseconds.
pub(crate) fn ns(secs: i64, nsec: i64) -> i64 {
    secs.saturating_mul(1_000_000_000).saturating_add(nsec)
}

/// Build a manifest from walked entries; `content(w)` gives (blob, size) of a regular file and is
/// called once per inode, in parallel.
pub(crate) fn build_manifest<F>(walked: &[Walked], content: F) -> Result<Manifest, TreeError>
where
    F: Fn(&Walked) -> Result<(Hash, u64), TreeError> + Sync,
{
    // Hardlink groups: regular files sharing (dev, ino), numbered in path order from 1.
    let mut by_inode: HashMap<(u64, u64), Vec<usize>> = HashMap::new();
    let mut order: Vec<(u64, u64)> = Vec::new();
    for (i, w) in walked.iter().enumerate() {
        if w.md.file_type().is_file() {
            let k = (w.md.dev(), w.md.ino());
            let v = by_inode.entry(k).or_default();
            if v.is_empty() {
                order.push(k);
            }
            v.push(i);
        }
    }
    let mut group_of: HashMap<usize, u32> = HashMap::new();
    let mut next = 1u32;
    for k in &order {
        let members = &by_inode[k];
        if members.len() > 1 {
            for &i in members {
                group_of.insert(i, next);
            }
            next += 1;
        }
    }
    let leaders: Vec<usize> = order.iter().map(|k| by_inode[k][0]).collect();
    let contents: Vec<(usize, (Hash, u64))> = leaders
        .par_iter()
        .map(|&i| content(&walked[i]).map(|c| (i, c)))
        .collect::<Result<_, _>>()?;
    let mut content_of: HashMap<(u64, u64), (Hash, u64)> = HashMap::new();
    for (i, c) in contents {
        content_of.insert((walked[i].md.dev(), walked[i].md.ino()), c);
    }
    let mut entries = Vec::with_capacity(walked.len());
    let euid = rustix::process::geteuid().as_raw();
    let egid = rustix::process::getegid().as_raw();
    for (i, w) in walked.iter().enumerate() {
        let ft = w.md.file_type();
        let rdev = w.md.rdev();
        let kind = if ft.is_dir() {
            Kind::Dir
        } else if ft.is_file() {
            let (blob, size) = content_of
                .get(&(w.md.dev(), w.md.ino()))
                .copied()
                .unwrap_or_default();
            Kind::File {
                blob,
                size,
                link: group_of.get(&i).copied(),
            }
        } else if ft.is_symlink() {
            let t = std::fs::read_link(&w.abs).map_err(|e| io(&w.abs, e))?;
            let target = t
                .into_os_string()
                .into_string()
                .map_err(|t| TreeError::NonUtf8 {
                    path: w.abs.clone(),
                    what: format!("symlink target {t:?}"),
                })?;
            Kind::Symlink { target }
        } else if ft.is_fifo() {
            Kind::Fifo
        } else if ft.is_socket() {
            Kind::Socket
        } else if ft.is_char_device() {
            Kind::Char {
                major: rustix::fs::major(rdev),
                minor: rustix::fs::minor(rdev),
            }
        } else if ft.is_block_device() {
            Kind::Block {
                major: rustix::fs::major(rdev),
                minor: rustix::fs::minor(rdev),
            }
        } else {
            return Err(io(&w.abs, std::io::Error::other("unknown file type")));
        };
        entries.push(Entry {
            path: w.rel.clone(),
            kind,
            mode: w.md.mode() & 0o7777,
            uid: image_owner(w.md.uid(), euid),
            gid: image_owner(w.md.gid(), egid),
            mtime: w.md.mtime(),
            xattrs: w.xattrs.clone(),
        });
    }
    let mut m = Manifest { entries };
    m.sort();
    Ok(m)
}

/// Unprivileged builds cannot chown: what the building user owns is root's in the image (the
/// fakeroot convention). Builds as root record owners exactly.
fn image_owner(id: u32, mine: u32) -> u32 {
    if mine != 0 && id == mine { 0 } else { id }
}
