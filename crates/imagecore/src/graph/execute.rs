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
            let (tx, rx) = mpsc::channel::<(NodeIndex, Result<Output, Error>, Duration)>();
            let mut running = 0usize;
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
                            let _ = tx.send((i, res, t0.elapsed()));
                        });
                    }
                }
                if running == 0 {
                    break;
                }
                let Ok((i, res, elapsed)) = rx.recv() else {
                    break;
                };
                running -= 1;
                if let Some(t) = &memtrace {
                    t.finish(i.index());
                }
                let name = g.dag[i].name.clone();
                match res {
                    Ok(out) => {
                        emit(Event::Finished {
                            name: name.clone(),
                            elapsed,
                        });
                        outputs[i.index()] = Some(out);
                        report.built.push(name);
                    }
                    Err(e) => {
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
    let out = node.step.run(&ctx, &refs)?;
    store.publish(&key, &out)?;
    Ok(out)
}
