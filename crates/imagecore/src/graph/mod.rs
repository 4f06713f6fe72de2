//! The build graph: compile a spec into nodes, compute keys, plan (cached / dirty and why),
//! execute.

pub mod step;

pub use step::{InputFile, Inputs, NodeKind, Output, Step, StepCtx};

/// Options for a build.
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    /// Worker threads (0 = number of CPUs).
    pub jobs: usize,
    /// Stop after this node.
    pub target: Option<String>,
    /// Also materialise `rootimgdir/rootimg/`.
    pub rootimg: bool,
}

/// A compiled build plan.
pub struct Plan {}
