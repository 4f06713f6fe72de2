//! Install media: ISO 9660 reading without mounting, distro detection, and `copycds`.
//!
//! - [`MediaReader`] is our small adapter over an install medium: an ISO file or block device read
//!   through `hadris-iso` (Rock Ridge, then Joliet, then the primary tree), or an
//!   already-extracted directory. [`open_media`] picks the right one.
//! - [`detect`] identifies the distro from `.discinfo` / `.treeinfo` (and SUSE's
//!   `media.1/products`) and maps it to xCAT's names (`rhels9.4`, `rocky9.4`, …).
//! - [`copycds`] copies media into `<store>/<distname>/<arch>` atomically, recording a content
//!   fingerprint so that a re-run on the same media is a no-op.

mod copy;
mod detect;
mod dir;
mod error;
mod fingerprint;
mod install;
mod iso;
mod record;
mod transfer;

use std::io::Read;
use std::path::{Path, PathBuf};

pub use copy::{CopyOptions, CopyReport, copycds, media_stamp, resolve_media_ref};
pub use detect::{DistroInfo, TreeChecksum, detect, verify_checksums};
pub use error::MediaError;
pub use fingerprint::media_fingerprint;
pub use record::{MediaRecord, RECORD_FILE, SourceRecord};

/// What kind of node a media entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
}

/// One node of a medium's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaEntry {
    /// Root-relative path with `/` separators and no leading `/` (the root itself is not listed).
    pub path: String,
    /// File, directory or symlink.
    pub kind: EntryKind,
    /// Permission bits (`0o7777` part of `st_mode`). Media without modes (Joliet, the primary
    /// ISO 9660 tree) report `0o755` for directories and `0o644` for files.
    pub mode: u32,
    /// File length in bytes (0 for directories and symlinks).
    pub size: u64,
    /// Symlink target, for symlinks.
    pub target: Option<String>,
    /// Modification time in seconds since the epoch, when the medium records one.
    pub mtime: Option<i64>,
}

/// Which name tree of the medium is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaTree {
    /// ISO 9660 with Rock Ridge (POSIX names, modes, symlinks).
    RockRidge,
    /// ISO 9660 Joliet (UCS-2 names, no modes, no symlinks).
    Joliet,
    /// ISO 9660:1999 enhanced tree.
    Enhanced,
    /// The primary ISO 9660 tree (8.3 names).
    Primary,
    /// A host directory (an already-extracted tree).
    Directory,
}

impl std::fmt::Display for MediaTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MediaTree::RockRidge => "ISO 9660 + Rock Ridge",
            MediaTree::Joliet => "ISO 9660 Joliet",
            MediaTree::Enhanced => "ISO 9660:1999",
            MediaTree::Primary => "ISO 9660 (primary tree, 8.3 names)",
            MediaTree::Directory => "directory",
        })
    }
}

/// An install medium opened for reading: its tree is listed once when it is opened.
///
/// Implementations are shareable between threads, and every `open` returns an independent reader,
/// so files can be copied in parallel.
pub trait MediaReader: Send + Sync {
    /// The path the medium was opened from.
    fn source(&self) -> &Path;

    /// Which tree is read (Rock Ridge > Joliet > primary for ISO images).
    fn tree(&self) -> MediaTree;

    /// Every entry of the medium except the root, sorted by path bytes.
    fn entries(&self) -> &[MediaEntry];

    /// Opens a regular file for a streaming read.
    fn open(&self, path: &str) -> Result<Box<dyn Read + Send + '_>, MediaError>;

    /// The entry at `path` (root-relative, no leading `/`).
    fn stat(&self, path: &str) -> Result<&MediaEntry, MediaError> {
        let path = path.trim_start_matches('/');
        let entries = self.entries();
        entries
            .binary_search_by(|e| e.path.as_str().cmp(path))
            .map(|i| &entries[i])
            .map_err(|_| MediaError::NotFound {
                media: self.source().to_path_buf(),
                path: path.to_string(),
            })
    }

    /// Reads a whole (small) file into memory.
    fn read_file(&self, path: &str) -> Result<Vec<u8>, MediaError> {
        let mut out = Vec::new();
        self.open(path)?
            .read_to_end(&mut out)
            .map_err(|source| MediaError::Read {
                media: self.source().to_path_buf(),
                path: path.to_string(),
                source,
            })?;
        Ok(out)
    }
}

/// Opens an install medium: an ISO image file, a block device (read as an ISO image), or a
/// directory holding an already-extracted tree.
pub fn open_media(path: &Path) -> Result<Box<dyn MediaReader>, MediaError> {
    use std::os::unix::fs::FileTypeExt;
    let meta = std::fs::metadata(path).map_err(|source| MediaError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let ft = meta.file_type();
    if ft.is_dir() {
        Ok(Box::new(dir::DirReader::open(path)?))
    } else if ft.is_file() || ft.is_block_device() {
        Ok(Box::new(iso::IsoReader::open(path)?))
    } else {
        Err(MediaError::NotMedia {
            path: path.to_path_buf(),
            why: "it is neither a file, a block device nor a directory".into(),
        })
    }
}

/// Normalises an architecture name the way xCAT does (`i?86` → `x86`, `ppc64el` → `ppc64le`,
/// other `ppc*` → `ppc64`).
pub fn normalize_arch(arch: &str) -> String {
    let a = arch.trim();
    let b = a.as_bytes();
    if b.len() == 4 && b[0] == b'i' && &a[2..] == "86" {
        "x86".into()
    } else if a == "ppc64le" || a == "ppc64el" {
        "ppc64le".into()
    } else if a.starts_with("ppc") {
        "ppc64".into()
    } else {
        a.to_string()
    }
}

/// Makes `p` absolute against the current directory (without resolving symlinks).
pub(crate) fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arch_normalisation() {
        assert_eq!(normalize_arch("i686"), "x86");
        assert_eq!(normalize_arch("i386"), "x86");
        assert_eq!(normalize_arch("ppc64el"), "ppc64le");
        assert_eq!(normalize_arch("ppc"), "ppc64");
        assert_eq!(normalize_arch("x86_64"), "x86_64");
        assert_eq!(normalize_arch("aarch64"), "aarch64");
    }
}
