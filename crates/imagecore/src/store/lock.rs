//! The build lock: one exclusive `flock` on `<store>/lock`, so two builds on one cache
//! serialise.

use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rustix::fs::{FlockOperation, flock};

use super::{Store, StoreError};

/// Holds the store's exclusive lock; releases it on drop.
#[derive(Debug)]
pub struct StoreLock {
    file: File,
    held: Arc<AtomicUsize>,
}

impl Store {
    /// Take the store's exclusive lock, waiting (and logging "waiting for another build") while
    /// another process holds it. Do not call twice on one thread without dropping the first:
    /// a second lock in the same process on another handle would wait for ever.
    pub fn lock(&self) -> Result<StoreLock, StoreError> {
        let path = self.dir.join("lock");
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| StoreError::io(&path, e))?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                tracing::warn!(
                    "waiting for another build (cache {} is locked)",
                    self.dir.display()
                );
                loop {
                    match flock(&file, FlockOperation::LockExclusive) {
                        Ok(()) => break,
                        Err(rustix::io::Errno::INTR) => continue,
                        Err(e) => return Err(StoreError::io(&path, e.into())),
                    }
                }
            }
            Err(e) => return Err(StoreError::io(&path, e.into())),
        }
        self.held.fetch_add(1, Ordering::SeqCst);
        let guard = StoreLock {
            file,
            held: self.held.clone(),
        };
        self.clean_stale()?;
        // Packs written by the previous holder: while we hold the lock, misses do not re-scan.
        let loaded = self.index.read().map(|g| g.is_some()).unwrap_or(true);
        if loaded {
            self.refresh_index()?;
        }
        Ok(guard)
    }

    /// Take the lock if it is free right now.
    pub(crate) fn try_lock(&self) -> Result<Option<StoreLock>, StoreError> {
        let path = self.dir.join("lock");
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| StoreError::io(&path, e))?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {
                self.held.fetch_add(1, Ordering::SeqCst);
                Ok(Some(StoreLock {
                    file,
                    held: self.held.clone(),
                }))
            }
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(StoreError::io(&path, e.into())),
        }
    }

    /// Does this handle hold the lock?
    pub(crate) fn holds_lock(&self) -> bool {
        self.held.load(Ordering::SeqCst) > 0
    }
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        let _ = flock(&self.file, FlockOperation::Unlock);
        self.held.fetch_sub(1, Ordering::SeqCst);
    }
}
