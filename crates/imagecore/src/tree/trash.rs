//! Removing big trees off the critical path: [`discard`] renames a tree out of the way at once
//! (its name is free again and nothing ever sees it half removed), then a low-priority
//! background thread removes it while the build goes on. A process that exits first leaves
//! `.osimage-trash-<pid>-<n>` behind; [`discard_stale`] hands such leftovers of dead processes
//! to the same thread.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};

/// Name prefix of renamed-away trees.
pub const PREFIX: &str = ".osimage-trash-";

static QUEUE: OnceLock<Mutex<mpsc::Sender<PathBuf>>> = OnceLock::new();
static SEQ: AtomicU64 = AtomicU64::new(0);

/// Remove the file or tree `p` now, on this thread (nothing when it does not exist).
pub(crate) fn remove_now(p: &Path) {
    match std::fs::symlink_metadata(p) {
        Ok(md) if md.is_dir() => {
            let _ = std::fs::remove_dir_all(p);
        }
        Ok(_) => {
            let _ = std::fs::remove_file(p);
        }
        Err(_) => {}
    }
}

/// Hand `p` to the background remover (started on first use); removes it here when no thread
/// can be started.
fn enqueue(p: PathBuf) {
    let q = QUEUE.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<PathBuf>();
        let started = std::thread::Builder::new()
            .name("osimage-trash".into())
            .spawn(move || {
                // the lowest priority: removal only takes CPU time nothing else wants
                let _ = rustix::process::setpriority_process(None, 19);
                for p in rx {
                    remove_now(&p);
                }
            });
        if started.is_err() {
            tracing::debug!("no background remover thread; removing trees in place");
        }
        Mutex::new(tx)
    });
    let sent = q.lock().map(|tx| tx.send(p.clone()).is_ok());
    if !matches!(sent, Ok(true)) {
        remove_now(&p);
    }
}

/// Remove the file or tree `p` (nothing when it does not exist): renamed to a trash name in its
/// own directory now, removed in the background. Falls back to removing it in place when it
/// cannot be renamed.
pub fn discard(p: &Path) {
    let Some(parent) = p.parent() else {
        return remove_now(p);
    };
    let trash = parent.join(format!(
        "{PREFIX}{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    match std::fs::rename(p, &trash) {
        Ok(()) => enqueue(trash),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(_) => remove_now(p),
    }
}

/// Queue the trash that processes no longer running left in `dir`.
pub fn discard_stale(dir: &Path) {
    for p in stale_entries(dir, PREFIX) {
        enqueue(p);
    }
}

/// Remove, now, the trash that processes no longer running left in `dir` (`cache gc`: the
/// space is free when it returns).
pub(crate) fn remove_stale_now(dir: &Path) {
    for p in stale_entries(dir, PREFIX) {
        remove_now(&p);
    }
}

/// The entries `<prefix><pid>-*` of `dir` whose process `pid` is gone.
pub(crate) fn stale_entries(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_prefix(prefix)
                .and_then(|r| r.split('-').next())
                .and_then(|p| p.parse::<i32>().ok())
                .is_some_and(|pid| !process_alive(pid))
        })
        .map(|e| e.path())
        .collect()
}

/// Whether process `pid` exists.
pub(crate) fn process_alive(pid: i32) -> bool {
    rustix::process::Pid::from_raw(pid).is_some_and(|p| {
        !matches!(
            rustix::process::test_kill_process(p),
            Err(rustix::io::Errno::SRCH)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_discarded_tree_leaves_its_name_at_once_and_is_removed_later() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("tree");
        std::fs::create_dir_all(t.join("a/b")).unwrap();
        std::fs::write(t.join("a/b/f"), b"x").unwrap();
        discard(&t);
        assert!(!t.exists());
        std::fs::create_dir(&t).unwrap(); // the name is free again
        let mut left = 1;
        for _ in 0..400 {
            left = std::fs::read_dir(d.path())
                .unwrap()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(PREFIX))
                .count();
            if left == 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(left, 0, "trash not removed");
        assert!(t.is_dir(), "the new tree of the same name was touched");
    }

    #[test]
    fn stale_trash_of_dead_processes_is_removed_and_live_ones_kept() {
        let d = tempfile::tempdir().unwrap();
        // pid 0x7ffffff0 does not exist; our own pid does
        let dead = d.path().join(format!("{PREFIX}{}-0", 0x7fff_fff0));
        let live = d.path().join(format!("{PREFIX}{}-999", std::process::id()));
        std::fs::create_dir_all(dead.join("x")).unwrap();
        std::fs::create_dir_all(&live).unwrap();
        discard_stale(d.path());
        for _ in 0..400 {
            if !dead.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(!dead.exists());
        assert!(live.exists());
    }

    #[test]
    fn stale_trash_is_removed_before_remove_stale_now_returns() {
        let d = tempfile::tempdir().unwrap();
        let dead = d.path().join(format!("{PREFIX}{}-3", 0x7fff_fff1));
        std::fs::create_dir_all(dead.join("a/b")).unwrap();
        std::fs::write(dead.join("a/b/f"), b"x").unwrap();
        let other = d.path().join("not-trash");
        std::fs::create_dir(&other).unwrap();
        remove_stale_now(d.path());
        assert!(!dead.exists());
        assert!(other.exists());
    }
}
