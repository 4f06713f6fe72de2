//! [`MediaReader`] over a directory holding an already-extracted media tree.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{EntryKind, MediaEntry, MediaError, MediaReader, MediaTree, RECORD_FILE};

/// A directory opened as media.
pub(crate) struct DirReader {
    root: PathBuf,
    entries: Vec<MediaEntry>,
}

impl DirReader {
    /// Lists the tree below `root` (symlinks are not followed). A copycds record file at the top
    /// (from a previous import) is not part of the media.
    pub(crate) fn open(root: &Path) -> Result<DirReader, MediaError> {
        let root = super::absolute(root);
        let mut entries = Vec::new();
        for item in walkdir::WalkDir::new(&root)
            .min_depth(1)
            .follow_links(false)
            .sort_by_file_name()
        {
            let item = item.map_err(|e| {
                let p = e.path().map(Path::to_path_buf).unwrap_or(root.clone());
                MediaError::Io {
                    path: p,
                    source: e
                        .into_io_error()
                        .unwrap_or_else(|| std::io::Error::other("directory loop")),
                }
            })?;
            let rel_path = item.path().strip_prefix(&root).unwrap_or(item.path());
            let Some(rel) = rel_path.to_str() else {
                return Err(MediaError::Unsupported {
                    media: root.clone(),
                    path: rel_path.to_string_lossy().into_owned(),
                    why: "the name is not UTF-8".into(),
                });
            };
            if rel == RECORD_FILE {
                continue;
            }
            let meta = item
                .metadata()
                .map_err(|e| MediaError::io(item.path(), std::io::Error::other(e)))?;
            let ft = meta.file_type();
            let mode = meta.permissions().mode() & 0o7777;
            let mtime = Some(meta.mtime());
            let entry = if ft.is_dir() {
                MediaEntry {
                    path: rel.to_string(),
                    kind: EntryKind::Dir,
                    mode,
                    size: 0,
                    target: None,
                    mtime,
                }
            } else if ft.is_symlink() {
                let t =
                    std::fs::read_link(item.path()).map_err(|e| MediaError::io(item.path(), e))?;
                let Some(t) = t.to_str() else {
                    return Err(MediaError::Unsupported {
                        media: root.clone(),
                        path: rel.to_string(),
                        why: "the symlink target is not UTF-8".into(),
                    });
                };
                MediaEntry {
                    path: rel.to_string(),
                    kind: EntryKind::Symlink,
                    mode: 0o777,
                    size: 0,
                    target: Some(t.to_string()),
                    mtime,
                }
            } else if ft.is_file() {
                MediaEntry {
                    path: rel.to_string(),
                    kind: EntryKind::File,
                    mode,
                    size: meta.len(),
                    target: None,
                    mtime,
                }
            } else {
                return Err(MediaError::Unsupported {
                    media: root.clone(),
                    path: rel.to_string(),
                    why:
                        "special files (devices, fifos, sockets) are not supported on install media"
                            .into(),
                });
            };
            entries.push(entry);
        }
        // walkdir sorts per directory by name; a global sort by path bytes puts "a/b" after "a.x"
        // differently, so sort once more.
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(DirReader { root, entries })
    }
}

impl MediaReader for DirReader {
    fn source(&self) -> &Path {
        &self.root
    }

    fn tree(&self) -> MediaTree {
        MediaTree::Directory
    }

    fn entries(&self) -> &[MediaEntry] {
        &self.entries
    }

    fn open(&self, path: &str) -> Result<Box<dyn Read + Send + '_>, MediaError> {
        let path = path.trim_start_matches('/');
        let e = self.stat(path)?;
        if e.kind != EntryKind::File {
            return Err(MediaError::Unsupported {
                media: self.root.clone(),
                path: path.to_string(),
                why: "not a regular file".into(),
            });
        }
        let full = self.root.join(path);
        let f = std::fs::File::open(&full).map_err(|source| MediaError::Read {
            media: self.root.clone(),
            path: path.to_string(),
            source,
        })?;
        Ok(Box::new(f))
    }
}
