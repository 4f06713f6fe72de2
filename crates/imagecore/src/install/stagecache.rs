//! Unpacked packages cached in the store, by the sha256 of the `.rpm` file and the staging
//! implementation version: a second image (or pass) that installs the same package restores
//! its staged files from the store's blobs instead of decompressing the payload again.
//!
//! A cache entry is a store record `stage-v<VERSION>-<sha256>` listing, per header file index,
//! the blob of its content (regular files with data), its device numbers and whether the
//! payload had it. It is only written after the payload digests were checked, and only used
//! after the file's sha256 was checked again, so it never vouches for a file it has not seen.
//! Blobs dropped by `store gc` turn an entry into a miss.

use std::io::Read;
use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::Digest;

use super::InstallError;
use super::package::Pkg;
use super::stage::Staged;
use crate::hash::Hash;
use crate::store::Store;

/// Version of the staging implementation: bump it when what staging produces changes, so
/// entries of older versions are ignored.
pub const STAGE_VERSION: u32 = 1;

/// Store record name of the cache entry for a package file with this sha256.
pub fn record_name(sha256: &str) -> String {
    format!("stage-v{STAGE_VERSION}-{}", sha256.to_ascii_lowercase())
}

#[derive(Serialize, Deserialize)]
struct Record {
    /// Number of file entries of the header (a sanity check).
    files: usize,
    /// (file index, blob) of every staged regular file.
    data: Vec<(usize, Hash)>,
    /// (file index, major, minor) of entries with device numbers.
    rdev: Vec<(usize, u32, u32)>,
    /// Per file index: seen in the payload.
    in_payload: Vec<bool>,
}

/// Store a staged file whose blake3 staging may already know (then it is not hashed again, and
/// not even read when the store has it).
fn put_staged(store: &Store, path: &Path, known: Option<Hash>) -> Result<Hash, InstallError> {
    if let Some(h) = known {
        if store.has(&h) {
            return Ok(h);
        }
        if !store.compression() {
            let data = std::fs::read(path).map_err(|source| InstallError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            if (data.len() as u64) <= STORE_IN_MEMORY {
                store.append(&h, data.len() as u64, 0, &data)?;
                return Ok(h);
            }
        }
    }
    Ok(store.put_file(path)?.0)
}

/// Largest blob the store appends from memory (its own limit for `put_bytes`).
const STORE_IN_MEMORY: u64 = 16 << 20;

/// sha256 (hex) of a whole file.
pub fn sha256_file(path: &Path) -> Result<String, InstallError> {
    let io = |source| InstallError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Restore `pkg`'s staged files into `dir` from the cache entry for `sha256`, if there is a
/// usable one (`None`: a miss; stage from the payload). `verify` runs before anything is
/// restored (it checks that the file really has that sha256 when the key came from a lock).
pub fn restore(
    store: &Store,
    sha256: &str,
    pkg: &Pkg,
    dir: &Path,
    verify: impl FnOnce() -> Result<(), InstallError>,
) -> Result<Option<Staged>, InstallError> {
    let Some(data) = store.get_record(&record_name(sha256))? else {
        return Ok(None);
    };
    let rec: Record = match serde_json::from_slice(&data) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(
                "{}: unreadable stage cache entry ({e}); unpacking again",
                pkg.nevra
            );
            return Ok(None);
        }
    };
    let n = pkg.files.len();
    if rec.files != n
        || rec.in_payload.len() != n
        || rec.data.iter().any(|(i, _)| *i >= n)
        || rec.rdev.iter().any(|(i, ..)| *i >= n)
        || !rec.data.iter().all(|(_, h)| store.has(h))
    {
        return Ok(None);
    }
    verify()?;
    std::fs::create_dir_all(dir).map_err(|source| InstallError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut st = Staged::empty(pkg, dir);
    st.in_payload = rec.in_payload;
    st.blobs = vec![None; n];
    for (i, maj, min) in rec.rdev {
        st.rdev[i] = (maj, min);
    }
    for (i, h) in &rec.data {
        st.has_data[*i] = true;
        st.blobs[*i] = Some(*h);
    }
    rec.data
        .par_iter()
        .map(|(i, h)| store.blob_to_file(h, &st.data_path(*i)))
        .collect::<Result<Vec<()>, _>>()?;
    st.file_sha256 = Some(sha256.to_ascii_lowercase());
    Ok(Some(st))
}

/// Put the staged content of `st` into the store (blob ids into [`Staged::blobs`]) and write
/// its cache entry (when the file's sha256 is known). Called once the payload is verified.
pub fn save(store: &Store, pkg: &Pkg, st: &mut Staged) -> Result<(), InstallError> {
    let n = pkg.files.len();
    let todo: Vec<(usize, Option<Hash>)> = (0..n)
        .filter(|&i| st.has_data[i])
        .map(|i| (i, st.blobs.get(i).copied().flatten()))
        .collect();
    let blobs = todo
        .par_iter()
        .map(|&(i, known)| put_staged(store, &st.data_path(i), known).map(|h| (i, h)))
        .collect::<Result<Vec<_>, _>>()?;
    st.blobs = vec![None; n];
    for (i, h) in &blobs {
        st.blobs[*i] = Some(*h);
    }
    let Some(sha) = &st.file_sha256 else {
        return Ok(());
    };
    let rec = Record {
        files: n,
        data: blobs,
        rdev: st
            .rdev
            .iter()
            .enumerate()
            .filter(|(_, r)| **r != (0, 0))
            .map(|(i, (a, b))| (i, *a, *b))
            .collect(),
        in_payload: st.in_payload.clone(),
    };
    let bytes = serde_json::to_vec(&rec).map_err(|e| InstallError::Package {
        path: pkg.rpm.path.clone(),
        message: format!("stage cache entry: {e}"),
    })?;
    store.put_record(&record_name(sha), &bytes)?;
    Ok(())
}
