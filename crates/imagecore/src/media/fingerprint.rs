//! The media fingerprint: blake3 over the sorted entry list with each file's content hash.

use std::io::Read;

use rayon::prelude::*;

use super::{EntryKind, MediaEntry, MediaError, MediaReader};

/// The line one entry contributes to the fingerprint. Files carry their blake3 content hash.
pub(crate) fn entry_line(e: &MediaEntry, content: Option<&blake3::Hash>) -> String {
    match e.kind {
        EntryKind::Dir => format!("D {:o} {}\n", e.mode, e.path),
        EntryKind::Symlink => format!(
            "L {} -> {}\n",
            e.path,
            e.target.as_deref().unwrap_or_default()
        ),
        EntryKind::File => format!(
            "F {:o} {} {} {}\n",
            e.mode,
            e.size,
            content.map(|h| h.to_hex().to_string()).unwrap_or_default(),
            e.path
        ),
    }
}

/// Combines per-entry lines (in the reader's sorted order) into the fingerprint.
pub(crate) fn combine<'a>(lines: impl Iterator<Item = &'a str>) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"osimage-media-fingerprint v1\n");
    for l in lines {
        h.update(l.as_bytes());
    }
    h.finalize().to_hex().to_string()
}

/// Hashes one file of the media with blake3.
pub(crate) fn hash_file(reader: &dyn MediaReader, path: &str) -> Result<blake3::Hash, MediaError> {
    let size = reader.stat(path).map(|e| e.size).unwrap_or(0);
    let mut f = reader.open(path)?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; (size as usize).clamp(4096, 1 << 20)];
    loop {
        let n = f.read(&mut buf).map_err(|source| MediaError::Read {
            media: reader.source().to_path_buf(),
            path: path.to_string(),
            source,
        })?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize())
}

/// The content fingerprint of a medium: blake3 of the sorted list of entries (type, mode, path,
/// symlink target) with the blake3 hash of every file's content. Reads every file (in parallel).
///
/// An ISO image and the tree `xorriso -osirrox on -extract` makes of it have the same
/// fingerprint, and so does the copy copycds makes.
pub fn media_fingerprint(reader: &dyn MediaReader) -> Result<String, MediaError> {
    let lines: Vec<String> = reader
        .entries()
        .par_iter()
        .map(|e| {
            let h = if e.kind == EntryKind::File {
                Some(hash_file(reader, &e.path)?)
            } else {
                None
            };
            Ok(entry_line(e, h.as_ref()))
        })
        .collect::<Result<_, MediaError>>()?;
    Ok(combine(lines.iter().map(String::as_str)))
}
