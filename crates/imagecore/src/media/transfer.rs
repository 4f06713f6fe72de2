//! Copying one medium's tree into a staging directory: parallel file copies that hash as they
//! go (blake3 for the fingerprint, sha256/sha512 for `.treeinfo` `[checksums]`).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rayon::prelude::*;

use super::detect::{DistroInfo, TreeHasher};
use super::fingerprint::{combine, entry_line};
use super::{EntryKind, MediaEntry, MediaError, MediaReader};

/// What copying one medium produced.
pub(crate) struct Copied {
    /// The medium's content fingerprint.
    pub fingerprint: String,
    /// Files copied.
    pub files: u64,
    /// Bytes copied.
    pub bytes: u64,
}

/// Copies `reader`'s tree into `root` (which exists). Directory modes are NOT applied yet (see
/// [`finish_dirs`]) so that further media can be merged in.
pub(crate) fn copy_into(
    reader: &dyn MediaReader,
    info: &DistroInfo,
    root: &Path,
    progress: &dyn Fn(u64, u64),
) -> Result<Copied, MediaError> {
    let entries = reader.entries();
    let media = reader.source().to_path_buf();
    let mut want: HashMap<&str, (&str, &str)> = HashMap::new();
    for c in &info.checksums {
        match reader.stat(&c.path) {
            Ok(e) if e.kind == EntryKind::File => {}
            _ => {
                return Err(MediaError::BadInfo {
                    media,
                    file: ".treeinfo".into(),
                    why: format!(
                        "[checksums] lists {} but the media has no such file",
                        c.path
                    ),
                });
            }
        }
        want.insert(c.path.as_str(), (c.algo.as_str(), c.hex.as_str()));
    }

    for e in entries {
        let p = root.join(&e.path);
        match e.kind {
            EntryKind::Dir => match std::fs::create_dir(&p) {
                Ok(()) => {}
                // Merged media: an existing real directory is fine; never follow a symlink a
                // previous disc put there.
                Err(err)
                    if err.kind() == std::io::ErrorKind::AlreadyExists
                        && std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) => {}
                Err(err) => return Err(MediaError::io(&p, err)),
            },
            EntryKind::Symlink => {
                let _ = std::fs::remove_file(&p);
                let target = e.target.as_deref().unwrap_or_default();
                std::os::unix::fs::symlink(target, &p).map_err(|err| MediaError::io(&p, err))?;
                if let Some(t) = e.mtime {
                    let ft = filetime::FileTime::from_unix_time(t, 0);
                    let _ = filetime::set_symlink_file_times(&p, ft, ft);
                }
            }
            EntryKind::File => {}
        }
    }

    let files: Vec<(usize, &MediaEntry)> = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.kind == EntryKind::File)
        .collect();
    let total: u64 = files.iter().map(|(_, e)| e.size).sum();
    let done = AtomicU64::new(0);
    let result = std::thread::scope(|s| {
        let worker = s.spawn(|| {
            files
                .par_iter()
                .map(|(i, e)| {
                    let check = want.get(e.path.as_str()).copied();
                    copy_file(reader, e, &root.join(&e.path), check, &done).map(|h| (*i, h))
                })
                .collect::<Result<Vec<(usize, blake3::Hash)>, MediaError>>()
        });
        while !worker.is_finished() {
            progress(done.load(Ordering::Relaxed), total);
            std::thread::sleep(Duration::from_millis(50));
        }
        worker.join()
    });
    let hashes = match result {
        Ok(r) => r?,
        Err(_) => {
            return Err(MediaError::Conflict(format!(
                "{}: a copy thread panicked",
                reader.source().display()
            )));
        }
    };
    progress(total, total);

    let mut by_index: HashMap<usize, blake3::Hash> = hashes.into_iter().collect();
    let lines: Vec<String> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| entry_line(e, by_index.remove(&i).as_ref()))
        .collect();
    Ok(Copied {
        fingerprint: combine(lines.iter().map(String::as_str)),
        files: files.len() as u64,
        bytes: total,
    })
}

/// Copies one file, hashing it; applies its mode and mtime.
fn copy_file(
    reader: &dyn MediaReader,
    e: &MediaEntry,
    dest: &Path,
    check: Option<(&str, &str)>,
    done: &AtomicU64,
) -> Result<blake3::Hash, MediaError> {
    let read_err = |source| MediaError::Read {
        media: reader.source().to_path_buf(),
        path: e.path.clone(),
        source,
    };
    let mut src = reader.open(&e.path)?;
    if std::fs::symlink_metadata(dest).is_ok() {
        let _ = std::fs::remove_file(dest);
    }
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dest)
        .map_err(|err| MediaError::io(dest, err))?;
    let mut h = blake3::Hasher::new();
    let mut sha = check.map(|(algo, _)| TreeHasher::new(algo));
    let mut buf = vec![0u8; (e.size as usize).clamp(4096, 1 << 20)];
    let mut n_total = 0u64;
    loop {
        let n = src.read(&mut buf).map_err(read_err)?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        h.update(chunk);
        if let Some(s) = sha.as_mut() {
            s.update(chunk);
        }
        out.write_all(chunk)
            .map_err(|err| MediaError::io(dest, err))?;
        n_total += n as u64;
        done.fetch_add(n as u64, Ordering::Relaxed);
    }
    if n_total != e.size {
        return Err(MediaError::Read {
            media: reader.source().to_path_buf(),
            path: e.path.clone(),
            source: std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("read {n_total} bytes, the media lists {}", e.size),
            ),
        });
    }
    if let (Some(s), Some((algo, hex))) = (sha, check) {
        let actual = s.finish();
        if actual != hex {
            return Err(MediaError::ChecksumMismatch {
                media: reader.source().to_path_buf(),
                path: e.path.clone(),
                expected: format!("{algo}:{hex}"),
                actual: format!("{algo}:{actual}"),
            });
        }
    }
    out.set_permissions(std::fs::Permissions::from_mode(e.mode))
        .map_err(|err| MediaError::io(dest, err))?;
    if let Some(t) = e.mtime {
        let _ = out.set_modified(
            std::time::UNIX_EPOCH + Duration::from_secs(u64::try_from(t).unwrap_or(0)),
        );
    }
    Ok(h.finalize())
}

/// Applies directory modes and mtimes, deepest first, once every medium is in.
pub(crate) fn finish_dirs(root: &Path, dirs: &[MediaEntry]) -> Result<(), MediaError> {
    let mut dirs: Vec<&MediaEntry> = dirs.iter().collect();
    dirs.sort_by(|a, b| b.path.cmp(&a.path));
    for d in dirs {
        let p: PathBuf = root.join(&d.path);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(d.mode))
            .map_err(|err| MediaError::io(&p, err))?;
        if let Some(t) = d.mtime {
            let ft = filetime::FileTime::from_unix_time(t, 0);
            let _ = filetime::set_file_mtime(&p, ft);
        }
    }
    Ok(())
}
