//! An ordered parallel map with a memory budget: items are worked on by the rayon pool as soon
//! as the budget allows, and their results are handed to the calling thread strictly in index
//! order. Unlike windows of `par_iter` (all of a window done, then written), no worker waits for
//! the slowest item of a window, and the calling thread writes while the pool works.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

/// Run `work(i)` for every `i` in `0..n` on the rayon pool and pass each result to `sink(i, r)`
/// on the calling thread, in order of `i`.
///
/// At most `budget` worth of `weight` is dispatched and not yet sunk at any time (an item
/// heavier than the whole budget still runs, alone). After `sink` returns an error no further
/// item is started (running ones finish and are dropped) and that error is returned.
pub fn ordered_map<T, E, W, F, S>(
    n: usize,
    weight: W,
    budget: u64,
    work: F,
    mut sink: S,
) -> Result<(), E>
where
    T: Send,
    W: Fn(usize) -> u64,
    F: Fn(usize) -> T + Sync,
    S: FnMut(usize, T) -> Result<(), E>,
{
    let (tx, rx) = mpsc::channel::<(usize, T)>();
    let stop = AtomicBool::new(false);
    let mut pending: Vec<Option<T>> = (0..n).map(|_| None).collect();
    let (mut next, mut done, mut inflight) = (0usize, 0usize, 0u64);
    let (work, stop_ref) = (&work, &stop);
    rayon::in_place_scope(|s| {
        let result = loop {
            while next < n && (next == done || inflight + weight(next) <= budget) {
                inflight += weight(next);
                let (tx, i) = (tx.clone(), next);
                s.spawn(move |_| {
                    if !stop_ref.load(Ordering::Relaxed) {
                        let _ = tx.send((i, work(i)));
                    }
                });
                next += 1;
            }
            if done == n {
                break Ok(());
            }
            let Some((i, r)) = receive(&rx) else {
                break Ok(()); // unreachable: an item in flight always sends
            };
            pending[i] = Some(r);
            let mut failed = None;
            while let Some(r) = pending.get_mut(done).and_then(Option::take) {
                inflight -= weight(done);
                if let Err(e) = sink(done, r) {
                    failed = Some(e);
                    break;
                }
                done += 1;
            }
            if let Some(e) = failed {
                stop.store(true, Ordering::Relaxed);
                break Err(e);
            }
        };
        drop(tx);
        result
    })
}

/// The next result. On a rayon worker (the caller itself runs inside the pool), keep running
/// pool jobs while waiting instead of blocking the thread one of them may need.
fn receive<T>(rx: &mpsc::Receiver<T>) -> Option<T> {
    if rayon::current_thread_index().is_none() {
        return rx.recv().ok();
    }
    loop {
        match rx.try_recv() {
            Ok(v) => return Some(v),
            Err(mpsc::TryRecvError::Disconnected) => return None,
            Err(mpsc::TryRecvError::Empty) => {
                if rayon::yield_now() != Some(rayon::Yield::Executed) {
                    std::thread::yield_now();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn results_arrive_in_order_within_the_budget() {
        let live = AtomicU64::new(0);
        let peak = AtomicU64::new(0);
        let mut seen = Vec::new();
        let r: Result<(), ()> = ordered_map(
            200,
            |i| (i % 7 + 1) as u64,
            12,
            |i| {
                let w = (i % 7 + 1) as u64;
                let now = live.fetch_add(w, Ordering::SeqCst) + w;
                peak.fetch_max(now, Ordering::SeqCst);
                // later items finish first now and then
                std::thread::sleep(std::time::Duration::from_micros(
                    ((200 - i) % 5) as u64 * 50,
                ));
                live.fetch_sub(w, Ordering::SeqCst);
                i * 3
            },
            |i, v| {
                assert_eq!(v, i * 3);
                seen.push(i);
                Ok(())
            },
        );
        r.unwrap();
        assert_eq!(seen, (0..200).collect::<Vec<_>>());
        assert!(peak.load(Ordering::SeqCst) <= 12, "budget exceeded");
    }

    #[test]
    fn an_item_over_the_budget_runs_alone_and_sink_errors_stop_the_map() {
        let mut seen = Vec::new();
        let r = ordered_map(
            50,
            |i| if i == 3 { 100 } else { 1 },
            10,
            |i| i,
            |i, _| {
                seen.push(i);
                if i == 20 {
                    Err(format!("stop at {i}"))
                } else {
                    Ok(())
                }
            },
        );
        assert_eq!(r, Err("stop at 20".to_string()));
        assert_eq!(seen, (0..=20).collect::<Vec<_>>());
    }

    #[test]
    fn called_from_inside_a_one_thread_pool_does_not_deadlock() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let sum = pool.install(|| {
            let mut sum = 0;
            ordered_map(
                30,
                |_| 1,
                4,
                |i| i,
                |_, v| -> Result<(), ()> {
                    sum += v;
                    Ok(())
                },
            )
            .map(|_| sum)
        });
        assert_eq!(sum, Ok((0..30).sum()));
    }
}
