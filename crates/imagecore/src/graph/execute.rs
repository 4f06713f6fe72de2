//! The executor: runs dirty nodes whose parents are done, several at a time, publishes each
//! output atomically, then exports user-visible results and records the build for the next plan.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use petgraph::graph::NodeIndex;

use crate::error::Error;
use crate::graph::key::{self, NodeRecord};
use crate::graph::plan::Plan;
use crate::graph::step::{NodeKind, Output, StepCtx};

/// Progress events a front end can render.
#[derive(Clone, Debug)]
pub enum Event {
    /// The node's output was found in the cache.
    Cached {
        /// Node name.
        name: String,
    },
    /// The node started running.
    Started {
        /// Node name.
        name: String,
        /// Kind.
        kind: NodeKind,
    },
    /// The node finished and its output was published.
    Finished {
        /// Node name.
        name: String,
        /// Wall time of `run`.
        elapsed: Duration,
    },
    /// The node failed.
    Failed {
        /// Node name.
        name: String,
        /// The error text.
        error: String,
    },
}

/// Callback receiving [`Event`]s.
pub type EventSink = Arc<dyn Fn(&Event) + Send + Sync>;

/// Options for a build.
#[derive(Clone, Default)]
pub struct BuildOptions {
    /// Nodes run at once (0 = number of CPUs).
    pub jobs: usize,
    /// Stop after this node (a node name, or a kind name when it is unique).
    pub target: Option<String>,
    /// Also materialise `rootimgdir/rootimg/` from the final tree.
    pub rootimg: bool,
    /// Progress events.
    pub events: Option<EventSink>,
    /// Fail instead of re-solving when `osimage.lock` is missing or out of date.
    pub locked: bool,
    /// Export settings (e.g. the image URL written into netboot stanzas).
    pub export: crate::graph::step::ExportOptions,
}

/// What a build did.
#[derive(Clone, Debug, Default)]
pub struct BuildReport {
    /// Nodes that ran.
    pub built: Vec<String>,
    /// Nodes taken from the cache.
    pub cached: Vec<String>,
    /// Files written into rootimgdir.
    pub exported: Vec<std::path::PathBuf>,
    /// The final key of every node that has an output (built or cached), in build order.
    pub keys: Vec<(String, crate::hash::Hash)>,
    /// Per node that ran, its resident memory (only with `OSIMAGE_MEMTRACE` set; see
    /// [`super::memtrace`]), in the order the nodes started.
    pub memory: Vec<super::memtrace::NodeMemory>,
}

impl Plan<'_> {
    /// Build: run every dirty node needed (all, or the ancestors of `opts.target`).
    pub fn build(&self, opts: &BuildOptions) -> Result<BuildReport, Error> {
        let _lock = self.store.lock()?;
        let emit = |e: Event| {
            if let Some(sink) = &opts.events {
                sink(&e)
            }
        };
        let g = &self.graph;
        let needed = self.needed(opts.target.as_deref())?;
        let jobs = if opts.jobs == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            opts.jobs
        };
        let n = g.dag.node_count();
        let mut outputs: Vec<Option<Output>> = vec![None; n];
        // Keys are completed here, once each node's parents have outputs (early cutoff: a
        // parent that re-ran with the same output leaves this node's key unchanged).
        let mut recs: Vec<NodeRecord> = self.records.clone();
        let mut report = BuildReport::default();
        let mut started: HashSet<NodeIndex> = HashSet::new();
        let mut first_err: Option<Error> = None;
        let memtrace = super::memtrace::MemTrace::from_env(n + 1);
        std::thread::scope(|scope| {
            let (tx, rx) = mpsc::channel::<Done>();
            // Outputs are published (blobs made durable, then the record written) by one
            // thread, in the order the nodes finished (so parents before children), while the
            // children already run on them.
            let (ptx, prx) = mpsc::channel::<(NodeIndex, crate::hash::Hash, Output, Instant)>();
            {
                let tx = tx.clone();
                let store = self.store;
                scope.spawn(move || {
                    for (i, key, out, t0) in prx {
                        let t = Instant::now();
                        let res = store.publish(&key, &out).map_err(Error::from);
                        tracing::info!(
                            node = %g.dag[i].name,
                            "timing: published in {:.3} s",
                            t.elapsed().as_secs_f64()
                        );
                        let _ = tx.send(Done::Published(i, res, t0.elapsed()));
                    }
                });
            }
            let mut ptx = Some(ptx);
            let mut running = 0usize;
            let mut publishing = 0usize;
            loop {
                let mut progressed = first_err.is_none();
                while progressed {
                    progressed = false;
                    for &i in &needed {
                        if started.contains(&i) || first_err.is_some() {
                            continue;
                        }
                        let Some(parents) = g
                            .parents(i)
                            .iter()
                            .map(|p| outputs[p.index()].clone().map(|o| (*p, o)))
                            .collect::<Option<Vec<_>>>()
                        else {
                            continue;
                        };
                        let rec = &mut recs[i.index()];
                        rec.parents = parents
                            .iter()
                            .map(|(p, o)| (g.dag[*p].name.clone(), key::output_digest(o)))
                            .collect();
                        rec.key = key::key_of(rec);
                        let key = rec.key;
                        let node = &g.dag[i];
                        match self.store.get_output(&key) {
                            Ok(Some(out)) => {
                                outputs[i.index()] = Some(out);
                                started.insert(i);
                                report.cached.push(node.name.clone());
                                emit(Event::Cached {
                                    name: node.name.clone(),
                                });
                                progressed = true;
                                continue;
                            }
                            Ok(None) => {}
                            Err(e) => {
                                first_err = Some(e.into());
                                continue;
                            }
                        }
                        if running >= jobs {
                            continue;
                        }
                        started.insert(i);
                        running += 1;
                        let parents: Vec<Output> = parents.into_iter().map(|(_, o)| o).collect();
                        let tx = tx.clone();
                        let store = self.store;
                        emit(Event::Started {
                            name: node.name.clone(),
                            kind: node.step.kind(),
                        });
                        if let Some(t) = &memtrace {
                            t.start(i.index(), &node.name);
                        }
                        scope.spawn(move || {
                            let t0 = Instant::now();
                            let res = run_one(store, node, &parents, key, jobs, opts.locked);
                            let _ = tx.send(Done::Ran(i, res, t0));
                        });
                    }
                }
                if running == 0 && publishing == 0 {
                    break;
                }
                if running == 0 {
                    // nothing left to run: let the publisher finish its queue and stop
                    ptx = None;
                }
                let Ok(done) = rx.recv() else {
                    break;
                };
                let (i, res, finished) = match done {
                    Done::Ran(i, Ok(out), t0) => {
                        running -= 1;
                        if let Some(t) = &memtrace {
                            t.finish(i.index());
                        }
                        let sent = ptx.as_ref().is_some_and(|p| {
                            p.send((i, recs[i.index()].key, out.clone(), t0)).is_ok()
                        });
                        if sent {
                            publishing += 1;
                            // children may start on it now; it is recorded once published
                            outputs[i.index()] = Some(out);
                            continue;
                        }
                        let e = Error::Step {
                            node: g.dag[i].name.clone(),
                            message: "internal: the output publisher stopped".into(),
                        };
                        (i, Err(e), t0.elapsed())
                    }
                    Done::Ran(i, Err(e), t0) => {
                        running -= 1;
                        if let Some(t) = &memtrace {
                            t.finish(i.index());
                        }
                        (i, Err(e), t0.elapsed())
                    }
                    Done::Published(i, res, elapsed) => {
                        publishing -= 1;
                        (i, res, elapsed)
                    }
                };
                let name = g.dag[i].name.clone();
                match res {
                    Ok(()) => {
                        emit(Event::Finished {
                            name: name.clone(),
                            elapsed: finished,
                        });
                        report.built.push(name);
                    }
                    Err(e) => {
                        // not recorded: children must not be taken as built on it either
                        outputs[i.index()] = None;
                        emit(Event::Failed {
                            name: name.clone(),
                            error: e.to_string(),
                        });
                        if first_err.is_none() {
                            first_err = Some(e);
                        }
                    }
                }
            }
            drop(ptx);
        });
        for &i in &needed {
            if outputs[i.index()].is_some() {
                let r = &recs[i.index()];
                report.keys.push((r.name.clone(), r.key));
            }
        }
        self.save_records(&recs, &outputs)?;
        if let Some(e) = first_err {
            return Err(e);
        }
        if let Some(t) = &memtrace {
            t.start(n, "(export)");
        }
        for &i in &needed {
            if let Some(out) = &outputs[i.index()] {
                g.dag[i].step.export(self.store, out, &opts.export)?;
            }
        }
        if let Some(t) = memtrace {
            t.finish(n);
            report.memory = t.report();
        }
        if opts.rootimg {
            let last_tree = needed
                .iter()
                .rev()
                .find_map(|i| outputs[i.index()].as_ref().and_then(|o| o.tree));
            if let Some(t) = last_tree {
                let dir = self.spec.image.rootimgdir.join("rootimg");
                crate::steps::util::replace_dir_with_tree(self.store, &t, &dir)?;
                report.exported.push(dir);
            }
        }
        Ok(report)
    }

    /// Solve the spec's package lists (building the repo and resolve nodes as needed) and
    /// return the lock; `osimage.lock` next to the spec is written as a side effect.
    pub fn lock(&self, locked: bool) -> Result<crate::solve::Lock, Error> {
        if self.graph.find("resolve").is_none() {
            return Err(Error::Step {
                node: "resolve".into(),
                message: format!(
                    "{}: this spec installs no packages ([source] capture), so it has no lock",
                    self.spec.file.display()
                ),
            });
        }
        let opts = BuildOptions {
            target: Some("resolve".into()),
            locked,
            ..BuildOptions::default()
        };
        let report = self.build(&opts)?;
        let key = report
            .keys
            .iter()
            .find(|(n, _)| n == "resolve")
            .map(|(_, k)| *k)
            .ok_or_else(|| Error::Step {
                node: "resolve".into(),
                message: "internal: resolve node has no output after build".into(),
            })?;
        let out = self.store.get_output(&key)?.ok_or_else(|| Error::Step {
            node: "resolve".into(),
            message: "internal: resolve output missing after build".into(),
        })?;
        crate::steps::resolve::lock_of(self.store, &out)
    }

    /// The nodes a build must visit: everything, or the target and its ancestors.
    fn needed(&self, target: Option<&str>) -> Result<Vec<NodeIndex>, Error> {
        let g = &self.graph;
        let order = g.order();
        let Some(t) = target else {
            return Ok(order);
        };
        let ti = g.find(t).or_else(|| {
            let by_kind: Vec<_> = order
                .iter()
                .copied()
                .filter(|&i| g.dag[i].step.kind().name() == t)
                .collect();
            (by_kind.len() == 1).then(|| by_kind[0])
        });
        let Some(ti) = ti else {
            let names: Vec<_> = order.iter().map(|&i| g.dag[i].name.as_str()).collect();
            return Err(Error::Step {
                node: t.to_string(),
                message: format!("no such node in this plan; nodes are: {}", names.join(", ")),
            });
        };
        let mut keep = HashSet::new();
        let mut stack = vec![ti];
        while let Some(i) = stack.pop() {
            if keep.insert(i) {
                stack.extend(g.parents(i));
            }
        }
        Ok(order.into_iter().filter(|i| keep.contains(i)).collect())
    }

    /// Record the keys of every node that has an output now, for the next plan's "why dirty".
    fn save_records(&self, now: &[NodeRecord], outputs: &[Option<Output>]) -> Result<(), Error> {
        let mut recs: Vec<NodeRecord> = match self.store.get_record(&self.record_name)? {
            Some(b) => serde_json::from_slice(&b).unwrap_or_default(),
            None => Vec::new(),
        };
        for (i, out) in outputs.iter().enumerate() {
            if out.is_some() {
                let r = &now[i];
                recs.retain(|x| x.name != r.name);
                recs.push(r.clone());
            }
        }
        let bytes = serde_json::to_vec(&recs).map_err(|e| Error::Step {
            node: "records".into(),
            message: e.to_string(),
        })?;
        self.store.put_record(&self.record_name, &bytes)?;
        Ok(())
    }
}

fn run_one(
    store: &crate::store::Store,
    node: &crate::graph::compile::Node,
    parents: &[Output],
    key: crate::hash::Hash,
    jobs: usize,
    locked: bool,
) -> Result<Output, Error> {
    let scratch = tempfile::Builder::new()
        .prefix(&format!(
            "{}-step-{}-",
            std::process::id(),
            node.step.kind()
        ))
        .tempdir_in(store.scratch_dir())
        .map_err(|e| Error::io(store.scratch_dir(), e))?;
    let ctx = StepCtx {
        store,
        scratch: scratch.path(),
        jobs,
        node: &node.name,
        locked,
    };
    let refs: Vec<&Output> = parents.iter().collect();
    tracing::info!(node = %node.name, key = %key.short(), "running");
    let (t0, c0) = (Instant::now(), crate::install::cpu_secs());
    let out = node.step.run(&ctx, &refs)?;
    tracing::info!(
        node = %node.name,
        "timing: ran in {:.3} s ({:.2} CPU-s of the whole process meanwhile)",
        t0.elapsed().as_secs_f64(),
        crate::install::cpu_secs() - c0
    );
    Ok(out)
}

/// What the executor's threads report.
enum Done {
    /// A node's step ran (started at the instant).
    Ran(NodeIndex, Result<Output, Error>, Instant),
    /// A node's output was published (or not); run and publish time.
    Published(NodeIndex, Result<(), Error>, Duration),
}
