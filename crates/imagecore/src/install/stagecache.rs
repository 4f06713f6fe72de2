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
///
/// Memory stays bounded: only files up to [`STORE_IN_MEMORY`] are read whole; a larger one
/// whose hash is known is streamed into the store (hashed once more on the way, the check that
/// the staged file still is what staging hashed), never read whole nor memory-mapped.
fn put_staged(store: &Store, path: &Path, known: Option<Hash>) -> Result<Hash, InstallError> {
    let io = |source| InstallError::Io {
        path: path.to_path_buf(),
        source,
    };
    let Some(h) = known else {
        return Ok(store.put_file(path)?.0);
    };
    if store.has(&h) {
        return Ok(h);
    }
    let mut f = std::fs::File::open(path).map_err(io)?;
    let size = f.metadata().map_err(io)?.len();
    if size > STORE_IN_MEMORY {
        let (got, _) = store.put_stream(&[], &mut f)?;
        if got != h {
            return Err(InstallError::Package {
                path: path.to_path_buf(),
                message: format!(
                    "staged file changed while it was stored (blake3 {got}, staging saw {h}); run the build again"
                ),
            });
        }
        return Ok(got);
    }
    if store.compression() {
        return Ok(store.put_file(path)?.0);
    }
    let mut data = Vec::with_capacity(size as usize);
    f.read_to_end(&mut data).map_err(io)?;
    store.append(&h, data.len() as u64, 0, &data)?;
    Ok(h)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(len: usize, seed: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; len];
        blake3::Hasher::new()
            .update(seed)
            .finalize_xof()
            .fill(&mut v);
        v
    }

    #[test]
    fn large_staged_file_with_known_hash_is_streamed_and_checked() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(&d.path().join("cache")).unwrap();
        let big = noise((STORE_IN_MEMORY + 4097) as usize, b"big");
        let p = d.path().join("staged");
        std::fs::write(&p, &big).unwrap();
        let h = Hash::of(&big);
        assert_eq!(put_staged(&store, &p, Some(h)).unwrap(), h);
        assert_eq!(store.read(&h).unwrap(), big);
        // a staged file that no longer has the hash staging saw is refused
        let other = noise((STORE_IN_MEMORY + 1) as usize, b"other");
        std::fs::write(&p, &other).unwrap();
        let stale = Hash::of(b"what staging saw");
        let err = put_staged(&store, &p, Some(stale)).unwrap_err().to_string();
        assert!(err.contains("changed while it was stored"), "{err}");
        // small ones: appended from memory under the known hash; unknown: hashed
        let small = noise(1000, b"small");
        std::fs::write(&p, &small).unwrap();
        assert_eq!(
            put_staged(&store, &p, Some(Hash::of(&small))).unwrap(),
            Hash::of(&small)
        );
        let unknown = noise((STORE_IN_MEMORY + 7) as usize, b"unknown");
        std::fs::write(&p, &unknown).unwrap();
        let hu = put_staged(&store, &p, None).unwrap();
        assert_eq!(hu, Hash::of(&unknown));
        assert_eq!(store.read(&hu).unwrap(), unknown);
        // stored already: not read again (the file may even be gone)
        std::fs::remove_file(&p).unwrap();
        assert_eq!(put_staged(&store, &p, Some(hu)).unwrap(), hu);
    }
}
