//! [`MediaReader`] over an ISO 9660 image (file or block device) through `hadris-iso`.
//!
//! hadris-iso walks the directory records (Rock Ridge > Joliet > enhanced > primary) and maps
//! every file to its extents on the device (several for multi-extent files over 4 GiB). File data
//! is then read straight from those extents with positioned reads, so any number of files can be
//! read at once.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use hadris_fs::sync::FileSystem;
use hadris_fs::{DirCursor, ErrorKind, FileType, MountOptions, NodeId};
use hadris_iso::Namespace;
use hadris_iso::sync::IsoFs;

use super::{EntryKind, MediaEntry, MediaError, MediaReader, MediaTree};

/// One contiguous piece of a file: `len` bytes at byte `offset` of the image.
#[derive(Debug, Clone, Copy)]
struct Piece {
    offset: u64,
    len: u64,
}

/// An ISO image opened for reading.
pub(crate) struct IsoReader {
    path: PathBuf,
    file: File,
    tree: MediaTree,
    entries: Vec<MediaEntry>,
    /// Data pieces per entry index (empty for directories and symlinks).
    pieces: Vec<Vec<Piece>>,
}

fn hadris_err<E: std::fmt::Display>(path: &Path, e: E) -> MediaError {
    MediaError::Corrupt {
        path: path.to_path_buf(),
        why: e.to_string(),
    }
}

impl IsoReader {
    /// Mounts the image (no kernel mount) and lists its tree.
    pub(crate) fn open(path: &Path) -> Result<IsoReader, MediaError> {
        let path = super::absolute(path);
        let file = File::open(&path).map_err(|source| MediaError::Open {
            path: path.clone(),
            source,
        })?;
        let have = hadris_storage::host::file_len(&file).map_err(|source| MediaError::Open {
            path: path.clone(),
            source,
        })?;
        // 16 system-area sectors + the primary volume descriptor.
        const MIN: u64 = 17 * 2048;
        if have < MIN {
            return Err(MediaError::NotIso {
                path,
                why: format!("{have} bytes is too small to hold ISO 9660 volume descriptors"),
            });
        }
        let dev_file = file.try_clone().map_err(|e| MediaError::io(&path, e))?;
        let dev = hadris_storage::host::FileDevice::new(dev_file)
            .map_err(|e| MediaError::io(&path, e))?;
        let mut fs = match IsoFs::mount(dev, MountOptions::new()) {
            Ok(fs) => fs,
            Err(e) if e.kind() == ErrorKind::NotRecognized => {
                return Err(MediaError::NotIso {
                    path,
                    why: "no CD001 volume descriptor at sector 16".into(),
                });
            }
            Err(e) => return Err(hadris_err(&path, e.error())),
        };
        let info = fs.info();
        let needed = u64::from(info.volume_space_size()) * u64::from(info.block_size());
        if needed > have {
            return Err(MediaError::Truncated { path, needed, have });
        }
        let tree = match fs.namespace() {
            Namespace::RockRidge => MediaTree::RockRidge,
            Namespace::Joliet => MediaTree::Joliet,
            Namespace::Enhanced => MediaTree::Enhanced,
            _ => MediaTree::Primary,
        };
        let (entries, pieces) = list(&mut fs, &path, tree, have)?;
        Ok(IsoReader {
            path,
            file,
            tree,
            entries,
            pieces,
        })
    }
}

type Listing = (Vec<MediaEntry>, Vec<Vec<Piece>>);

/// Walks the whole tree, depth first, collecting entries and their extents.
fn list(
    fs: &mut IsoFs<hadris_storage::host::FileDevice>,
    path: &Path,
    tree: MediaTree,
    have: u64,
) -> Result<Listing, MediaError> {
    let rr = tree == MediaTree::RockRidge;
    let mut out: Vec<(MediaEntry, Vec<Piece>)> = Vec::new();
    let mut stack: Vec<(NodeId, String, usize)> = vec![(fs.root(), String::new(), 0)];
    let mut link_buf = vec![0u8; 4096];
    let mut extents = [hadris_fs::Extent::new(0, 0); 16];
    while let Some((dir, prefix, depth)) = stack.pop() {
        if depth > 256 {
            return Err(MediaError::Corrupt {
                path: path.to_path_buf(),
                why: format!("directory nesting deeper than 256 at /{prefix}"),
            });
        }
        let mut cursor = DirCursor::START;
        loop {
            let entry = match fs.readdir(dir, cursor) {
                Ok(Some(e)) => e,
                Ok(None) => break,
                Err(e) => return Err(hadris_err(path, format!("listing /{prefix}: {e}"))),
            };
            cursor = entry.next_cursor();
            let name = std::str::from_utf8(entry.name().as_bytes())
                .map_err(|_| MediaError::Unsupported {
                    media: path.to_path_buf(),
                    path: format!(
                        "{prefix}{}",
                        String::from_utf8_lossy(entry.name().as_bytes())
                    ),
                    why: "the name is not UTF-8".into(),
                })?
                .to_string();
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let meta = entry.metadata();
            let mtime = meta.modified().map(|t| t.unix_seconds());
            let perm = meta.permissions().bits();
            let node = entry.node();
            match meta.file_type() {
                FileType::Dir => {
                    out.push((
                        MediaEntry {
                            path: rel.clone(),
                            kind: EntryKind::Dir,
                            mode: if rr { perm } else { 0o755 },
                            size: 0,
                            target: None,
                            mtime,
                        },
                        Vec::new(),
                    ));
                    stack.push((node, rel, depth + 1));
                }
                FileType::Symlink => {
                    let target = fs
                        .readlink(node, &mut link_buf)
                        .map_err(|e| hadris_err(path, format!("symlink /{rel}: {e}")))?;
                    let target = String::from_utf8(target.to_vec()).map_err(|_| {
                        MediaError::Unsupported {
                            media: path.to_path_buf(),
                            path: rel.clone(),
                            why: "the symlink target is not UTF-8".into(),
                        }
                    })?;
                    out.push((
                        MediaEntry {
                            path: rel,
                            kind: EntryKind::Symlink,
                            mode: 0o777,
                            size: 0,
                            target: Some(target),
                            mtime,
                        },
                        Vec::new(),
                    ));
                }
                FileType::File => {
                    let size = meta.len();
                    let mut pieces = Vec::new();
                    let mut from = 0u64;
                    loop {
                        let n = fs
                            .extents(node, from, &mut extents)
                            .map_err(|e| hadris_err(path, format!("mapping /{rel}: {e}")))?;
                        for x in &extents[..n] {
                            pieces.push(Piece {
                                offset: x.offset(),
                                len: x.len(),
                            });
                            from = x.file_offset() + x.len();
                        }
                        if n < extents.len() {
                            break;
                        }
                    }
                    let total: u64 = pieces.iter().map(|p| p.len).sum();
                    if total != size {
                        return Err(MediaError::Corrupt {
                            path: path.to_path_buf(),
                            why: format!(
                                "/{rel}: extents hold {total} bytes, the record says {size}"
                            ),
                        });
                    }
                    if let Some(end) = pieces.iter().map(|p| p.offset + p.len).max()
                        && end > have
                    {
                        return Err(MediaError::Truncated {
                            path: path.to_path_buf(),
                            needed: end,
                            have,
                        });
                    }
                    out.push((
                        MediaEntry {
                            path: rel,
                            kind: EntryKind::File,
                            mode: if rr { perm } else { 0o644 },
                            size,
                            target: None,
                            mtime,
                        },
                        pieces,
                    ));
                }
                other => {
                    return Err(MediaError::Unsupported {
                        media: path.to_path_buf(),
                        path: rel,
                        why: format!("{other:?} nodes are not supported on install media"),
                    });
                }
            }
        }
    }
    out.sort_by(|a, b| a.0.path.cmp(&b.0.path));
    for w in out.windows(2) {
        if w[0].0.path == w[1].0.path {
            return Err(MediaError::Corrupt {
                path: path.to_path_buf(),
                why: format!("/{} is listed twice", w[0].0.path),
            });
        }
    }
    Ok(out.into_iter().unzip())
}

impl MediaReader for IsoReader {
    fn source(&self) -> &Path {
        &self.path
    }

    fn tree(&self) -> MediaTree {
        self.tree
    }

    fn entries(&self) -> &[MediaEntry] {
        &self.entries
    }

    fn open(&self, path: &str) -> Result<Box<dyn Read + Send + '_>, MediaError> {
        let path = path.trim_start_matches('/');
        let i = self
            .entries
            .binary_search_by(|e| e.path.as_str().cmp(path))
            .map_err(|_| MediaError::NotFound {
                media: self.path.clone(),
                path: path.to_string(),
            })?;
        if self.entries[i].kind != EntryKind::File {
            return Err(MediaError::Unsupported {
                media: self.path.clone(),
                path: path.to_string(),
                why: "not a regular file".into(),
            });
        }
        Ok(Box::new(PieceReader {
            file: &self.file,
            pieces: &self.pieces[i],
            idx: 0,
            pos: 0,
        }))
    }
}

/// Streams a file's pieces with positioned reads.
struct PieceReader<'a> {
    file: &'a File,
    pieces: &'a [Piece],
    idx: usize,
    pos: u64,
}

impl Read for PieceReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let Some(p) = self.pieces.get(self.idx) else {
                return Ok(0);
            };
            let left = p.len - self.pos;
            if left == 0 {
                self.idx += 1;
                self.pos = 0;
                continue;
            }
            let want = (buf.len() as u64).min(left) as usize;
            let n = self.file.read_at(&mut buf[..want], p.offset + self.pos)?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the image ends inside this file (truncated ISO?)",
                ));
            }
            self.pos += n as u64;
            return Ok(n);
        }
    }
}
