//! The plan: the compiled graph with every node's key and its state in the cache (cached, or
//! dirty with the first input that changed since the last build).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::graph::compile::{Graph, compile};
use crate::graph::key::{self, NodeRecord};
use crate::graph::step::NodeKind;
use crate::hash::Hash;
use crate::spec::Spec;
use crate::store::Store;

/// Whether a node's output is in the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    /// The output for this key is in the store: nothing to do.
    Cached,
    /// The node will run.
    Dirty,
    /// A parent will run first; this node runs only if that parent's output comes out
    /// different (early cutoff), otherwise it is a cache hit.
    Pending,
}

impl NodeState {
    /// The state as `plan` prints it: `cached`, `dirty` or `pending`.
    pub fn name(self) -> &'static str {
        match self {
            NodeState::Cached => "cached",
            NodeState::Dirty => "dirty",
            NodeState::Pending => "pending",
        }
    }
}

impl PlanNode {
    /// The key's short form, or `-` while it waits for a parent.
    pub fn key_short(&self) -> String {
        self.key.map_or_else(|| "-".to_string(), |k| k.short())
    }
}

/// One row of the plan.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PlanNode {
    /// Node name (unique in the graph).
    pub name: String,
    /// Stage kind.
    pub kind: NodeKind,
    /// The node key (hex); `None` while a parent has still to run (its output digest is part
    /// of this key).
    pub key: Option<Hash>,
    /// Cached, dirty or pending.
    pub state: NodeState,
    /// For dirty and pending nodes, the first changed input (`never built`, `parent install
    /// changed`, `waits for postinstall`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Notes the step wants shown (e.g. synclist sections kept but not applied).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub notes: Vec<String>,
    /// Names of the parents.
    pub parents: Vec<String>,
}

/// A compiled build plan for one spec against one store.
pub struct Plan<'a> {
    pub(crate) spec: Spec,
    pub(crate) store: &'a Store,
    pub(crate) graph: Graph,
    pub(crate) records: Vec<NodeRecord>,
    pub(crate) rows: Vec<PlanNode>,
    pub(crate) record_name: String,
}

impl<'a> Plan<'a> {
    /// Compile the spec, hash every declared input, and look each key up in the store.
    pub fn new(spec: &Spec, store: &'a Store) -> Result<Plan<'a>, Error> {
        let graph = compile(spec)?;
        let record_name = format!(
            "spec-{}",
            crate::hash::Hash::of(spec.file.to_string_lossy().as_bytes()).to_hex()
        );
        let last: Vec<NodeRecord> = match store.get_record(&record_name)? {
            Some(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
            None => Vec::new(),
        };
        let order = graph.order();
        let mut records: Vec<Option<NodeRecord>> = vec![None; graph.dag.node_count()];
        // Output digest of every node whose output is known now (cached).
        let mut digests: Vec<Option<Hash>> = vec![None; graph.dag.node_count()];
        let mut rows = Vec::with_capacity(order.len());
        for &n in &order {
            let node = &graph.dag[n];
            let parent_ix = graph.parents(n);
            let known: Vec<(String, Hash)> = parent_ix
                .iter()
                .filter_map(|p| digests[p.index()].map(|d| (graph.dag[*p].name.clone(), d)))
                .collect();
            let inputs = node.step.inputs()?;
            let rec = key::compute(
                store,
                &node.name,
                node.step.kind(),
                node.step.version(),
                &inputs,
                &known,
            )?;
            let prev = last.iter().find(|r| r.name == node.name);
            let (key, state, reason) = if known.len() == parent_ix.len() {
                match store.get_output(&rec.key)? {
                    Some(out) => {
                        digests[n.index()] = Some(key::output_digest(&out));
                        (Some(rec.key), NodeState::Cached, None)
                    }
                    None => (
                        Some(rec.key),
                        NodeState::Dirty,
                        Some(key::why_dirty(&rec, prev)),
                    ),
                }
            } else {
                let waiting: Vec<&str> = parent_ix
                    .iter()
                    .filter(|p| digests[p.index()].is_none())
                    .map(|p| graph.dag[*p].name.as_str())
                    .collect();
                match prev.and_then(|p| key::own_inputs_changed(&rec, p)) {
                    Some(why) => (None, NodeState::Dirty, Some(why)),
                    None if prev.is_none() => {
                        (None, NodeState::Dirty, Some("never built".to_string()))
                    }
                    None => (
                        None,
                        NodeState::Pending,
                        Some(format!(
                            "waits for {}: runs only if its output changes",
                            waiting.join(", ")
                        )),
                    ),
                }
            };
            rows.push(PlanNode {
                name: node.name.clone(),
                kind: node.step.kind(),
                key,
                state,
                reason,
                notes: node.step.notes(),
                parents: parent_ix
                    .iter()
                    .map(|p| graph.dag[*p].name.clone())
                    .collect(),
            });
            records[n.index()] = Some(rec);
        }
        Ok(Plan {
            spec: spec.clone(),
            store,
            graph,
            records: records.into_iter().flatten().collect(),
            rows,
            record_name,
        })
    }

    /// The plan rows, in build order.
    pub fn nodes(&self) -> &[PlanNode] {
        &self.rows
    }

    /// The spec this plan was compiled from.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// The plan as JSON: `{"nodes":[{"name","kind","key","state","reason"}]}` (`key` is null
    /// for pending nodes, `state` is `cached`, `dirty` or `pending`).
    pub fn to_json(&self) -> String {
        serde_json::json!({ "nodes": self.rows }).to_string()
    }

    /// The graph in Graphviz dot form.
    pub fn to_dot(&self) -> String {
        let mut s = String::from("digraph osimage {\n  rankdir=LR;\n");
        for r in &self.rows {
            let color = match r.state {
                NodeState::Cached => "gray",
                NodeState::Dirty => "orange",
                NodeState::Pending => "yellow",
            };
            s.push_str(&format!(
                "  \"{}\" [label=\"{}\\n{}\\n{}\", color={color}];\n",
                r.name,
                r.name,
                r.kind,
                r.key_short()
            ));
            for p in &r.parents {
                s.push_str(&format!("  \"{p}\" -> \"{}\";\n", r.name));
            }
        }
        s.push_str("}\n");
        s
    }

    /// The directory build outputs go to.
    pub fn rootimgdir(&self) -> PathBuf {
        self.spec.image.rootimgdir.clone()
    }
}
