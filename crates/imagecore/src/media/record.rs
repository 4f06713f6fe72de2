//! The record copycds writes into every imported media tree.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::MediaError;

/// The record file's name, at the top of the copied tree.
pub const RECORD_FILE: &str = ".osimage-media.toml";

/// What copycds recorded about an imported medium.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaRecord {
    /// Content fingerprint (see [`media_fingerprint`](super::media_fingerprint)); with several
    /// media merged into one destination, blake3 of their fingerprints in order.
    pub fingerprint: String,
    /// xCAT distro name.
    pub distname: String,
    /// Architecture.
    pub arch: String,
    /// The media that were copied here.
    pub sources: Vec<SourceRecord>,
    /// Repository roots (dirs holding `repodata/repomd.xml`), relative to the tree.
    pub repos: Vec<String>,
    /// GPG key files (`RPM-GPG-KEY*`), relative to the tree.
    pub gpgkeys: Vec<String>,
    /// Number of files copied.
    pub files: u64,
    /// Bytes copied.
    pub bytes: u64,
}

/// One medium of a [`MediaRecord`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRecord {
    /// Absolute path of the ISO, device or directory.
    pub path: PathBuf,
    /// This medium's content fingerprint.
    pub fingerprint: String,
    /// Disc number(s).
    pub discno: String,
    /// Description (`.discinfo` line 2).
    pub description: String,
    /// A cheap stat stamp (size, mtime, inode of an ISO file; of every entry of a directory)
    /// used only to skip re-hashing unchanged media, never as the identity. Empty for devices.
    pub stamp: String,
}

impl MediaRecord {
    /// Reads `<dir>/.osimage-media.toml`; `Ok(None)` when there is none.
    pub fn load(dir: &Path) -> Result<Option<MediaRecord>, MediaError> {
        let p = dir.join(RECORD_FILE);
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(MediaError::io(p, e)),
        };
        toml::from_str(&text)
            .map(Some)
            .map_err(|e| MediaError::BadRecord {
                path: p,
                why: e.to_string(),
            })
    }

    /// Writes the record into `dir`.
    pub(crate) fn save(&self, dir: &Path) -> Result<(), MediaError> {
        let p = dir.join(RECORD_FILE);
        let text = toml::to_string(self).map_err(|e| MediaError::BadRecord {
            path: p.clone(),
            why: e.to_string(),
        })?;
        std::fs::write(&p, text).map_err(|e| MediaError::io(&p, e))
    }
}
