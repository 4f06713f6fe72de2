//! Optional memory accounting of a build, switched on by the environment variable
//! `OSIMAGE_MEMTRACE` (any non-empty value; a value containing `/` is also a file that receives
//! the sampled timeline). A sampler thread reads the process's resident set from
//! `/proc/self/status` every [`PERIOD`] and charges each sample to every node running at that
//! moment, so [`BuildReport::memory`](super::BuildReport::memory) gives, per node, the largest
//! resident set seen while it ran, split into anonymous memory (heap, stacks) and file-backed
//! pages (memory-mapped files, which count in RSS too).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Sampling period of the memory trace.
pub const PERIOD: Duration = Duration::from_millis(5);

/// The resident set of the process at one moment, in KiB (from `/proc/self/status`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rss {
    /// `VmRSS`: everything resident.
    pub total: u64,
    /// `RssAnon`: heap, stacks, anonymous mappings.
    pub anon: u64,
    /// `RssFile`: file-backed mappings (the binary, memory-mapped files).
    pub file: u64,
    /// `RssShmem`: shared memory, including memory-mapped files on tmpfs (`/dev/shm`).
    pub shmem: u64,
    /// `VmHWM`: the process's peak `VmRSS` so far.
    pub hwm: u64,
}

impl Rss {
    /// Read the current figures; `None` where `/proc` is not available.
    pub fn now() -> Option<Rss> {
        let s = std::fs::read_to_string("/proc/self/status").ok()?;
        Some(Rss::parse(&s))
    }

    fn parse(status: &str) -> Rss {
        let mut r = Rss::default();
        for line in status.lines() {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let kib = || {
                v.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .unwrap_or(0)
            };
            match k {
                "VmRSS" => r.total = kib(),
                "RssAnon" => r.anon = kib(),
                "RssFile" => r.file = kib(),
                "RssShmem" => r.shmem = kib(),
                "VmHWM" => r.hwm = kib(),
                _ => {}
            }
        }
        r
    }
}

/// The memory a node used, from the samples taken while it ran.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeMemory {
    /// Node name.
    pub name: String,
    /// Resident set when the node started (KiB).
    pub start: Rss,
    /// The sample with the largest resident set while it ran (KiB).
    pub peak: Rss,
    /// The largest anonymous part seen while it ran (KiB; may come from another sample).
    pub peak_anon: u64,
    /// The largest file-backed part seen while it ran (KiB).
    pub peak_file: u64,
    /// The largest shared-memory part seen while it ran (KiB).
    pub peak_shmem: u64,
    /// Resident set when it finished (KiB).
    pub end: Rss,
    /// Other nodes that ran at the same time (the peak is shared with them).
    pub overlapped: Vec<String>,
}

struct Shared {
    /// Per node slot: its figures, and whether it is running now.
    nodes: Vec<(NodeMemory, bool)>,
    /// Node slots in the order they started.
    order: Vec<usize>,
    timeline: Option<std::io::BufWriter<std::fs::File>>,
    t0: Instant,
}

impl Shared {
    fn sample(&mut self, r: Rss) {
        let running: Vec<usize> = (0..self.nodes.len()).filter(|&i| self.nodes[i].1).collect();
        for &i in &running {
            let names: Vec<String> = running
                .iter()
                .filter(|&&j| j != i)
                .map(|&j| self.nodes[j].0.name.clone())
                .collect();
            let m = &mut self.nodes[i].0;
            if r.total > m.peak.total {
                m.peak = r;
            }
            m.peak_anon = m.peak_anon.max(r.anon);
            m.peak_file = m.peak_file.max(r.file);
            m.peak_shmem = m.peak_shmem.max(r.shmem);
            for n in names {
                if !m.overlapped.contains(&n) {
                    m.overlapped.push(n);
                }
            }
        }
        if let Some(w) = &mut self.timeline {
            let names: Vec<&str> = running
                .iter()
                .map(|&i| self.nodes[i].0.name.as_str())
                .collect();
            let _ = writeln!(
                w,
                "{} {} {} {} {} {}",
                self.t0.elapsed().as_millis(),
                r.total,
                r.anon,
                r.file,
                r.shmem,
                names.join(",")
            );
        }
    }
}

/// A running memory trace (see the module docs). Stops its sampler when dropped.
pub struct MemTrace {
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    sampler: Option<std::thread::JoinHandle<()>>,
}

impl MemTrace {
    /// A trace for nodes `0..n` if `OSIMAGE_MEMTRACE` asks for one (and `/proc` works).
    pub fn from_env(n: usize) -> Option<MemTrace> {
        let v = std::env::var("OSIMAGE_MEMTRACE")
            .ok()
            .filter(|v| !v.is_empty())?;
        let timeline = v.contains('/').then(|| std::path::PathBuf::from(&v));
        MemTrace::new(n, timeline.as_deref())
    }

    /// A trace for nodes `0..n`, writing the timeline (one line per sample: milliseconds since
    /// the start, then total, anonymous, file-backed and shared KiB, then the running nodes)
    /// into `timeline` if given. `None` where `/proc/self/status` cannot be read.
    pub fn new(n: usize, timeline: Option<&std::path::Path>) -> Option<MemTrace> {
        Rss::now()?;
        let timeline = timeline.and_then(|p| match std::fs::File::create(p) {
            Ok(f) => Some(std::io::BufWriter::new(f)),
            Err(e) => {
                tracing::warn!("{}: {e}; no memory timeline written", p.display());
                None
            }
        });
        let shared = Arc::new(Mutex::new(Shared {
            nodes: vec![(NodeMemory::default(), false); n],
            order: Vec::new(),
            timeline,
            t0: Instant::now(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (shared.clone(), stop.clone());
        let sampler = std::thread::Builder::new()
            .name("memtrace".into())
            .spawn(move || {
                while !st.load(Ordering::Relaxed) {
                    if let Some(r) = Rss::now()
                        && let Ok(mut g) = s.lock()
                    {
                        g.sample(r);
                    }
                    std::thread::sleep(PERIOD);
                }
            })
            .ok()?;
        Some(MemTrace {
            shared,
            stop,
            sampler: Some(sampler),
        })
    }

    /// Node `i` (named `name`) starts now.
    pub fn start(&self, i: usize, name: &str) {
        let r = Rss::now().unwrap_or_default();
        if let Ok(mut g) = self.shared.lock()
            && i < g.nodes.len()
        {
            g.nodes[i] = (
                NodeMemory {
                    name: name.to_string(),
                    start: r,
                    ..NodeMemory::default()
                },
                true,
            );
            g.order.push(i);
            g.sample(r);
        }
    }

    /// Node `i` finished (or failed) now.
    pub fn finish(&self, i: usize) {
        let r = Rss::now().unwrap_or_default();
        if let Ok(mut g) = self.shared.lock()
            && i < g.nodes.len()
        {
            g.sample(r);
            g.nodes[i].1 = false;
            g.nodes[i].0.end = r;
        }
    }

    /// Stop sampling; the figures of the nodes that ran, in the order they started.
    pub fn report(mut self) -> Vec<NodeMemory> {
        self.halt();
        let Ok(mut g) = self.shared.lock() else {
            return Vec::new();
        };
        if let Some(w) = &mut g.timeline {
            let _ = w.flush();
        }
        g.order.iter().map(|&i| g.nodes[i].0.clone()).collect()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.sampler.take() {
            let _ = h.join();
        }
    }
}

impl Drop for MemTrace {
    fn drop(&mut self) {
        self.halt();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_status() {
        let s = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\nRssAnon:\t  600 kB\nRssFile:\t  400 kB\nRssShmem:\t  24 kB\n";
        let r = Rss::parse(s);
        assert_eq!(
            r,
            Rss {
                total: 1024,
                anon: 600,
                file: 400,
                shmem: 24,
                hwm: 2048
            }
        );
    }

    #[test]
    fn charges_a_big_allocation_to_the_running_node() {
        if Rss::now().is_none() {
            println!("SKIPPED: no /proc/self/status");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let tl = dir.path().join("timeline");
        let t = MemTrace::new(2, Some(&tl)).unwrap();
        t.start(0, "small");
        t.finish(0);
        t.start(1, "big");
        let v = vec![1u8; 64 << 20];
        std::thread::sleep(PERIOD * 4);
        assert_eq!(v.iter().map(|&b| b as u64).sum::<u64>(), 64 << 20);
        t.finish(1);
        drop(v);
        let rep = t.report();
        assert_eq!(rep.len(), 2);
        let big = rep.iter().find(|m| m.name == "big").unwrap();
        let small = rep.iter().find(|m| m.name == "small").unwrap();
        assert!(
            big.peak_anon >= big.start.anon + 60 * 1024,
            "{big:?} should have seen the 64 MiB buffer"
        );
        assert!(small.peak.total < big.peak.total, "{small:?} vs {big:?}");
        let lines = std::fs::read_to_string(&tl).unwrap();
        assert!(lines.lines().any(|l| l.ends_with(" big")), "{lines}");
        assert!(lines.lines().all(|l| l.split(' ').count() == 6), "{lines}");
    }
}
