//! Making packs durable without stalling the build.
//!
//! - [`Writeback`]: while a pack grows, a background thread syncs what was written so far, so
//!   the disk writes overlap the work that produces the data and the final fsync before the
//!   pack is indexed only waits for the last few megabytes. It syncs through its own open file
//!   description: a write-back error it sees is still reported to the final fsync (Linux reports
//!   an error once per open file description).
//! - [`SealOrder`]: packs are sealed (fsync + index) outside the writer lock, so other threads
//!   keep appending to a new pack meanwhile. A flush takes a ticket and returns only once every
//!   pack taken before it is sealed, so an output record written after a flush never points at
//!   a blob whose pack is not yet durable.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::Path;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Condvar, Mutex};
use std::thread::JoinHandle;

use super::StoreError;

/// Start a background sync after this many more bytes were written.
const STEP: u64 = 32 << 20;

/// Background syncing of a file being written (see the module doc).
pub(crate) struct Writeback {
    tx: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
    pending: u64,
}

impl Writeback {
    /// Background syncs of the file at `path` (opened again, read-only). Without a thread or a
    /// second descriptor it does nothing: the final fsync then does all the work.
    pub(crate) fn new(path: &Path) -> Writeback {
        let none = Writeback {
            tx: None,
            thread: None,
            pending: 0,
        };
        let Ok(f) = File::open(path) else {
            return none;
        };
        let (tx, rx) = sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("osimage-writeback".into())
            .spawn(move || {
                for () in rx {
                    // errors are reported again to the writer's own fsync
                    let _ = f.sync_data();
                }
            });
        match thread {
            Ok(t) => Writeback {
                tx: Some(tx),
                thread: Some(t),
                pending: 0,
            },
            Err(_) => none,
        }
    }

    /// `n` more bytes were written: start a sync when enough accumulated (never blocks: if a
    /// sync is already queued, it will cover these bytes too).
    pub(crate) fn wrote(&mut self, n: u64) {
        self.pending += n;
        if self.pending < STEP {
            return;
        }
        if let Some(tx) = &self.tx {
            match tx.try_send(()) {
                Ok(()) | Err(TrySendError::Full(())) => self.pending = 0,
                Err(TrySendError::Disconnected(())) => self.tx = None,
            }
        }
    }

    /// Stop the background thread (waits for a sync in progress).
    pub(crate) fn finish(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Writeback {
    fn drop(&mut self) {
        self.finish();
    }
}

#[derive(Default)]
struct SealState {
    next: u64,
    open: BTreeSet<u64>,
    failed: Option<String>,
}

/// Tickets ordering pack seals (see the module doc).
#[derive(Default)]
pub(crate) struct SealOrder {
    state: Mutex<SealState>,
    done: Condvar,
}

impl SealOrder {
    /// A ticket; `sealing`: the caller took a pack to seal under this ticket (call
    /// [`SealOrder::end`] after). Take it under the writer lock, so tickets follow take order.
    pub(crate) fn begin(&self, sealing: bool) -> u64 {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let t = s.next;
        s.next += 1;
        if sealing {
            s.open.insert(t);
        }
        t
    }

    /// The pack of ticket `t` is sealed (or failed to be).
    pub(crate) fn end(&self, t: u64, error: Option<String>) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.open.remove(&t);
        if let Some(e) = error
            && s.failed.is_none()
        {
            s.failed = Some(e);
        }
        self.done.notify_all();
    }

    /// Wait until every pack taken before ticket `t` is sealed; an error if one failed.
    pub(crate) fn wait_before(&self, t: u64, dir: &Path) -> Result<(), StoreError> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while s.open.range(..t).next().is_some() {
            s = self.done.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        match &s.failed {
            Some(e) => Err(StoreError::io(
                dir,
                std::io::Error::other(format!("an earlier pack could not be made durable: {e}")),
            )),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flush_waits_for_earlier_seals_only() {
        let o = SealOrder::default();
        let a = o.begin(true);
        let b = o.begin(false);
        let d = std::path::Path::new("/x");
        std::thread::scope(|s| {
            let h = s.spawn(|| o.wait_before(b, d));
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert!(!h.is_finished(), "must wait for the earlier seal");
            o.end(a, None);
            h.join().unwrap().unwrap();
        });
        // a later ticket does not wait for itself, and a failure is reported to later flushes
        let c = o.begin(true);
        o.end(c, Some("disk full".into()));
        let e = o.begin(false);
        assert!(
            o.wait_before(e, d)
                .unwrap_err()
                .to_string()
                .contains("disk full")
        );
    }

    #[test]
    fn writeback_syncs_in_the_background() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        let f = File::create(&p).unwrap();
        let mut w = Writeback::new(&p);
        use std::io::Write;
        (&f).write_all(&vec![7u8; (STEP + 1) as usize]).unwrap();
        w.wrote(STEP + 1);
        assert_eq!(w.pending, 0);
        w.finish();
        f.sync_all().unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().len(), STEP + 1);
    }
}
