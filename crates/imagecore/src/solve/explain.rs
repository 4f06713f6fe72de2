//! Turning a resolvo conflict into a dnf-style explanation: "nothing provides X needed by
//! Y-1.0-1.x86_64", "package A conflicts with B provided by C", "cannot install both ...".

use resolvo::conflict::{Conflict, ConflictCause, ConflictEdge, ConflictNode};
use resolvo::{Interner, Solver};

use super::provider::Provider;

pub(crate) fn explain(solver: &Solver<Provider<'_, '_>>, conflict: &Conflict) -> String {
    let p = solver.provider();
    let g = conflict.graph(solver);
    let node = |i: petgraph_index::Idx| -> String {
        match g.graph[i] {
            ConflictNode::Root => "the request".to_string(),
            ConflictNode::Solvable(s) => p.display_solvable(s).to_string(),
            ConflictNode::UnresolvedDependency => "nothing".to_string(),
            ConflictNode::Excluded(s) => p.display_string(s).to_string(),
        }
    };
    let mut lines: Vec<String> = Vec::new();
    for e in g.graph.raw_edges() {
        let (src, dst) = (e.source(), e.target());
        let line = match e.weight {
            ConflictEdge::Requires(req) => {
                if Some(dst) != g.unresolved_node {
                    continue;
                }
                let what: Vec<String> = p
                    .requirement_sets(req)
                    .iter()
                    .map(|&v| p.display_version_set(v).to_string())
                    .collect();
                let what = what.first().cloned().unwrap_or_default();
                match g.graph[src] {
                    ConflictNode::Root => format!("- nothing provides {what} (requested)"),
                    _ => format!("- nothing provides {what} needed by {}", node(src)),
                }
            }
            ConflictEdge::Conflict(ConflictCause::Constrains(vs)) => {
                format!(
                    "- package {} {}: {} cannot be installed with it",
                    node(src),
                    p.display_version_set(vs),
                    node(dst)
                )
            }
            ConflictEdge::Conflict(ConflictCause::ForbidMultipleInstances) => {
                format!(
                    "- cannot install both {} and another version of {}",
                    node(dst),
                    p.display_solvable_name(match g.graph[dst] {
                        ConflictNode::Solvable(s) => s,
                        _ => continue,
                    })
                )
            }
            ConflictEdge::Conflict(ConflictCause::Locked(s)) => {
                format!(
                    "- {} is already installed by an earlier pass; {} would replace it",
                    p.display_solvable(s),
                    node(dst)
                )
            }
            ConflictEdge::Conflict(ConflictCause::Excluded) => {
                format!("- {} is excluded", node(dst))
            }
        };
        if !lines.contains(&line) {
            lines.push(line);
        }
    }
    let tree = conflict.display_user_friendly(solver).to_string();
    format!(
        "Problem: conflicting requests\n{}\n\nDependency chain:\n{}",
        lines.join("\n"),
        tree.trim_end()
    )
}

mod petgraph_index {
    /// The node index type of resolvo's conflict graph.
    pub type Idx = petgraph::graph::NodeIndex;
}
